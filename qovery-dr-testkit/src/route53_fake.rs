//! A stateful fake of the two Route53 reads whose states moto cannot produce:
//! `GetChange` going from `PENDING` to `INSYNC`, and `GetHealthCheckStatus`
//! with checker observations that change over time. Everything else (records,
//! zones) is best tested against moto.
//!
//! ```
//! use qovery_dr_testkit::route53_fake::Route53Fake;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = Route53Fake::start().await;
//! fake.add_change("C0PENDING", 2); // PENDING for two polls, then INSYNC
//! fake.set_health("hc-dr", 3, 16); // 3 of 16 checkers report success
//! assert!(fake.uri().starts_with("http://127.0.0.1:"));
//! # });
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

#[derive(Debug, Default)]
struct State {
    /// Change id -> polls left answering PENDING.
    changes: BTreeMap<String, u32>,
    /// Health check id -> (checkers reporting success, checkers in total).
    health: BTreeMap<String, (u32, u32)>,
    polls: u64,
}

/// The fake server and a handle on its state.
#[derive(Debug)]
pub struct Route53Fake {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl Route53Fake {
    /// Starts the fake on 127.0.0.1.
    pub async fn start() -> Route53Fake {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(any()).respond_with(Router { state: Arc::clone(&state) }).mount(&server).await;
        Route53Fake { server, state }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The endpoint URL to give the SDK.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// A change that answers `PENDING` to the next `pending_polls` GetChange calls, then `INSYNC`.
    pub fn add_change(&self, id: &str, pending_polls: u32) {
        self.with(|s| s.changes.insert(id.to_owned(), pending_polls));
    }

    /// Sets a health check's observations: `healthy` of `total` checkers report success.
    pub fn set_health(&self, health_check_id: &str, healthy: u32, total: u32) {
        self.with(|s| s.health.insert(health_check_id.to_owned(), (healthy, total)));
    }

    /// GetChange calls received so far.
    pub fn change_polls(&self) -> u64 {
        self.with(|s| s.polls)
    }
}

struct Router {
    state: Arc<Mutex<State>>,
}

fn xml(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "text/xml")
        .set_body_string(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"))
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fake</RequestId></ErrorResponse>"
        ),
    )
}

impl Respond for Router {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let path = req.url.path().trim_start_matches("/2013-04-01/").to_owned();
        if let Some(id) = path.strip_prefix("change/") {
            s.polls += 1;
            let Some(left) = s.changes.get_mut(id) else {
                return error(404, "NoSuchChange", "A change with the specified change ID does not exist.");
            };
            let status = if *left > 0 {
                *left -= 1;
                "PENDING"
            } else {
                "INSYNC"
            };
            return xml(
                200,
                format!(
                    "<GetChangeResponse xmlns=\"{NS}\"><ChangeInfo><Id>/change/{id}</Id><Status>{status}</Status><SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>"
                ),
            );
        }
        if let Some(id) = path.strip_prefix("healthcheck/").and_then(|p| p.strip_suffix("/status")) {
            let Some(&(healthy, total)) = s.health.get(id) else {
                return error(404, "NoSuchHealthCheck", "No health check exists with the specified ID.");
            };
            let observations: String = (0..total)
                .map(|i| {
                    let status = if i < healthy { "Success: HTTP Status Code 200, OK" } else { "Failure: Connection timed out." };
                    format!("<HealthCheckObservation><Region>us-east-1</Region><IPAddress>192.0.2.{i}</IPAddress><StatusReport><Status>{status}</Status><CheckedTime>2026-01-01T00:00:00Z</CheckedTime></StatusReport></HealthCheckObservation>")
                })
                .collect();
            return xml(
                200,
                format!(
                    "<GetHealthCheckStatusResponse xmlns=\"{NS}\"><HealthCheckObservations>{observations}</HealthCheckObservations></GetHealthCheckStatusResponse>"
                ),
            );
        }
        error(400, "InvalidInput", "this fake serves GetChange and GetHealthCheckStatus only")
    }
}
