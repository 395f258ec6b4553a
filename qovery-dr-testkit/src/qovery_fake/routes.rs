//! The fake's routes: the subset of the Qovery API the provider uses.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use tokio::time::Instant;
use wiremock::{Request, Respond, ResponseTemplate};

use super::state::{FakeDeployment, FakeState, FakeVar};

#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) state: Arc<Mutex<FakeState>>,
}

fn ok(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn problem(status: u16, detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "status": status, "detail": detail }))
}

fn env_json(id: &str, e: &super::state::FakeEnv, org: &str) -> Value {
    json!({
        "id": id, "created_at": "2026-01-01T00:00:00Z", "name": e.name, "organization": { "id": org }, "project": { "id": e.project },
        "cloud_provider": { "provider": "AWS", "cluster": "" }, "mode": "PRODUCTION", "cluster_id": e.cluster,
    })
}

impl Respond for Router {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let auth = req.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !(auth.starts_with("Token ") || auth.starts_with("Bearer ")) || auth.len() < 8 {
            return problem(401, "missing or malformed Authorization header");
        }
        if let Some(required) = &s.required_token {
            let given = auth.strip_prefix("Token ").or_else(|| auth.strip_prefix("Bearer ")).unwrap_or("");
            if given != required {
                return problem(401, "invalid token");
            }
        }
        let path = req.url.path().to_owned();
        if !s.admit() {
            return problem(429, "rate limit exceeded").insert_header("retry-after", "1");
        }
        if let Some(f) = s.take_fault(&path) {
            let mut t = problem(f.status, "scripted failure");
            if let Some(ra) = f.retry_after {
                t = t.insert_header("retry-after", ra.to_string().as_str());
            }
            return t;
        }
        s.settle();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = req.method.as_str();
        let org = s.org.clone();
        match (method, seg.as_slice()) {
            ("GET", ["organization", o, "cluster", c, "status"]) if *o == org => match s.clusters.get(*c) {
                Some(st) => ok(
                    200,
                    json!({ "cluster_id": c, "status": st, "is_deployed": st == "DEPLOYED", "reason": "UNSPECIFIED" }),
                ),
                None => problem(404, "cluster not found"),
            },
            // deployCluster: a stopped cluster starts (DEPLOYING, then DEPLOYED after the
            // fake's deployment durations); a running one stays as it is.
            ("POST", ["organization", o, "cluster", c, "deploy"]) if *o == org => match s.clusters.get(*c).cloned() {
                Some(st) if st == "STOPPED" => {
                    s.clusters.insert((*c).to_owned(), "DEPLOYING".into());
                    s.cluster_starts.insert((*c).to_owned(), tokio::time::Instant::now());
                    ok(201, json!({ "cluster_id": c, "status": "DEPLOYING", "is_deployed": false }))
                }
                Some(st) if st.contains("ERROR") => problem(400, "the cluster is in error: repair it first"),
                Some(st) => ok(201, json!({ "cluster_id": c, "status": st, "is_deployed": st == "DEPLOYED" })),
                None => problem(404, "cluster not found"),
            },
            ("GET", ["organization", o, "containerRegistry"]) if *o == org => {
                let results: Vec<Value> = s.registries.iter().map(|(id, url)| json!({ "id": id, "name": "registry", "kind": "GENERIC_CR", "url": url, "created_at": "2026-01-01T00:00:00Z" })).collect();
                ok(200, json!({ "results": results }))
            }
            ("GET", ["project", p, "environment"]) => {
                let results: Vec<Value> =
                    s.envs.iter().filter(|(_, e)| e.project == *p).map(|(id, e)| env_json(id, e, &org)).collect();
                if results.is_empty() {
                    problem(404, "project not found")
                } else {
                    ok(200, json!({ "results": results }))
                }
            }
            ("GET", ["environment", "deploymentStatus"]) => {
                let id = req
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "deploymentRequestId")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                match (s.deployment_state(&id), s.deployments.get(&id)) {
                    (Some(st), Some(d)) => {
                        ok(200, json!({ "deployment_request_id": id, "environment_id": d.env, "status": st }))
                    }
                    _ => ok(200, json!({})),
                }
            }
            ("GET", ["environment", e]) => match s.envs.get(*e) {
                Some(env) => ok(200, env_json(e, env, &org)),
                None => problem(404, "environment not found"),
            },
            ("DELETE", ["environment", e]) => match s.envs.remove(*e) {
                Some(_) => ResponseTemplate::new(204),
                None => problem(404, "environment not found"),
            },
            ("GET", ["environment", e, "statuses"]) => {
                let Some(env) = s.envs.get(*e).cloned() else { return problem(404, "environment not found") };
                let env_state = match &env.last {
                    Some(d) => s.deployment_state(d).unwrap_or_else(|| "READY".into()),
                    None if env.deployed => "DEPLOYED".into(),
                    None => "READY".into(),
                };
                let containers: Vec<Value> = env
                    .containers
                    .keys()
                    .map(|id| {
                        let state = match env.service_last.get(id) {
                            Some(d) => s.deployment_state(d).unwrap_or_else(|| "READY".into()),
                            None if env.deployed => "DEPLOYED".into(),
                            None => "READY".into(),
                        };
                        let current = s.config_of(e, id);
                        let sds = if env.running.get(id) == Some(&current) { "UP_TO_DATE" } else { "OUT_OF_DATE" };
                        json!({ "id": id, "state": state, "service_deployment_status": sds, "is_part_last_deployment": true,
                                "status_details": { "action": "DEPLOY", "status": "SUCCESS" }, "deployment_request_id": env.service_last.get(id), "deployment_requests_count": 0 })
                    })
                    .collect();
                ok(
                    200,
                    json!({ "environment": { "id": e, "state": env_state, "last_deployment_state": env_state }, "applications": [], "containers": containers, "jobs": [], "databases": [], "helms": [], "terraforms": [] }),
                )
            }
            ("GET", ["environment", e, "container"]) => match s.envs.get(*e) {
                Some(env) => ok(200, json!({ "results": env.containers.values().cloned().collect::<Vec<_>>() })),
                None => problem(404, "environment not found"),
            },
            ("GET", ["environment", e, "application"]) => match s.envs.get(*e) {
                Some(_) => ok(200, json!({ "results": [] })),
                None => problem(404, "environment not found"),
            },
            ("GET", ["environment", e, "job"]) => match s.envs.get(*e) {
                Some(env) => ok(200, json!({ "results": env.jobs.values().cloned().collect::<Vec<_>>() })),
                None => problem(404, "environment not found"),
            },
            ("GET", ["environment", e, "database"]) => match s.envs.get(*e) {
                Some(env) => ok(200, json!({ "results": env.databases.values().cloned().collect::<Vec<_>>() })),
                None => problem(404, "environment not found"),
            },
            ("GET", ["job", j]) => match find_job(&s, j) {
                Some((_, v)) => ok(200, v),
                None => problem(404, "job not found"),
            },
            ("PUT", ["job", j]) => {
                let Some((env, mut v)) = find_job(&s, j) else { return problem(404, "job not found") };
                for key in ["name", "healthchecks"] {
                    if body.get(key).is_none() {
                        return problem(400, &format!("{key} is required"));
                    }
                }
                v["name"] = body["name"].clone();
                if let Some(image) = body.get("source").and_then(|src| src.get("image")).filter(|i| !i.is_null()) {
                    let reg = image["registry_id"].as_str().unwrap_or_default().to_owned();
                    let Some(url) = s.registries.get(&reg).cloned() else { return problem(400, "unknown registry_id") };
                    v["source"]["image"] = json!({ "image_name": image["image_name"], "tag": image["tag"], "registry_id": reg,
                                                   "registry": { "id": reg, "name": "registry", "url": url, "kind": "GENERIC_CR" } });
                }
                if let Some(e) = s.envs.get_mut(&env) {
                    e.jobs.insert((*j).to_owned(), v.clone());
                }
                ok(200, v)
            }
            ("POST", ["environment", e, action @ ("deploy" | "redeploy" | "stop")]) => deploy(&mut s, e, None, action),
            ("POST", ["environment", e, "service", "deploy"]) => {
                let Some(env) = s.envs.get(*e) else { return problem(404, "environment not found") };
                let mut ids = Vec::new();
                // Each id under the key of its kind, as Qovery requires.
                for key in ["containers", "jobs"] {
                    for id in body[key].as_array().into_iter().flatten().filter_map(|c| c["id"].as_str()) {
                        let known =
                            if key == "jobs" { env.jobs.contains_key(id) } else { env.containers.contains_key(id) };
                        if !known {
                            return problem(400, &format!("{id} is not one of the environment's {key}"));
                        }
                        ids.push(id.to_owned());
                    }
                }
                deploy(&mut s, e, Some(ids), "deploy")
            }
            ("POST", ["environment", e, "clone"]) => {
                let Some(src) = s.envs.get(*e).cloned() else { return problem(404, "environment not found") };
                let name = body["name"].as_str().unwrap_or_default().to_owned();
                let project = body["project_id"].as_str().map(str::to_owned).unwrap_or(src.project.clone());
                if s.envs.values().any(|x| x.project == project && x.name == name) {
                    return problem(409, "an environment with this name already exists");
                }
                let cluster = body["cluster_id"].as_str().map(str::to_owned).unwrap_or(src.cluster.clone());
                if !s.clusters.contains_key(&cluster) {
                    return problem(404, "cluster not found");
                }
                let id = s.id("env");
                let mut copy = src.clone();
                copy.name = name;
                copy.project = project;
                copy.cluster = cluster;
                copy.last = None;
                copy.deployed = false;
                copy.service_last.clear();
                copy.running.clear();
                let mut containers = std::collections::BTreeMap::new();
                for (_, mut c) in std::mem::take(&mut copy.containers) {
                    let cid = s.id("container");
                    c["id"] = json!(cid);
                    containers.insert(cid, c);
                }
                copy.containers = containers;
                let mut jobs = std::collections::BTreeMap::new();
                for (_, mut j) in std::mem::take(&mut copy.jobs) {
                    let jid = s.id("job");
                    j["id"] = json!(jid);
                    jobs.insert(jid, j);
                }
                copy.jobs = jobs;
                copy.vars = copy.vars.into_iter().map(|(k, v)| (k.replace(*e, &id), v)).collect();
                let out = env_json(&id, &copy, &org);
                s.envs.insert(id, copy);
                ok(202, out)
            }
            ("GET", ["container", c]) => match find_container(&s, c) {
                Some((_, v)) => ok(200, v),
                None => problem(404, "container not found"),
            },
            ("PUT", ["container", c]) => {
                let Some((env, mut v)) = find_container(&s, c) else { return problem(404, "container not found") };
                for key in ["name", "registry_id", "image_name", "tag"] {
                    if body.get(key).is_none() {
                        return problem(400, &format!("{key} is required"));
                    }
                    v[key] = body[key].clone();
                }
                for key in ["min_running_instances", "max_running_instances", "cpu", "memory"] {
                    if let Some(x) = body.get(key) {
                        v[key] = x.clone();
                    }
                }
                if let Some(url) = s.registries.get(body["registry_id"].as_str().unwrap_or_default()).cloned() {
                    v["registry"] =
                        json!({ "id": body["registry_id"], "name": "registry", "url": url, "kind": "GENERIC_CR" });
                } else {
                    return problem(400, "unknown registry_id");
                }
                if let Some(e) = s.envs.get_mut(&env) {
                    e.containers.insert((*c).to_owned(), v.clone());
                }
                ok(200, v)
            }
            (
                _,
                [
                    level @ ("environment" | "container" | "application"),
                    id,
                    kind @ ("environmentVariable" | "secret"),
                    rest @ ..,
                ],
            ) => variables(&mut s, method, level, id, kind, rest.first().copied(), &body),
            _ => problem(404, &format!("no route for {method} {path} in the fake")),
        }
    }
}

