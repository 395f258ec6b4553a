//! A stateful fake of the Cloudflare v4 DNS records and load-balancing APIs on a
//! local HTTP server (wiremock): records, load balancers and pools persist and
//! can be changed behind the client's back,
//! every answer uses Cloudflare's envelope (`success`, `errors`, `messages`,
//! `result`, `result_info`), a wrong token gets code 10000, and a scripted 429
//! blocks the token like Cloudflare does.
//!
//! ```
//! use qovery_dr_testkit::cloudflare_fake::CloudflareFake;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = CloudflareFake::start("zone-1", "token-1").await;
//! let id = fake.add_record("app.example.com", "A", "203.0.113.10", 60);
//! fake.set_content(&id, "192.0.2.99"); // someone else changes it
//! assert_eq!(fake.content(&id).as_deref(), Some("192.0.2.99"));
//! assert!(fake.api_base().ends_with("/client/v4"));
//!
//! // A load balancer failing over from pool A to pool B (B disabled, 3 of 3 PoPs see it healthy).
//! let a = fake.add_pool(true, 3, 3);
//! let b = fake.add_pool(false, 3, 3);
//! let lb = fake.add_load_balancer("shop.example.com", &[&a, &b], &b);
//! assert_eq!(fake.load_balancer(&lb), Some((vec![a.clone(), b.clone()], Some(b.clone()))));
//! assert_eq!(fake.pool_enabled(&b), Some(false));
//! # let _ = fake.account_id();
//! # });
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One DNS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRecord {
    /// Its name.
    pub name: String,
    /// `A`, `AAAA`, `CNAME`...
    pub record_type: String,
    /// Its value.
    pub content: String,
    /// TTL in seconds (1 = automatic).
    pub ttl: u64,
}

#[derive(Debug, Default)]
struct State {
    zone: String,
    token: String,
    records: BTreeMap<String, FakeRecord>,
    next: u64,
    requests: u64,
    rate_limit_next: Option<u64>,
    load_balancers: BTreeMap<String, FakeLoadBalancer>,
    pools: BTreeMap<String, FakePool>,
}

#[derive(Debug, Clone)]
struct FakeLoadBalancer {
    name: String,
    default_pools: Vec<String>,
    fallback_pool: String,
}

#[derive(Debug, Clone)]
struct FakePool {
    enabled: bool,
    /// (PoPs seeing the pool healthy, PoPs reporting).
    pops: (u32, u32),
}

/// The account the fake's pools belong to.
const ACCOUNT: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";

