//! The fake's state.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

/// A scripted failure.
#[derive(Debug, Clone)]
pub struct Fault {
    pub(crate) prefix: String,
    pub(crate) times: u32,
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
}

/// A variable or secret.
#[derive(Debug, Clone)]
pub struct FakeVar {
    /// Its id.
    pub id: String,
    /// Its key.
    pub key: String,
    /// Its value (kept for secrets, never returned).
    pub value: String,
}

/// A deployment request in progress or done.
#[derive(Debug, Clone)]
pub struct FakeDeployment {
    /// The environment.
    pub env: String,
    /// Services it covers (empty: all).
    pub services: Vec<String>,
    /// Requested when.
    pub at: Instant,
    /// What it ends as (`DEPLOYED`, `STOPPED`, or an error state).
    pub end_state: String,
    /// The configuration it deploys, per service.
    pub snapshot: BTreeMap<String, Value>,
    /// Whether its effect was applied.
    pub settled: bool,
}

/// An environment.
#[derive(Debug, Clone)]
pub struct FakeEnv {
    /// Name.
    pub name: String,
    /// Project id.
    pub project: String,
    /// Cluster id.
    pub cluster: String,
    /// Container services: id → the Qovery container JSON.
    pub containers: BTreeMap<String, Value>,
    /// Jobs: id → the Qovery job JSON (a cron job from an image).
    pub jobs: BTreeMap<String, Value>,
    /// Databases: id → the Qovery database JSON (listed only).
    pub databases: BTreeMap<String, Value>,
    /// Variables and secrets by scope path (e.g. `/environment/e1/environmentVariable`).
    pub vars: BTreeMap<String, Vec<FakeVar>>,
    /// The last deployment request.
    pub last: Option<String>,
    /// Whether it was deployed at least once (or created deployed).
    pub deployed: bool,
    /// The configuration running, per service (from the last successful deployment).
    pub running: BTreeMap<String, Value>,
    /// Per service: its last deployment request.
    pub service_last: BTreeMap<String, String>,
}

/// The whole fake state.
#[derive(Debug)]
pub struct FakeState {
    /// The organization.
    pub org: String,
    /// Clusters: id → status.
    pub clusters: BTreeMap<String, String>,
    /// Clusters being started (deployed from `STOPPED`): id → when asked.
    pub cluster_starts: BTreeMap<String, Instant>,
    /// Environments.
    pub envs: BTreeMap<String, FakeEnv>,
    /// Deployments by request id.
    pub deployments: BTreeMap<String, FakeDeployment>,
    /// Registries: id → url.
    pub registries: BTreeMap<String, String>,
    /// Queued then deploying durations.
    pub queued: Duration,
    /// Deploying duration.
    pub deploying: Duration,
    pub(crate) faults: Vec<Fault>,
    next: u64,
    /// Server-side limit: at most this many requests per window (sliding), else 429.
    pub(crate) rate_limit: Option<(usize, Duration)>,
    /// When the requests of the current window were accepted.
    pub(crate) accepted: std::collections::VecDeque<std::time::Instant>,
    /// Requests answered 429 because they were over the limit.
    pub rate_limited: u64,
    /// The only credential accepted (`Token …` or `Bearer …` value), when set.
    pub required_token: Option<String>,
}

impl FakeState {
    pub(crate) fn new(org: &str) -> Self {
        Self {
            org: org.to_owned(),
            clusters: BTreeMap::new(),
            cluster_starts: BTreeMap::new(),
            envs: BTreeMap::new(),
            deployments: BTreeMap::new(),
            registries: BTreeMap::new(),
            queued: Duration::from_millis(100),
            deploying: Duration::from_millis(300),
            faults: Vec::new(),
            next: 0,
            rate_limit: None,
            accepted: std::collections::VecDeque::new(),
            rate_limited: 0,
            required_token: None,
        }
    }

    /// Whether one more request fits the server-side limit now (and counts it if so).
    pub(crate) fn admit(&mut self) -> bool {
        let Some((limit, window)) = self.rate_limit else { return true };
        let now = std::time::Instant::now();
        while self.accepted.front().is_some_and(|t| now.duration_since(*t) >= window) {
            self.accepted.pop_front();
        }
        if self.accepted.len() >= limit {
            self.rate_limited += 1;
            return false;
        }
        self.accepted.push_back(now);
        true
    }

    pub(crate) fn id(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("00000000-0000-4000-8000-{:04}{:08}", kind.len(), self.next)
    }

    pub(crate) fn add_cluster(&mut self, _name: &str) -> String {
        let id = self.id("cluster");
        self.clusters.insert(id.clone(), "DEPLOYED".into());
        id
    }

    pub(crate) fn add_environment(&mut self, project: &str, name: &str, cluster: &str) -> String {
        let id = self.id("env");
        self.envs.insert(
            id.clone(),
            FakeEnv {
                name: name.into(),
                project: project.into(),
                cluster: cluster.into(),
                containers: BTreeMap::new(),
                jobs: BTreeMap::new(),
                databases: BTreeMap::new(),
                vars: BTreeMap::new(),
                last: None,
                deployed: true,
                running: BTreeMap::new(),
                service_last: BTreeMap::new(),
            },
        );
        id
    }

    fn registry_id(&mut self, registry_url: &str) -> String {
        match self.registries.iter().find(|(_, u)| *u == registry_url) {
            Some((id, _)) => id.clone(),
            None => {
                let id = self.id("registry");
                self.registries.insert(id.clone(), registry_url.to_owned());
                id
            }
        }
    }

