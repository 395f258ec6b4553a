//! The monitor: evaluates readiness on an interval, exports the figures as
//! Prometheus metrics, and notifies on state transitions only, with
//! hysteresis so a flapping check does not cause an alert storm.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use prometheus_client::encoding::text::encode as encode_text;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::model::Timestamp;
use crate::readiness::{CheckStatus, Readiness, ReadinessReport};

/// A confirmed change of a check's status (or of the verdict, id `verdict`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    /// The plan.
    pub plan: String,
    /// The check (`verdict` for the overall verdict).
    pub check: String,
    /// The previous confirmed status.
    pub from: CheckStatus,
    /// The new confirmed status.
    pub to: CheckStatus,
    /// What was observed.
    pub observed: String,
    /// The expectation.
    pub expected: String,
    /// What to do.
    pub detail: String,
    /// When the change was confirmed.
    pub at: Timestamp,
}

impl Notification {
    /// One line for humans: `[shop] replication:db PASS → FAIL: …`.
    pub fn summary(&self) -> String {
        format!(
            "[{}] {} {} → {}: {} (observed {}; expected {})",
            self.plan, self.check, self.from, self.to, self.detail, self.observed, self.expected
        )
    }
}

/// A notification could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("notification to {target} failed: {message}")]
pub struct NotifyError {
    /// Where it was going.
    pub target: String,
    /// Why it failed.
    pub message: String,
}

/// Delivers notifications (webhook, chat, pager, or your own).
#[async_trait]
pub trait Notifier: Send + Sync + Debug + 'static {
    /// Delivers one notification (retrying as the implementation sees fit).
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError>;
}

type Labels = Vec<(String, String)>;
type F64Gauge = Gauge<f64, AtomicU64>;

/// The monitor's Prometheus metrics.
#[derive(Debug)]
pub struct MonitorMetrics {
    registry: Registry,
    gauges: BTreeMap<&'static str, Family<Labels, F64Gauge>>,
    checks: Family<Labels, F64Gauge>,
}

impl Default for MonitorMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let mut gauges = BTreeMap::new();
        for (name, help) in [
            ("qdr_ready", "Whether the plan is ready for failover (1) or not (0)"),
            ("qdr_dr_cluster_up", "Whether the DR cluster is running"),
            ("qdr_dns_ready", "Whether every DNS record is ready for the switch"),
            ("qdr_images_missing", "Images missing in the DR registry"),
            ("qdr_replication_lag_seconds", "Replication lag (heartbeat-based)"),
            ("qdr_replication_lag_bytes", "Replication lag in WAL bytes"),
            ("qdr_last_backup_age_seconds", "Age of the last successful backup"),
            ("qdr_last_drill_age_seconds", "Age of the last successful drill or failover"),
            ("qdr_last_drill_rto_seconds", "Measured RTO of the last drill"),
            ("qdr_last_drill_rpo_seconds", "Measured RPO of the last drill"),
        ] {
            let family = Family::<Labels, F64Gauge>::default();
            registry.register(name, help, family.clone());
            gauges.insert(name, family);
        }
        let checks = Family::<Labels, F64Gauge>::default();
        registry.register("qdr_readiness_check", "Readiness check: 1 pass, 0.5 warn, 0 fail", checks.clone());
        Self { registry, gauges, checks }
    }
}

impl MonitorMetrics {
    fn set(&self, name: &str, plan: &str, value: Option<f64>) {
        if let (Some(family), Some(v)) = (self.gauges.get(name), value) {
            family.get_or_create(&vec![("plan".to_owned(), plan.to_owned())]).set(v);
        }
    }

    fn update(&self, r: &ReadinessReport) {
        let m = &r.metrics;
        let b = |x: bool| Some(if x { 1.0 } else { 0.0 });
        self.set("qdr_ready", &r.plan, b(r.ready));
        self.set("qdr_dr_cluster_up", &r.plan, b(m.dr_cluster_up));
        self.set("qdr_dns_ready", &r.plan, b(m.dns_ready));
        self.set("qdr_images_missing", &r.plan, Some(m.images_missing as f64));
        self.set("qdr_replication_lag_seconds", &r.plan, m.replication_lag_seconds);
        self.set("qdr_replication_lag_bytes", &r.plan, m.replication_lag_bytes.map(|x| x as f64));
        self.set("qdr_last_backup_age_seconds", &r.plan, m.last_backup_age_seconds);
        self.set("qdr_last_drill_age_seconds", &r.plan, m.last_drill_age_seconds);
        self.set("qdr_last_drill_rto_seconds", &r.plan, m.last_drill_rto_seconds);
        self.set("qdr_last_drill_rpo_seconds", &r.plan, m.last_drill_rpo_seconds);
        for c in &r.checks {
            self.checks
                .get_or_create(&vec![
                    ("plan".to_owned(), r.plan.clone()),
                    ("category".to_owned(), c.category.as_str().to_owned()),
                    ("check".to_owned(), c.id.clone()),
                ])
                .set(c.status.score());
        }
    }