fn find_container(s: &FakeState, id: &str) -> Option<(String, Value)> {
    s.envs.iter().find_map(|(eid, e)| e.containers.get(id).map(|c| (eid.clone(), c.clone())))
}

fn find_job(s: &FakeState, id: &str) -> Option<(String, Value)> {
    s.envs.iter().find_map(|(eid, e)| e.jobs.get(id).map(|j| (eid.clone(), j.clone())))
}

fn deploy(s: &mut FakeState, env: &str, services: Option<Vec<String>>, action: &str) -> ResponseTemplate {
    let Some(e) = s.envs.get(env).cloned() else { return problem(404, "environment not found") };
    let targets = services.clone().unwrap_or_else(|| e.containers.keys().chain(e.jobs.keys()).cloned().collect());
    if let Some(unknown) = targets.iter().find(|t| !e.containers.contains_key(*t) && !e.jobs.contains_key(*t)) {
        return problem(400, &format!("unknown service {unknown}"));
    }
    // 409 while any deployment of the environment is in progress, as the Qovery API answers
    // ("an operation is already in progress"), whichever services it covers.
    let busy = s.deployments.values().any(|d| d.env == env && !d.settled && d.at.elapsed() < s.queued + s.deploying);
    if busy {
        return problem(409, "an operation is already in progress on this environment");
    }
    let id = s.id("deployment");
    let snapshot = targets.iter().map(|t| (t.clone(), s.config_of(env, t))).collect();
    let end_state = if action == "stop" { "STOPPED" } else { "DEPLOYED" };
    s.deployments.insert(
        id.clone(),
        FakeDeployment {
            env: env.to_owned(),
            services: services.unwrap_or_default(),
            at: Instant::now(),
            end_state: end_state.into(),
            snapshot,
            settled: false,
        },
    );
    if let Some(e) = s.envs.get_mut(env) {
        e.last = Some(id.clone());
        for t in &targets {
            e.service_last.insert(t.clone(), id.clone());
        }
    }
    ok(
        202,
        json!({ "id": env, "state": "DEPLOYMENT_QUEUED", "last_deployment_state": "DEPLOYMENT_QUEUED", "service_deployment_status": "OUT_OF_DATE",
                    "is_part_last_deployment": true, "status_details": {}, "deployment_request_id": id, "deployment_requests_count": 1 }),
    )
}