    /// A cron job from an image, as `JobResponse` (`CronJobResponse`) has it.
    pub(crate) fn add_job(&mut self, env: &str, name: &str, registry_url: &str, image_name: &str, tag: &str) -> String {
        let reg = self.registry_id(registry_url);
        let id = self.id("job");
        let j = json!({
            "id": id, "name": name, "created_at": "2026-01-01T00:00:00Z", "environment": { "id": env },
            "maximum_cpu": 4000, "maximum_memory": 8192, "maximum_gpu": 0, "cpu": 500, "memory": 512, "gpu": 0,
            "auto_preview": false, "healthchecks": {}, "icon_uri": "app://qovery-console/cron-job",
            "service_type": "JOB", "job_type": "CRON", "max_nb_restart": 0, "max_duration_seconds": 300,
            "source": { "image": { "image_name": image_name, "tag": tag, "registry_id": reg,
                                   "registry": { "id": reg, "name": "registry", "url": registry_url, "kind": "GENERIC_CR" } } },
            "schedule": { "cronjob": { "timezone": "Etc/UTC", "scheduled_at": "0 3 * * *" } },
        });
        if let Some(e) = self.envs.get_mut(env) {
            e.jobs.insert(id.clone(), j);
        }
        let config = self.config_of(env, &id);
        if let Some(e) = self.envs.get_mut(env) {
            e.running.insert(id.clone(), config);
        }
        id
    }

    /// A database of the environment, as `Database` has it (`engine`: `POSTGRESQL`…,
    /// `mode`: `MANAGED` or `CONTAINER`).
    pub(crate) fn add_database(&mut self, env: &str, name: &str, engine: &str, mode: &str) -> String {
        let id = self.id("database");
        let d = json!({
            "id": id, "name": name, "created_at": "2026-01-01T00:00:00Z", "type": engine, "version": "15",
            "mode": mode, "accessibility": "PRIVATE", "environment": { "id": env }, "service_type": "DATABASE",
            "icon_uri": "app://qovery-console/postgresql", "host": format!("{name}.internal"), "port": 5432,
        });
        if let Some(e) = self.envs.get_mut(env) {
            e.databases.insert(id.clone(), d);
        }
        id
    }

    pub(crate) fn add_container(
        &mut self,
        env: &str,
        name: &str,
        registry_url: &str,
        image_name: &str,
        tag: &str,
    ) -> String {
        let reg = self.registry_id(registry_url);
        let id = self.id("container");
        let c = json!({
            "id": id, "name": name, "image_name": image_name, "tag": tag, "registry_id": reg,
            "registry": { "id": reg, "name": "registry", "url": registry_url, "kind": "GENERIC_CR" },
            "min_running_instances": 2, "max_running_instances": 4, "cpu": 500, "memory": 512,
            "healthchecks": {}, "ports": [], "storage": [], "auto_preview": false, "auto_deploy": false,
            "environment": { "id": env },
            "created_at": "2026-01-01T00:00:00Z",
        });
        if let Some(e) = self.envs.get_mut(env) {
            e.containers.insert(id.clone(), c);
        }
        let config = self.config_of(env, &id);
        if let Some(e) = self.envs.get_mut(env) {
            e.running.insert(id.clone(), config);
        }
        id
    }

    /// What a deployment of a service would run: its image and the variables it sees.
    pub fn config_of(&self, env: &str, service: &str) -> Value {
        let Some(e) = self.envs.get(env) else { return Value::Null };
        // A job holds its image under source.image.
        let c = e
            .containers
            .get(service)
            .cloned()
            .or_else(|| e.jobs.get(service).map(|j| j["source"]["image"].clone()))
            .unwrap_or(Value::Null);
        let vars: BTreeMap<String, String> = e
            .vars
            .iter()
            .filter(|(path, _)| path.starts_with(&format!("/environment/{env}/")) || path.contains(service))
            .flat_map(|(path, vs)| vs.iter().map(move |v| (format!("{path}:{}", v.key), v.value.clone())))
            .collect();
        json!({ "image": c.get("image_name"), "tag": c.get("tag"), "registry": c.get("registry_id"), "vars": vars })
    }

    /// Applies finished deployments.
    pub fn settle(&mut self) {
        let (queued, deploying) = (self.queued, self.deploying);
        let started: Vec<String> = self
            .cluster_starts
            .iter()
            .filter(|(_, at)| at.elapsed() >= queued + deploying)
            .map(|(id, _)| id.clone())
            .collect();
        for id in started {
            self.cluster_starts.remove(&id);
            self.clusters.insert(id, "DEPLOYED".into());
        }
        for d in self.deployments.values_mut().filter(|d| !d.settled && d.at.elapsed() >= queued + deploying) {
            d.settled = true;
            if let Some(e) = self.envs.get_mut(&d.env) {
                if d.end_state == "DEPLOYED" {
                    e.deployed = true;
                    for (svc, cfg) in &d.snapshot {
                        e.running.insert(svc.clone(), cfg.clone());
                    }
                } else if d.end_state == "STOPPED" {
                    e.deployed = false;
                }
            }
        }
    }

    /// The state of a deployment now.
    pub fn deployment_state(&self, id: &str) -> Option<String> {
        let d = self.deployments.get(id)?;
        let age = d.at.elapsed();
        Some(if age < self.queued {
            "DEPLOYMENT_QUEUED".to_owned()
        } else if age < self.queued + self.deploying {
            if d.end_state == "STOPPED" { "STOPPING".to_owned() } else { "DEPLOYING".to_owned() }
        } else {
            d.end_state.clone()
        })
    }

    pub(crate) fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let i = self.faults.iter().position(|f| path.starts_with(&f.prefix) && f.times > 0)?;
        self.faults[i].times -= 1;
        Some(self.faults[i].clone())
    }
}
