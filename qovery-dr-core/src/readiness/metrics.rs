//! Readiness figures and their Prometheus exposition (prometheus-client).

#[cfg(feature = "monitor")]
pub(crate) use exposition::encode;

/// The figures a readiness evaluation measured.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadinessMetrics {
    /// Replication lag in seconds (heartbeat-based).
    pub replication_lag_seconds: Option<f64>,
    /// Replication lag in bytes.
    pub replication_lag_bytes: Option<u64>,
    /// Age of the last successful backup (dump strategy).
    pub last_backup_age_seconds: Option<f64>,
    /// Images the DR site deploys that the DR registry lacks (or holds with another digest).
    pub images_missing: u64,
    /// Whether the DR cluster is running.
    pub dr_cluster_up: bool,
    /// Whether every DNS record is ready (present, TTL within the RTO, health checks).
    pub dns_ready: bool,
    /// The verdict.
    pub ready: bool,
    /// Age of the last successful drill or failover.
    pub last_drill_age_seconds: Option<f64>,
    /// Its measured RTO.
    pub last_drill_rto_seconds: Option<f64>,
    /// Its measured RPO.
    pub last_drill_rpo_seconds: Option<f64>,
    /// The failover epoch every layer holds (0 before the first failover; `None` when
    /// the layers disagree).
    #[serde(default)]
    pub failover_epoch: Option<u64>,
    pub(crate) dns_checked: u64,
    pub(crate) dns_failing: u64,
}

impl ReadinessMetrics {
    pub(crate) fn merge(&mut self, other: &ReadinessMetrics) {
        // Several databases: the worst of them.
        fn worst<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(if b > a { b } else { a }),
                (a, b) => a.or(b),
            }
        }
        self.replication_lag_seconds = worst(self.replication_lag_seconds, other.replication_lag_seconds);
        self.replication_lag_bytes = worst(self.replication_lag_bytes, other.replication_lag_bytes);
        self.last_backup_age_seconds = worst(self.last_backup_age_seconds, other.last_backup_age_seconds);
        self.images_missing += other.images_missing;
        self.dr_cluster_up |= other.dr_cluster_up;
        self.dns_checked += other.dns_checked;
        self.dns_failing += other.dns_failing;
        self.dns_ready = self.dns_checked > 0 && self.dns_failing == 0;
    }
}

/// The Prometheus exposition (feature `monitor`).
#[cfg(feature = "monitor")]
mod exposition {
    use std::sync::atomic::AtomicU64;

    use prometheus_client::encoding::text::encode as encode_text;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    use super::super::ReadinessReport;

    type Labels = Vec<(String, String)>;
    type F64Gauge = Gauge<f64, AtomicU64>;

    fn gauge(registry: &mut Registry, name: &str, help: &str, plan: &str, value: Option<f64>) {
        if let Some(v) = value {
            let family = Family::<Labels, F64Gauge>::default();
            family.get_or_create(&vec![("plan".to_owned(), plan.to_owned())]).set(v);
            registry.register(name, help, family);
        }
    }

    pub(crate) fn encode(report: &ReadinessReport) -> String {
        let mut registry = Registry::default();
        let m = &report.metrics;
        let plan = report.plan.as_str();
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        gauge(
            &mut registry,
            "qdr_ready",
            "Whether the plan is ready for failover (1) or not (0)",
            plan,
            Some(b(report.ready)),
        );
        gauge(&mut registry, "qdr_dr_cluster_up", "Whether the DR cluster is running", plan, Some(b(m.dr_cluster_up)));
        gauge(
            &mut registry,
            "qdr_dns_ready",
            "Whether every DNS record is ready for the switch",
            plan,
            Some(b(m.dns_ready)),
        );
        gauge(
            &mut registry,
            "qdr_images_missing",
            "Images missing in the DR registry",
            plan,
            Some(m.images_missing as f64),
        );
        gauge(
            &mut registry,
            "qdr_replication_lag_seconds",
            "Replication lag (heartbeat-based)",
            plan,
            m.replication_lag_seconds,
        );
        gauge(
            &mut registry,
            "qdr_replication_lag_bytes",
            "Replication lag in WAL bytes",
            plan,
            m.replication_lag_bytes.map(|b| b as f64),
        );
        gauge(
            &mut registry,
            "qdr_last_backup_age_seconds",
            "Age of the last successful backup",
            plan,
            m.last_backup_age_seconds,
        );
        gauge(
            &mut registry,
            "qdr_last_drill_age_seconds",
            "Age of the last successful drill or failover",
            plan,
            m.last_drill_age_seconds,
        );
        gauge(
            &mut registry,
            "qdr_last_drill_rto_seconds",
            "Measured RTO of the last drill",
            plan,
            m.last_drill_rto_seconds,
        );
        gauge(
            &mut registry,
            "qdr_last_drill_rpo_seconds",
            "Measured RPO of the last drill",
            plan,
            m.last_drill_rpo_seconds,
        );
        gauge(
            &mut registry,
            "qdr_failover_epoch",
            "The failover epoch every layer holds (absent while they disagree)",
            plan,
            m.failover_epoch.map(|e| e as f64),
        );
        let checks = Family::<Labels, F64Gauge>::default();
        for c in &report.checks {
            checks
                .get_or_create(&vec![
                    ("plan".to_owned(), plan.to_owned()),
                    ("category".to_owned(), c.category.as_str().to_owned()),
                    ("check".to_owned(), c.id.clone()),
                ])
                .set(c.status.score());
        }
        registry.register("qdr_readiness_check", "Readiness check: 1 pass, 0.5 warn, 0 fail", checks);
        let mut out = String::new();
        if let Err(e) = encode_text(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode readiness metrics");
        }
        out
    }
}
