//! Readiness: every check of a DR site, run concurrently under a concurrency
//! bound and a request rate, each Pass/Warn/Fail with evidence, and one
//! "ready for failover?" verdict. Rendered as a terminal table, JSON and
//! Prometheus text.
//!
//! ```
//! use qovery_dr_core::plan::DrPlan;
//! use qovery_dr_core::readiness::Readiness;
//! use qovery_dr_testkit::World;
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let plan = DrPlan::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml")).await.unwrap();
//! let sim = World::from_plan(&plan);
//! let report = Readiness::new(plan, sim.providers()).evaluate().await;
//! println!("{}", report.to_table());
//! assert!(report.ready, "{:?}", report.reasons);
//! assert!(report.to_prometheus().contains("qdr_ready"));
//! # });
//! ```

mod cadence;
mod check;
mod checks;
mod epoch;
mod metrics;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

pub use crate::model::Activity;
pub use cadence::{CadenceItem, cadence, last_drill};
pub use check::{CheckCategory, CheckResult, CheckStatus};
pub use metrics::ReadinessMetrics;
pub use throttle::Throttle;

use crate::clock::{Clock, SystemClock};
use crate::journal::{Journal, JournalEntry};
use crate::lock::FailoverLock;
use crate::model::Timestamp;
use crate::plan::DrPlan;
use crate::provider::Providers;

/// Bounds on the API traffic of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadinessOptions {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Calls started per second, at most.
    pub rate_per_second: Option<f64>,
    /// The longest one call may take.
    pub call_timeout: Duration,
}