fn variables(
    s: &mut FakeState,
    method: &str,
    level: &str,
    id: &str,
    kind: &str,
    var: Option<&str>,
    body: &Value,
) -> ResponseTemplate {
    // The environment owning the scope.
    let env = match level {
        "environment" => s.envs.contains_key(id).then(|| id.to_owned()),
        _ => find_container(s, id).map(|(e, _)| e),
    };
    let Some(env) = env else { return problem(404, &format!("{level} not found")) };
    let scope = match level {
        "environment" => "ENVIRONMENT",
        "container" => "CONTAINER",
        _ => "APPLICATION",
    };
    let path = format!("/{level}/{id}/{kind}");
    let secret = kind == "secret";
    let render = |v: &FakeVar| {
        let mut j = json!({ "id": v.id, "key": v.key, "created_at": "2026-01-01T00:00:00Z", "scope": scope, "variable_type": "VALUE" });
        if !secret {
            j["value"] = json!(v.value);
        }
        j
    };
    let new_id = s.id("var");
    let Some(e) = s.envs.get_mut(&env) else { return problem(404, "environment not found") };
    let list = e.vars.entry(path).or_default();
    match (method, var) {
        ("GET", None) => {
            let mut results: Vec<Value> = list.iter().map(render).collect();
            if !secret {
                // A BUILT_IN variable, as Qovery lists them: never edited by the provider.
                results.push(json!({ "id": "builtin-1", "key": "QOVERY_ENVIRONMENT_ID", "value": env, "scope": "BUILT_IN", "variable_type": "BUILT_IN", "created_at": "2026-01-01T00:00:00Z" }));
            }
            ok(200, json!({ "results": results }))
        }
        ("POST", None) => {
            let Some(key) = body["key"].as_str() else { return problem(400, "key is required") };
            if list.iter().any(|v| v.key == key) {
                return problem(400, "a variable with this key already exists");
            }
            let v = FakeVar {
                id: new_id,
                key: key.to_owned(),
                value: body["value"].as_str().unwrap_or_default().to_owned(),
            };
            let out = render(&v);
            list.push(v);
            ok(201, out)
        }
        ("PUT", Some(vid)) => match list.iter_mut().find(|v| v.id == vid) {
            Some(v) => {
                v.value = body["value"].as_str().unwrap_or_default().to_owned();
                let out = render(v);
                ok(200, out)
            }
            None => problem(404, "variable not found"),
        },
        ("DELETE", Some(vid)) => {
            let before = list.len();
            list.retain(|v| v.id != vid);
            if list.len() < before { ResponseTemplate::new(204) } else { problem(404, "variable not found") }
        }
        _ => problem(405, "method not allowed"),
    }
}