/// The fake server and a handle on its records.
#[derive(Debug)]
pub struct CloudflareFake {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl CloudflareFake {
    /// Starts a fake serving zone `zone_id`, accepting `Authorization: Bearer <token>`.
    pub async fn start(zone_id: &str, token: &str) -> CloudflareFake {
        let server = MockServer::start().await;
        let state =
            Arc::new(Mutex::new(State { zone: zone_id.to_owned(), token: token.to_owned(), ..State::default() }));
        Mock::given(any()).respond_with(Router { state: Arc::clone(&state) }).mount(&server).await;
        CloudflareFake { server, state }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The API base to give the client (`<server>/client/v4`).
    pub fn api_base(&self) -> String {
        format!("{}/client/v4", self.server.uri())
    }

    /// Adds a record; returns its id.
    pub fn add_record(&self, name: &str, record_type: &str, content: &str, ttl: u64) -> String {
        self.with(|s| {
            s.next += 1;
            let id = format!("{:032x}", s.next);
            let r = FakeRecord {
                name: name.to_owned(),
                record_type: record_type.to_owned(),
                content: content.to_owned(),
                ttl,
            };
            s.records.insert(id.clone(), r);
            id
        })
    }

    /// Changes a record's content directly, as another tool would.
    pub fn set_content(&self, id: &str, content: &str) {
        self.with(|s| {
            if let Some(r) = s.records.get_mut(id) {
                r.content = content.to_owned();
            }
        });
    }

    /// A record's content.
    pub fn content(&self, id: &str) -> Option<String> {
        self.with(|s| s.records.get(id).map(|r| r.content.clone()))
    }

    /// The account id the pools belong to (for `CloudflareConfig::load_balancers`).
    pub fn account_id(&self) -> String {
        ACCOUNT.to_owned()
    }

    fn next_id(s: &mut State) -> String {
        s.next += 1;
        format!("{:032x}", s.next)
    }

    /// Adds a pool; `healthy_pops` of `pops` Cloudflare PoPs see it healthy. Returns its id.
    pub fn add_pool(&self, enabled: bool, healthy_pops: u32, pops: u32) -> String {
        self.with(|s| {
            let id = Self::next_id(s);
            s.pools.insert(id.clone(), FakePool { enabled, pops: (healthy_pops, pops) });
            id
        })
    }

    /// Adds a load balancer answering for `name`; returns its id.
    pub fn add_load_balancer(&self, name: &str, default_pools: &[&str], fallback_pool: &str) -> String {
        self.with(|s| {
            let id = Self::next_id(s);
            let lb = FakeLoadBalancer {
                name: name.to_owned(),
                default_pools: default_pools.iter().map(|p| p.to_string()).collect(),
                fallback_pool: fallback_pool.to_owned(),
            };
            s.load_balancers.insert(id.clone(), lb);
            id
        })
    }

    /// A load balancer's `(default_pools, fallback_pool)`.
    pub fn load_balancer(&self, id: &str) -> Option<(Vec<String>, Option<String>)> {
        self.with(|s| s.load_balancers.get(id).map(|lb| (lb.default_pools.clone(), Some(lb.fallback_pool.clone()))))
    }

    /// Reorders a load balancer's pools directly, as another tool would.
    pub fn set_default_pools(&self, id: &str, default_pools: &[&str]) {
        self.with(|s| {
            if let Some(lb) = s.load_balancers.get_mut(id) {
                lb.default_pools = default_pools.iter().map(|p| p.to_string()).collect();
            }
        });
    }

    /// Whether a pool is enabled.
    pub fn pool_enabled(&self, id: &str) -> Option<bool> {
        self.with(|s| s.pools.get(id).map(|p| p.enabled))
    }

    /// Sets how many PoPs see a pool healthy.
    pub fn set_pool_health(&self, id: &str, healthy_pops: u32, pops: u32) {
        self.with(|s| {
            if let Some(p) = s.pools.get_mut(id) {
                p.pops = (healthy_pops, pops);
            }
        });
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.with(|s| s.requests)
    }

    /// The next request answers 429 with `retry-after: <seconds>` (Cloudflare then blocks the token).
    pub fn rate_limit_next(&self, retry_after_seconds: u64) {
        self.with(|s| s.rate_limit_next = Some(retry_after_seconds));
    }
}

struct Router {
    state: Arc<Mutex<State>>,
}

fn envelope(status: u16, result: Value, errors: Vec<(u32, &str)>, info: Option<Value>) -> ResponseTemplate {
    let errors: Vec<Value> =
        errors.into_iter().map(|(code, message)| json!({"code": code, "message": message})).collect();
    let mut body = json!({"success": errors.is_empty(), "errors": errors, "messages": [], "result": result});
    if let Some(i) = info {
        body["result_info"] = i;
    }
    ResponseTemplate::new(status).set_body_json(body)
}

fn record_json(id: &str, zone: &str, r: &FakeRecord) -> Value {
    json!({
        "id": id, "zone_id": zone, "zone_name": "example.com", "name": r.name, "type": r.record_type,
        "content": r.content, "ttl": r.ttl, "proxied": false, "proxiable": true, "locked": false,
        "created_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z", "meta": {}, "tags": [],
    })
}

impl Respond for Router {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.requests += 1;
        if let Some(after) = s.rate_limit_next.take() {
            return envelope(
                429,
                Value::Null,
                vec![(971, "Please wait and consider throttling your request speed")],
                None,
            )
            .insert_header("retry-after", after.to_string().as_str());
        }
        let auth = req.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        if auth != format!("Bearer {}", s.token) {
            return envelope(403, Value::Null, vec![(10000, "Authentication error")], None);
        }
        let path = req.url.path().to_owned();
        if let Some(rest) = path.strip_prefix(&format!("/client/v4/zones/{}/load_balancers", s.zone)) {
            return load_balancers(&mut s, req, rest.trim_start_matches('/'));
        }
        if let Some(rest) = path.strip_prefix(&format!("/client/v4/accounts/{ACCOUNT}/load_balancers/pools/")) {
            return pools(&mut s, req, rest);
        }
        let prefix = format!("/client/v4/zones/{}/dns_records", s.zone);
        let Some(rest) = path.strip_prefix(&prefix) else {
            return envelope(
                404,
                Value::Null,
                vec![(7003, "Could not route to the zone: unknown zone identifier")],
                None,
            );
        };
        let zone = s.zone.clone();
        match (req.method.as_str(), rest.trim_start_matches('/')) {
            ("GET", "") => {
                let q: BTreeMap<String, String> =
                    req.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
                let hits: Vec<Value> = s
                    .records
                    .iter()
                    .filter(|(_, r)| q.get("name").is_none_or(|n| n.eq_ignore_ascii_case(&r.name)))
                    .filter(|(_, r)| q.get("type").is_none_or(|t| t == &r.record_type))
                    .map(|(id, r)| record_json(id, &zone, r))
                    .collect();
                let n = hits.len();
                envelope(
                    200,
                    Value::Array(hits),
                    vec![],
                    Some(json!({"page": 1, "per_page": 100, "count": n, "total_count": n, "total_pages": 1})),
                )
            }
            ("GET", id) => match s.records.get(id) {
                Some(r) => envelope(200, record_json(id, &zone, r), vec![], None),
                None => envelope(404, Value::Null, vec![(81044, "Record does not exist.")], None),
            },
            ("PATCH", id) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let Some(r) = s.records.get_mut(id) else {
                    return envelope(404, Value::Null, vec![(81044, "Record does not exist.")], None);
                };
                if let Some(c) = body.get("content").and_then(Value::as_str) {
                    r.content = c.to_owned();
                }
                if let Some(t) = body.get("type").and_then(Value::as_str) {
                    r.record_type = t.to_owned();
                }
                let r = r.clone();
                envelope(200, record_json(id, &zone, &r), vec![], None)
            }
            _ => envelope(405, Value::Null, vec![(10405, "Method not allowed for this fake")], None),
        }
    }
}