impl Default for ReadinessOptions {
    fn default() -> Self {
        Self { concurrency: 16, rate_per_second: None, call_timeout: Duration::from_secs(30) }
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadinessReport {
    /// The plan.
    pub plan: String,
    /// When.
    pub checked_at: Timestamp,
    /// Every check, grouped by category.
    pub checks: Vec<CheckResult>,
    /// Ready for failover: no check fails.
    pub ready: bool,
    /// Why not (the failing checks).
    pub reasons: Vec<String>,
    /// What to fix before the incident (the warnings).
    pub warnings: Vec<String>,
    /// Figures for metrics.
    pub metrics: ReadinessMetrics,
}

/// Evaluates the readiness of a plan's DR site.
#[derive(Debug, Clone)]
pub struct Readiness {
    plan: DrPlan,
    providers: Providers,
    lock: Option<Arc<dyn FailoverLock>>,
    history: Vec<JournalEntry>,
    journal: Option<Arc<dyn Journal>>,
    clock: Arc<dyn Clock>,
    options: ReadinessOptions,
}

impl Readiness {
    /// Readiness of `plan` through `providers`, with default bounds.
    pub fn new(plan: DrPlan, providers: Providers) -> Self {
        let clock = providers.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        Self {
            plan,
            providers,
            lock: None,
            history: Vec::new(),
            journal: None,
            clock,
            options: ReadinessOptions::default(),
        }
    }

    /// Also checks that this lock is free.
    pub fn lock(mut self, lock: Arc<dyn FailoverLock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Journal history (every run's entries) for the drill cadence.
    pub fn history(mut self, entries: Vec<JournalEntry>) -> Self {
        self.history = entries;
        self
    }

    /// A journal whose entries are read at every evaluation (after the
    /// [`history`](Self::history) given, if any), so a long-running monitor sees a drill
    /// or a failover recorded since it started. A journal that cannot be read gives a
    /// `journal` check that warns (the cadence and the last drill are then unknown).
    pub fn journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The wall clock for ages (default: the providers' clock, [`Providers::clock`],
    /// else the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Concurrency, rate and timeout bounds.
    pub fn options(mut self, options: ReadinessOptions) -> Self {
        self.options = options;
        self
    }

    /// Runs every check concurrently (within the bounds) and gives the verdict.
    pub async fn evaluate(&self) -> ReadinessReport {
        let ctx = Arc::new(checks::Ctx {
            plan: self.plan.clone(),
            providers: self.providers.clone(),
            throttle: Throttle::new(self.options.concurrency, self.options.rate_per_second),
            timeout: self.options.call_timeout,
            clock: Arc::clone(&self.clock),
        });
        let mut set = tokio::task::JoinSet::new();
        let mut order = 0usize;
        let mut spawn = |set: &mut tokio::task::JoinSet<(usize, checks::Outcome)>, fut: checks::BoxFut| {
            let n = order;
            order += 1;
            set.spawn(async move { (n, fut.await) });
        };
        spawn(&mut set, Box::pin(checks::cluster(Arc::clone(&ctx))));
        for d in 0..self.plan.primary.databases().count() {
            spawn(&mut set, Box::pin(checks::replication(Arc::clone(&ctx), d)));
        }
        spawn(&mut set, Box::pin(checks::capacity(Arc::clone(&ctx))));
        for r in 0..self.plan.dns.len() {
            spawn(&mut set, Box::pin(checks::dns(Arc::clone(&ctx), r)));
        }
        for i in 0..self.plan.dr.environments.len() {
            spawn(&mut set, Box::pin(checks::environment(Arc::clone(&ctx), i)));
        }
        let mut outcomes: Vec<(usize, checks::Outcome)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(o) => outcomes.push(o),
                Err(e) => outcomes.push((
                    usize::MAX,
                    checks::Outcome::single(CheckResult::new(
                        "internal",
                        CheckCategory::Cluster,
                        CheckStatus::Fail,
                        format!("a check task ended abnormally: {e}"),
                        "every check completes",
                        "report this as a bug",
                    )),
                )),
            }
        }
        outcomes.sort_by_key(|(n, _)| *n);
        let mut metrics = ReadinessMetrics::default();
        let mut results = Vec::new();
        for (_, o) in outcomes {
            metrics.merge(&o.metrics);
            results.extend(o.checks);
        }
        results.push(checks::lock(self.lock.as_deref(), &self.plan).await);
        let (epoch_check, epoch) =
            epoch::check(&self.plan, &self.providers, &ctx.throttle, self.options.call_timeout).await;
        results.push(epoch_check);
        metrics.failover_epoch = epoch;
        results.extend(static_stability(&self.plan, &self.providers));
        results.extend(checks::terraform_drift(&self.plan, self.options.call_timeout).await);
        let now = self.clock.now();
        let mut history = std::borrow::Cow::Borrowed(&self.history);
        if let Some(journal) = &self.journal {
            match tokio::time::timeout(self.options.call_timeout, journal.entries()).await {
                Ok(Ok(entries)) => history.to_mut().extend(entries),
                Ok(Err(e)) => results.push(journal_unreadable(e.to_string())),
                Err(_) => results.push(journal_unreadable(format!(
                    "no answer within {}",
                    humantime::format_duration(self.options.call_timeout)
                ))),
            }
        }
        let history: &[JournalEntry] = &history;
        results.extend(checks::cadence(history, now));
        if let Some((at, report)) = last_drill(history) {
            metrics.last_drill_age_seconds = Some(now.saturating_since(at).as_secs_f64());
            metrics.last_drill_rto_seconds = report.measured_rto_ms.map(|ms| ms as f64 / 1000.0);
            metrics.last_drill_rpo_seconds = report.measured_rpo_ms.map(|ms| ms as f64 / 1000.0);
        }
        let line =
            |c: &CheckResult| format!("{}: {} (observed {}; expected {})", c.id, c.detail, c.observed, c.expected);
        let reasons: Vec<String> = results.iter().filter(|c| c.status == CheckStatus::Fail).map(line).collect();
        let warnings: Vec<String> = results.iter().filter(|c| c.status == CheckStatus::Warn).map(line).collect();
        metrics.ready = reasons.is_empty();
        ReadinessReport {
            plan: self.plan.name.clone(),
            checked_at: now,
            ready: reasons.is_empty(),
            reasons,
            warnings,
            checks: results,
            metrics,
        }
    }
}

/// One check per scenario of the static-stability lint ([`crate::stability`]), with the
/// declarations of these providers (the plan's for a provider that declares none): warns
/// when a step of the failover would fail in that scenario.
fn static_stability(plan: &DrPlan, providers: &Providers) -> Vec<CheckResult> {
    use crate::stability::{Impact, PlaneMap, Scenario, StabilityReport};
    let planes = PlaneMap::from_providers(plan, providers).or_else(PlaneMap::from_plan(plan));
    let report = StabilityReport::with_planes(plan, &planes);
    Scenario::ALL
        .into_iter()
        .map(|scenario| {
            let blocked: Vec<_> =
                report.findings_for(scenario).into_iter().filter(|f| f.impact == Impact::Blocks).collect();
            let (status, detail) = match blocked.first() {
                None => (CheckStatus::Pass, "the failover does not stop on it".to_owned()),
                Some(f) => (CheckStatus::Warn, format!("{} needs {}: {}", f.step, f.plane.service, f.instead)),
            };
            let mut steps: Vec<&String> = blocked.iter().map(|f| &f.step).collect();
            steps.dedup();
            let observed = if steps.is_empty() {
                "no step blocked".to_owned()
            } else {
                format!("{} step(s) blocked: {}", steps.len(), crate::stability::join_short(&steps))
            };
            CheckResult::new(
                format!("static-stability:{scenario}"),
                CheckCategory::Resilience,
                status,
                observed,
                "a failover that does not depend on it",
                detail,
            )
        })
        .collect()
}

fn journal_unreadable(why: String) -> CheckResult {
    CheckResult::new(
        "journal",
        CheckCategory::Cadence,
        CheckStatus::Warn,
        format!("unreadable: {why}"),
        "the journal answers",
        "the drill cadence and the last drill's age are unknown: check the [state] backend",
    )
}

impl ReadinessReport {
    /// A terminal table, then the verdict.
    pub fn to_table(&self) -> String {
        let w_id = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(5).clamp(5, 60);
        let w_obs = self.checks.iter().map(|c| c.observed.len()).max().unwrap_or(8).clamp(8, 50);
        let mut out = format!("readiness of plan {} at {}\n", self.plan, self.checked_at);
        out.push_str(&format!("  {:<4} {:<12} {:<w_id$} {:<w_obs$} expected\n", "", "category", "check", "observed"));
        for c in &self.checks {
            let id: String = c.id.chars().take(w_id).collect();
            let obs: String = c.observed.chars().take(w_obs).collect();
            out.push_str(&format!(
                "  {:<4} {:<12} {id:<w_id$} {obs:<w_obs$} {}\n",
                c.status,
                c.category.as_str(),
                c.expected
            ));
        }
        if self.ready {
            out.push_str(&format!(
                "READY for failover ({} warning{})\n",
                self.warnings.len(),
                if self.warnings.len() == 1 { "" } else { "s" }
            ));
        } else {
            out.push_str(&format!(
                "NOT READY for failover ({} failing check{}):\n",
                self.reasons.len(),
                if self.reasons.len() == 1 { "" } else { "s" }
            ));
            for r in &self.reasons {
                out.push_str(&format!("  - {r}\n"));
            }
        }
        for w in &self.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
        out
    }

    /// Prometheus text exposition of the verdict, every check and the figures (feature
    /// `monitor`, on by default).
    #[cfg(feature = "monitor")]
    pub fn to_prometheus(&self) -> String {
        metrics::encode(self)
    }
}
