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
use prometheus_client::metrics::counter::Counter;
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

/// The monitor's Prometheus metrics: the readiness figures of the last evaluation
/// (`qdr_ready`, `qdr_replication_lag_seconds`, … and `qdr_readiness_check` per check),
/// and the monitor's own health (`qdr_monitor_evaluations_total`,
/// `qdr_monitor_last_evaluation_timestamp_seconds`,
/// `qdr_monitor_evaluation_duration_seconds`, `qdr_monitor_notifications_total` by
/// outcome), so a monitor that stopped evaluating can itself be alerted on.
///
/// [`MonitorMetrics::NAMES`] lists every metric name, as a dashboard or an alert
/// rule writes it.
///
/// A family appears in [`encode`](MonitorMetrics::encode)'s text once it has a value:
/// `qdr_last_backup_age_seconds` only for the dump strategy, the drill figures once a
/// drill is on record.
///
/// ```
/// use qovery_dr_core::monitor::MonitorMetrics;
/// let metrics = MonitorMetrics::default();
/// assert!(MonitorMetrics::NAMES.contains(&"qdr_ready"));
/// assert!(metrics.encode().trim_end().ends_with("# EOF"), "OpenMetrics text");
/// ```
#[derive(Debug)]
pub struct MonitorMetrics {
    registry: Registry,
    gauges: BTreeMap<&'static str, Family<Labels, F64Gauge>>,
    checks: Family<Labels, F64Gauge>,
    evaluations: Family<Labels, Counter>,
    last_evaluation: Family<Labels, F64Gauge>,
    evaluation_duration: Family<Labels, F64Gauge>,
    notifications: Family<Labels, Counter>,
}

/// The readiness gauges: name and help.
const GAUGES: [(&str, &str); 11] = [
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
    ("qdr_failover_epoch", "The failover epoch every layer holds (absent while they disagree)"),
];

impl Default for MonitorMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let mut gauges = BTreeMap::new();
        for (name, help) in GAUGES {
            let family = Family::<Labels, F64Gauge>::default();
            registry.register(name, help, family.clone());
            gauges.insert(name, family);
        }
        let checks = Family::<Labels, F64Gauge>::default();
        registry.register("qdr_readiness_check", "Readiness check: 1 pass, 0.5 warn, 0 fail", checks.clone());
        // prometheus-client appends `_total` to a counter's samples.
        let evaluations = Family::<Labels, Counter>::default();
        registry.register(
            "qdr_monitor_evaluations",
            "Readiness evaluations the monitor completed",
            evaluations.clone(),
        );
        let last_evaluation = Family::<Labels, F64Gauge>::default();
        registry.register(
            "qdr_monitor_last_evaluation_timestamp_seconds",
            "When the last evaluation completed (Unix seconds)",
            last_evaluation.clone(),
        );
        let evaluation_duration = Family::<Labels, F64Gauge>::default();
        registry.register(
            "qdr_monitor_evaluation_duration_seconds",
            "How long the last evaluation took",
            evaluation_duration.clone(),
        );
        let notifications = Family::<Labels, Counter>::default();
        registry.register(
            "qdr_monitor_notifications",
            "Notifications of confirmed transitions, by outcome (sent or failed)",
            notifications.clone(),
        );
        Self { registry, gauges, checks, evaluations, last_evaluation, evaluation_duration, notifications }
    }
}

impl MonitorMetrics {
    /// Every metric name the monitor exports, as queries write them (counters with
    /// their `_total` suffix).
    pub const NAMES: [&'static str; 16] = [
        GAUGES[0].0,
        GAUGES[1].0,
        GAUGES[2].0,
        GAUGES[3].0,
        GAUGES[4].0,
        GAUGES[5].0,
        GAUGES[6].0,
        GAUGES[7].0,
        GAUGES[8].0,
        GAUGES[9].0,
        GAUGES[10].0,
        "qdr_readiness_check",
        "qdr_monitor_evaluations_total",
        "qdr_monitor_last_evaluation_timestamp_seconds",
        "qdr_monitor_evaluation_duration_seconds",
        "qdr_monitor_notifications_total",
    ];

    fn plan_label(plan: &str) -> Labels {
        vec![("plan".to_owned(), plan.to_owned())]
    }

    fn evaluated(&self, plan: &str, at: Timestamp, took: Duration) {
        let labels = Self::plan_label(plan);
        self.evaluations.get_or_create(&labels).inc();
        self.last_evaluation.get_or_create(&labels).set(at.unix_millis() as f64 / 1000.0);
        self.evaluation_duration.get_or_create(&labels).set(took.as_secs_f64());
    }

