//! A stateful fake of the Route53 states moto cannot produce: `GetChange` going
//! from `PENDING` to `INSYNC`; `GetHealthCheckStatus` with checker observations
//! that change over time; and health checks whose `HealthCheckVersion` moves and
//! is enforced by `UpdateHealthCheck` (moto keeps version 1 and accepts any), with
//! failover record sets to route on them. Everything else (zones, record swaps,
//! weights) is best tested against moto.
//!
//! ```
//! use qovery_dr_testkit::route53_fake::Route53Fake;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = Route53Fake::start().await;
//! fake.add_change("C0PENDING", 2); // PENDING for two polls, then INSYNC
//! fake.set_health("hc-dr", 3, 16); // 3 of 16 checkers report success
//! fake.add_failover_record("app.example.com", "203.0.113.10", "198.51.100.20", "hc-primary");
//! fake.edit_before_next_updates("hc-primary", 1, None); // someone bumps the version once
//! assert_eq!(fake.health_check("hc-primary"), Some((1, false)));
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
    /// Health check id -> its configuration.
    checks: BTreeMap<String, Check>,
    /// Record name -> (primary value, secondary value, primary's health check).
    failover: BTreeMap<String, (String, String, String)>,
    updates: u64,
}

#[derive(Debug, Default)]
struct Check {
    version: i64,
    inverted: bool,
    /// Foreign edits still to apply just before the next UpdateHealthCheck calls.
    edits_pending: u32,
    edit_inverted: Option<bool>,
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

    /// A failover record: a PRIMARY set `primary` watched by `health_check_id` (created at
    /// version 1, not inverted, healthy unless [`set_health`](Self::set_health) says otherwise)
    /// and a SECONDARY set `secondary`, both A records with TTL 60. Served by
    /// `ListResourceRecordSets` for any zone.
    pub fn add_failover_record(&self, name: &str, primary: &str, secondary: &str, health_check_id: &str) {
        self.with(|s| {
            s.checks.insert(health_check_id.to_owned(), Check { version: 1, ..Check::default() });
            s.health.entry(health_check_id.to_owned()).or_insert((16, 16));
            s.failover.insert(
                name.trim_end_matches('.').to_owned(),
                (primary.to_owned(), secondary.to_owned(), health_check_id.to_owned()),
            );
        });
    }

    /// Simulates someone else editing the health check just before each of the next `times`
    /// UpdateHealthCheck calls: its version moves on (and `Inverted` is set if `inverted` is given),
    /// so an update carrying the version read before fails with `HealthCheckVersionMismatch`.
    pub fn edit_before_next_updates(&self, health_check_id: &str, times: u32, inverted: Option<bool>) {
        self.with(|s| {
            if let Some(c) = s.checks.get_mut(health_check_id) {
                c.edits_pending = times;
                c.edit_inverted = inverted;
            }
        });
    }

    /// A health check's `(HealthCheckVersion, Inverted)`.
    pub fn health_check(&self, health_check_id: &str) -> Option<(i64, bool)> {
        self.with(|s| s.checks.get(health_check_id).map(|c| (c.version, c.inverted)))
    }

    /// UpdateHealthCheck calls received so far (accepted or refused).
    pub fn health_check_updates(&self) -> u64 {
        self.with(|s| s.updates)
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
        if path.starts_with("hostedzone/") && path.ends_with("/rrset") {
            return list_failover_sets(&s);
        }
        if let Some(id) = path.strip_prefix("healthcheck/").filter(|p| !p.contains('/')) {
            return health_check(&mut s, id, req);
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
        error(400, "InvalidInput", "this fake serves GetChange, health checks and failover record sets only")
    }
}

fn list_failover_sets(s: &State) -> ResponseTemplate {
    let set = |name: &str, role: &str, value: &str, check: Option<&str>| {
        let check = check.map(|c| format!("<HealthCheckId>{c}</HealthCheckId>")).unwrap_or_default();
        format!(
            "<ResourceRecordSet><Name>{name}.</Name><Type>A</Type><SetIdentifier>{}</SetIdentifier><Failover>{role}</Failover><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>{value}</Value></ResourceRecord></ResourceRecords>{check}</ResourceRecordSet>",
            role.to_ascii_lowercase()
        )
    };
    let sets: String = s
        .failover
        .iter()
        .map(|(name, (p, sec, check))| set(name, "PRIMARY", p, Some(check)) + &set(name, "SECONDARY", sec, None))
        .collect();
    xml(
        200,
        format!(
            "<ListResourceRecordSetsResponse xmlns=\"{NS}\"><ResourceRecordSets>{sets}</ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>300</MaxItems></ListResourceRecordSetsResponse>"
        ),
    )
}

/// The text of the first `<tag>` element in `body`.
fn element<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(&body[start..end])
}

fn health_check(s: &mut State, id: &str, req: &Request) -> ResponseTemplate {
    let Some(check) = s.checks.get_mut(id) else {
        return error(404, "NoSuchHealthCheck", "No health check exists with the specified ID.");
    };
    let response = if req.method.as_str() == "POST" {
        if check.edits_pending > 0 {
            check.edits_pending -= 1;
            check.version += 1;
            if let Some(inverted) = check.edit_inverted {
                check.inverted = inverted;
            }
        }
        let body = String::from_utf8_lossy(&req.body);
        let sent_version = element(&body, "HealthCheckVersion").and_then(|v| v.parse::<i64>().ok());
        if sent_version.is_some_and(|v| v != check.version) {
            s.updates += 1;
            return error(
                409,
                "HealthCheckVersionMismatch",
                "The value of HealthCheckVersion in the request doesn't match the value of HealthCheckVersion in the health check.",
            );
        }
        if let Some(inverted) = element(&body, "Inverted") {
            check.inverted = inverted == "true";
        }
        check.version += 1;
        s.updates += 1;
        "UpdateHealthCheckResponse"
    } else {
        "GetHealthCheckResponse"
    };
    let Some(check) = s.checks.get(id) else {
        return error(404, "NoSuchHealthCheck", "No health check exists with the specified ID.");
    };
    xml(
        200,
        format!(
            "<{response} xmlns=\"{NS}\"><HealthCheck><Id>{id}</Id><CallerReference>{id}</CallerReference><HealthCheckConfig><IPAddress>203.0.113.10</IPAddress><Port>80</Port><Type>HTTP</Type><ResourcePath>/</ResourcePath><Inverted>{}</Inverted><Disabled>false</Disabled></HealthCheckConfig><HealthCheckVersion>{}</HealthCheckVersion></HealthCheck></{response}>",
            check.inverted, check.version
        ),
    )
}
