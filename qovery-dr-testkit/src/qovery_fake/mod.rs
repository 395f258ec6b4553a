//! A stateful fake of the Qovery API on a local HTTP server (wiremock):
//! deployments progress through states over time, variables and secrets
//! persist (secret values are never returned), 409 while an environment is
//! busy, scripted 429/5xx. Test your own Qovery automation against it.
//!
//! ```
//! use qovery_dr_testkit::qovery_fake::QoveryFake;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = QoveryFake::start("org-1").await;
//! let cluster = fake.add_cluster("paris");
//! let env = fake.add_environment("project-1", "prod", &cluster);
//! fake.add_container(&env, "api", "https://registry.example.com", "shop/api", "v1");
//! fake.fail_next("/environment", 1, 503, None); // the next environment call answers 503
//! assert!(fake.uri().starts_with("http://127.0.0.1:"));
//! assert_eq!(fake.with(|s| s.envs[&env].containers.len()), 1);
//! // Point QoveryClusterProvider (qovery-dr-providers, feature qovery) at fake.uri().
//! # });
//! ```

mod routes;
mod state;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use state::FakeState;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

/// The fake server and a handle on its state.
#[derive(Debug)]
pub struct QoveryFake {
    server: MockServer,
    state: Arc<Mutex<FakeState>>,
}

impl QoveryFake {
    /// Starts a fake for organization `org` on 127.0.0.1.
    pub async fn start(org: &str) -> QoveryFake {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(FakeState::new(org)));
        Mock::given(any()).respond_with(routes::Router { state: Arc::clone(&state) }).mount(&server).await;
        QoveryFake { server, state }
    }

    /// The base URL to give the provider.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Reads or changes the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds a deployed cluster; returns its id.
    pub fn add_cluster(&self, name: &str) -> String {
        self.with(|s| s.add_cluster(name))
    }

    /// Adds a deployed environment; returns its id.
    pub fn add_environment(&self, project: &str, name: &str, cluster: &str) -> String {
        self.with(|s| s.add_environment(project, name, cluster))
    }

    /// Adds a cron job running `registry_url`/`image_name`:`tag` to environment `env`;
    /// returns its id.
    pub fn add_job(&self, env: &str, name: &str, registry_url: &str, image_name: &str, tag: &str) -> String {
        self.with(|s| s.add_job(env, name, registry_url, image_name, tag))
    }

    /// Adds a database (`engine` e.g. `POSTGRESQL`, `mode` `MANAGED` or `CONTAINER`) to
    /// environment `env`; returns its id.
    pub fn add_database(&self, env: &str, name: &str, engine: &str, mode: &str) -> String {
        self.with(|s| s.add_database(env, name, engine, mode))
    }

    /// Adds a deployed container service (and its registry if new); returns its id.
    pub fn add_container(&self, env: &str, name: &str, registry_url: &str, image_name: &str, tag: &str) -> String {
        self.with(|s| s.add_container(env, name, registry_url, image_name, tag))
    }

    /// Adds a container registry to the organization (as the DR registry must be before an
    /// incident); returns its id, or the existing one's for the same URL.
    pub fn add_registry(&self, url: &str) -> String {
        self.with(|s| match s.registries.iter().find(|(_, u)| *u == url) {
            Some((id, _)) => id.clone(),
            None => {
                let id = s.id("registry");
                s.registries.insert(id.clone(), url.to_owned());
                id
            }
        })
    }

    /// How long deployments stay queued, then deploying.
    pub fn set_durations(&self, queued: Duration, deploying: Duration) {
        self.with(|s| {
            s.queued = queued;
            s.deploying = deploying;
        });
    }

    /// The next `times` requests whose path starts with `path_prefix` answer
    /// `status` (with `Retry-After: retry_after` seconds for 429).
    pub fn fail_next(&self, path_prefix: &str, times: u32, status: u16, retry_after: Option<u64>) {
        self.with(|s| s.faults.push(state::Fault { prefix: path_prefix.to_owned(), times, status, retry_after }));
    }

    /// Enforces a server-side limit, as the real API would: at most `requests` in any
    /// `window` (sliding, real time); requests over it get 429 with `Retry-After: 1` and are
    /// counted in [`rate_limited`](Self::rate_limited).
    pub fn set_rate_limit(&self, requests: usize, window: Duration) {
        self.with(|s| s.rate_limit = Some((requests, window)));
    }

    /// Accepts only this token (sent as `Token …` or `Bearer …`); others get 401, as the API answers.
    pub fn require_token(&self, token: &str) {
        self.with(|s| s.required_token = Some(token.to_owned()));
    }

    /// Requests answered 429 for being over the limit.
    pub fn rate_limited(&self) -> u64 {
        self.with(|s| s.rate_limited)
    }

    /// Every request received so far: (method, path, Authorization header).
    pub async fn requests(&self) -> Vec<(String, String, Option<String>)> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let auth = r.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                (r.method.to_string(), r.url.path().to_owned(), auth)
            })
            .collect()
    }
}