    fn notified(&self, plan: &str, delivered: bool) {
        let mut labels = Self::plan_label(plan);
        labels.push(("outcome".to_owned(), if delivered { "sent" } else { "failed" }.to_owned()));
        self.notifications.get_or_create(&labels).inc();
    }

    fn set(&self, name: &str, plan: &str, value: Option<f64>) {
        if let (Some(family), Some(v)) = (self.gauges.get(name), value) {
            family.get_or_create(&Self::plan_label(plan)).set(v);
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
        self.set("qdr_failover_epoch", &r.plan, m.failover_epoch.map(|e| e as f64));
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
    latest: Mutex<Option<Arc<ReadinessReport>>>,
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
            latest: Mutex::new(None),
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

    /// The report of the last completed evaluation (`None` before the first).
    pub fn latest(&self) -> Option<Arc<ReadinessReport>> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// One evaluation: updates the metrics and the latest report, and sends the
    /// confirmed transitions before returning (a notification that cannot be delivered
    /// is logged and counted in `qdr_monitor_notifications_total{outcome="failed"}`, not
    /// retried beyond what the notifier does).
    pub async fn tick(&self) -> (ReadinessReport, Vec<Notification>) {
        let (report, out) = self.evaluate().await;
        for n in &out {
            self.deliver(n).await;
        }
        (report, out)
    }

    async fn deliver(&self, n: &Notification) {
        let delivered = match self.notifier.notify(n).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, check = %n.check, "notification not delivered");
                false
            }
        };
        self.metrics.notified(&n.plan, delivered);
    }

    /// Evaluates, updates the metrics and the latest report, and returns the report and
    /// the transitions this evaluation confirmed (not yet sent).
    async fn evaluate(&self) -> (ReadinessReport, Vec<Notification>) {
        let started = tokio::time::Instant::now();
        let report = self.readiness.evaluate().await;
        self.metrics.update(&report);
        self.metrics.evaluated(&report.plan, report.checked_at, started.elapsed());
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(report.clone()));
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
            if report.ready { "no check fails".to_owned() } else { report.reasons.join("; ") },
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
        (report, out)
    }

    /// Evaluates at once and then every interval until `shutdown` resolves.
    ///
    /// Notifications are delivered in order by a loop beside the evaluations: a slow or
    /// unreachable receiver (a webhook retrying, a chat service pacing its messages)
    /// never delays an evaluation, so the metrics stay fresh.
    ///
    /// `shutdown` is watched during an evaluation too: it returns promptly even while
    /// a peer is slow to answer, abandoning that evaluation and the notifications not
    /// delivered yet (logged with their number; a new monitor starts from `Pass` and
    /// notifies what is still wrong once confirmed).
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<Notification>();
        let evaluating = async {
            let mut ticker = tokio::time::interval(self.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let (_, out) = self.evaluate().await;
                for n in out {
                    // The receiving half lives as long as this loop: a send cannot fail.
                    let _ = queue.send(n);
                }
            }
        };
        let delivering = async {
            while let Some(n) = queued.recv().await {
                self.deliver(&n).await;
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = evaluating => {}
            _ = delivering => {}
        }
        let pending = queued.len();
        if pending > 0 {
            tracing::warn!(pending, "monitor stopped with notifications not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::ReadinessMetrics;

    #[test]
    fn every_name_is_exported_once_it_has_a_value() {
        let metrics = MonitorMetrics::default();
        let figures = ReadinessMetrics {
            replication_lag_seconds: Some(1.5),
            replication_lag_bytes: Some(4096),
            last_backup_age_seconds: Some(600.0),
            last_drill_age_seconds: Some(86_400.0),
            last_drill_rto_seconds: Some(300.0),
            last_drill_rpo_seconds: Some(2.0),
            failover_epoch: Some(3),
            ..ReadinessMetrics::default()
        };
        let report = ReadinessReport {
            plan: "p".into(),
            checked_at: Timestamp::from_unix_millis(1_000_000),
            checks: Vec::new(),
            ready: true,
            reasons: Vec::new(),
            warnings: Vec::new(),
            metrics: figures,
        };
        metrics.update(&report);
        metrics.evaluated("p", report.checked_at, Duration::from_millis(250));
        metrics.notified("p", true);
        metrics.checks.get_or_create(&vec![("plan".to_owned(), "p".to_owned())]).set(1.0);
        let text = metrics.encode();
        for name in MonitorMetrics::NAMES {
            assert!(text.contains(&format!("\n{name}{{plan=\"p\"")), "{name} in {text}");
        }
        assert!(text.contains("qdr_last_backup_age_seconds{plan=\"p\"} 600.0"), "{text}");
        assert!(text.contains("qdr_monitor_last_evaluation_timestamp_seconds{plan=\"p\"} 1000.0"), "{text}");
    }
}