fn lb_json(id: &str, lb: &FakeLoadBalancer) -> Value {
    json!({
        "id": id, "name": lb.name, "default_pools": lb.default_pools, "fallback_pool": lb.fallback_pool,
        "enabled": true, "proxied": true, "steering_policy": "off", "created_on": "2026-01-01T00:00:00Z",
        "modified_on": "2026-01-01T00:00:00Z",
    })
}

fn load_balancers(s: &mut State, req: &Request, rest: &str) -> ResponseTemplate {
    let not_found = || envelope(404, Value::Null, vec![(1002, "Load Balancer not found")], None);
    match (req.method.as_str(), rest) {
        ("GET", "") => {
            let all: Vec<Value> = s.load_balancers.iter().map(|(id, lb)| lb_json(id, lb)).collect();
            envelope(200, Value::Array(all), vec![], None)
        }
        ("GET", id) => {
            s.load_balancers.get(id).map_or_else(not_found, |lb| envelope(200, lb_json(id, lb), vec![], None))
        }
        ("PATCH", id) => {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let known: Vec<String> = s.pools.keys().cloned().collect();
            let Some(lb) = s.load_balancers.get_mut(id) else { return not_found() };
            if let Some(pools) = body.get("default_pools").and_then(Value::as_array) {
                let pools: Vec<String> = pools.iter().filter_map(Value::as_str).map(str::to_owned).collect();
                if pools.iter().any(|p| !known.contains(p)) {
                    return envelope(400, Value::Null, vec![(1003, "Unknown pool in default_pools")], None);
                }
                lb.default_pools = pools;
            }
            if let Some(f) = body.get("fallback_pool").and_then(Value::as_str) {
                lb.fallback_pool = f.to_owned();
            }
            let lb = lb.clone();
            envelope(200, lb_json(id, &lb), vec![], None)
        }
        _ => envelope(405, Value::Null, vec![(10405, "Method not allowed for this fake")], None),
    }
}

fn pool_json(id: &str, p: &FakePool) -> Value {
    json!({
        "id": id, "name": format!("pool-{id}"), "enabled": p.enabled, "minimum_origins": 1,
        "origins": [{"name": "origin", "address": "203.0.113.10", "enabled": true, "weight": 1}],
        "created_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z",
    })
}

fn pools(s: &mut State, req: &Request, rest: &str) -> ResponseTemplate {
    let (id, health) = match rest.strip_suffix("/health") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    let Some(pool) = s.pools.get_mut(id) else {
        return envelope(404, Value::Null, vec![(1002, "Pool not found")], None);
    };
    match (req.method.as_str(), health) {
        ("GET", true) => {
            let (healthy, total) = pool.pops;
            let pops: serde_json::Map<String, Value> =
                (0..total).map(|i| (format!("PoP {i}"), json!({"healthy": i < healthy, "origins": []}))).collect();
            envelope(200, json!({"pool_id": id, "pop_health": pops}), vec![], None)
        }
        ("GET", false) => envelope(200, pool_json(id, pool), vec![], None),
        ("PATCH", false) => {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            if let Some(e) = body.get("enabled").and_then(Value::as_bool) {
                pool.enabled = e;
            }
            let pool = pool.clone();
            envelope(200, pool_json(id, &pool), vec![], None)
        }
        _ => envelope(405, Value::Null, vec![(10405, "Method not allowed for this fake")], None),
    }
}
