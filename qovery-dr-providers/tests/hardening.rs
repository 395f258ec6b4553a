//! Hardening: no secret reaches logs, journals, reports or `Debug` output
//! (the secrets audit), and the client-side rate limiter keeps a readiness run
//! over 500 environments under the API's limit.
#![cfg(all(
    feature = "qovery",
    feature = "cloudflare",
    feature = "postgres",
    feature = "registry",
    feature = "rfc2136",
    feature = "route53",
    feature = "etcd",
    feature = "webhook"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/logs.rs"]
mod logs;
#[path = "common/reaper.rs"]
mod reaper;
// The real peers the secrets audit talks to.
#[path = "pg/cluster.rs"]
#[allow(dead_code)] // shared with the binary that tests it
mod cluster;
#[path = "dns/knot.rs"]
#[allow(dead_code)] // shared with the binary that tests it
mod knot;
#[path = "dns/moto.rs"]
#[allow(dead_code)] // shared with the binary that tests it
mod moto;
#[path = "reg/server.rs"]
#[allow(dead_code)] // shared with the binary that tests it
mod server;

/// A monitor notification of plan `plan` (a check going from pass to fail).
fn notification(plan: &str) -> qovery_dr_core::monitor::Notification {
    qovery_dr_core::monitor::Notification {
        plan: plan.to_owned(),
        check: "verdict".into(),
        from: qovery_dr_core::readiness::CheckStatus::Pass,
        to: qovery_dr_core::readiness::CheckStatus::Fail,
        observed: "x".into(),
        expected: "y".into(),
        detail: "z".into(),
        at: qovery_dr_core::Timestamp::now(),
    }
}

mod hardening {
    mod hostile;
    mod rate_limits;
    mod secrets;
    mod secrets_on_the_wire;
}