    /// The metrics in the Prometheus/OpenMetrics text format (serve it on `/metrics`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode_text(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode monitor metrics");
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
struct Track {
    confirmed: CheckStatus,
    candidate: CheckStatus,
    streak: u32,
}

/// Evaluates readiness on an interval and notifies confirmed transitions.
///
/// A check's new status is confirmed after `confirmations` consecutive
/// evaluations agree (default 2): a check flapping every evaluation never
/// notifies. Every check starts as confirmed `Pass`.
#[derive(Debug)]
pub struct Monitor {
    readiness: Readiness,
    notifier: Arc<dyn Notifier>,
    interval: Duration,
    confirmations: u32,
    tracks: Mutex<BTreeMap<String, Track>>,
    metrics: Arc<MonitorMetrics>,
}

impl Monitor {
    /// A monitor evaluating `readiness` every `interval`.
    pub fn new(readiness: Readiness, notifier: Arc<dyn Notifier>, interval: Duration) -> Self {
        Self {
            readiness,
            notifier,
            interval,
            confirmations: 2,
            tracks: Mutex::new(BTreeMap::new()),
            metrics: Arc::new(MonitorMetrics::default()),
        }
    }

    /// Evaluations that must agree before a change is notified (at least 1).
    pub fn confirmations(mut self, n: u32) -> Self {
        self.confirmations = n.max(1);
        self
    }

    /// The metrics, to serve.
    pub fn metrics(&self) -> Arc<MonitorMetrics> {
        Arc::clone(&self.metrics)
    }

    /// One evaluation: updates the metrics and sends the confirmed transitions.
    pub async fn tick(&self) -> (ReadinessReport, Vec<Notification>) {
        let report = self.readiness.evaluate().await;
        self.metrics.update(&report);
        let verdict = if report.ready { CheckStatus::Pass } else { CheckStatus::Fail };
        let mut observations: Vec<(String, CheckStatus, String, String, String)> = report
            .checks
            .iter()
            .map(|c| (c.id.clone(), c.status, c.observed.clone(), c.expected.clone(), c.detail.clone()))
            .collect();
        observations.push((
            "verdict".to_owned(),
            verdict,
            if report.ready { "ready".to_owned() } else { format!("{} failing", report.reasons.len()) },
            "ready for failover".to_owned(),
            report.reasons.join("; "),
        ));
        let mut out = Vec::new();
        {
            let mut tracks = self.tracks.lock().unwrap_or_else(PoisonError::into_inner);
            for (id, status, observed, expected, detail) in observations {
                let t = tracks.entry(id.clone()).or_insert(Track {
                    confirmed: CheckStatus::Pass,
                    candidate: CheckStatus::Pass,
                    streak: 0,
                });
                if status == t.confirmed {
                    t.candidate = status;
                    t.streak = 0;
                    continue;
                }
                if status == t.candidate {
                    t.streak += 1;
                } else {
                    t.candidate = status;
                    t.streak = 1;
                }
                if t.streak >= self.confirmations {
                    out.push(Notification {
                        plan: report.plan.clone(),
                        check: id,
                        from: t.confirmed,
                        to: status,
                        observed,
                        expected,
                        detail,
                        at: report.checked_at,
                    });
                    t.confirmed = status;
                    t.streak = 0;
                }
            }
        }
        for n in &out {
            if let Err(e) = self.notifier.notify(n).await {
                tracing::error!(error = %e, check = %n.check, "notification not delivered");
            }
        }
        (report, out)
    }

    /// Evaluates every interval until `shutdown` resolves.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticker.tick() => {
                    let _ = self.tick().await;
                }
            }
        }
    }
}
