//! Fault injection: make any call of any provider fail, stall or misreport,
//! changeable at run time. A [`FaultLayer`] applies a [`FaultInjector`]'s rules to any
//! provider (the Qovery client over HTTP, PostgreSQL, Route53…); the simulated world's
//! providers go through one too ([`World::faults`](crate::World::faults)).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use qovery_dr_core::provider::{CallFuture, CallInfo, Layer, Next};
use qovery_dr_core::{ErrorKind, ProviderError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// When a fault fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// On the n-th matching call only (1-based).
    Nth(u64),
    /// On the first n matching calls.
    FirstN(u64),
    /// On every matching call.
    Always,
    /// On each matching call with probability `p` (seeded: see [`FaultInjector::with_seed`]).
    Probability(f64),
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Fail without applying the operation.
    Fail(ErrorKind),
    /// Apply the operation, then report this error (typically
    /// [`ErrorKind::Indeterminate`]: "the request may have been applied").
    ApplyThenFail(ErrorKind),
    /// Delay the call by this long (then run it).
    Latency(Duration),
    /// Never answer (until the caller's timeout cancels the future).
    Hang,
}

/// What the world does for one call, decided by the injector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// Delay before running.
    pub latency: Duration,
    /// Never answer.
    pub hang: bool,
    /// Fail before applying.
    pub fail: Option<ErrorKind>,
    /// Fail after applying.
    pub fail_after_apply: Option<ErrorKind>,
}

/// An identifier of an injected fault, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

#[derive(Debug)]
struct Rule {
    id: FaultId,
    operation: String,
    trigger: Trigger,
    action: FaultAction,
    seen: u64,
}

#[derive(Debug)]
struct Inner {
    rules: Vec<Rule>,
    next_id: u64,
    rng: StdRng,
}

/// The fault rules of a world. Operation names are `trait.method`
/// (`cluster.deploy_environment`, `dns.switch`, `replication.promote_standby`,
/// `registry.copy`…); a rule for `cluster.*` matches every cluster operation
/// and `*` matches all.
#[derive(Debug)]
pub struct FaultInjector {
    inner: Mutex<Inner>,
}

impl Default for FaultInjector {
    fn default() -> Self {
        Self::with_seed(0)
    }
}

fn matches(pattern: &str, op: &str) -> bool {
    pattern == "*" || pattern == op || pattern.strip_suffix('*').is_some_and(|p| op.starts_with(p))
}

impl FaultInjector {
    /// An injector whose probabilistic faults draw from a generator seeded with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self { inner: Mutex::new(Inner { rules: Vec::new(), next_id: 0, rng: StdRng::seed_from_u64(seed) }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a fault on `operation` (a name, a `prefix.*` pattern, or `*`).
    pub fn inject(&self, operation: &str, trigger: Trigger, action: FaultAction) -> FaultId {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = FaultId(inner.next_id);
        inner.rules.push(Rule { id, operation: operation.to_owned(), trigger, action, seen: 0 });
        id
    }

    /// Removes one fault.
    pub fn remove(&self, id: FaultId) {
        self.lock().rules.retain(|r| r.id != id);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Reseeds the generator used by probabilistic faults.
    pub fn reseed(&self, seed: u64) {
        self.lock().rng = StdRng::seed_from_u64(seed);
    }

    /// Decides what happens to one call of `operation`.
    pub fn decide(&self, operation: &str) -> Decision {
        let mut inner = self.lock();
        let Inner { rules, rng, .. } = &mut *inner;
        let mut d = Decision::default();
        for rule in rules.iter_mut().filter(|r| matches(&r.operation, operation)) {
            rule.seen += 1;
            let fire = match rule.trigger {
                Trigger::Nth(n) => rule.seen == n,
                Trigger::FirstN(n) => rule.seen <= n,
                Trigger::Always => true,
                Trigger::Probability(p) => rng.random_bool(p.clamp(0.0, 1.0)),
            };
            if !fire {
                continue;
            }
            match rule.action {
                FaultAction::Fail(k) => d.fail = d.fail.or(Some(k)),
                FaultAction::ApplyThenFail(k) => d.fail_after_apply = d.fail_after_apply.or(Some(k)),
                FaultAction::Latency(l) => d.latency += l,
                FaultAction::Hang => d.hang = true,
            }
        }
        d
    }
}

/// A [`Layer`] that applies a [`FaultInjector`]'s rules to every call of the provider
/// it wraps, matched by the call's operation name (`cluster.deploy_environment`…).
///
/// ```
/// use std::sync::Arc;
/// use qovery_dr_core::provider::{ClusterProvider, Layered};
/// use qovery_dr_core::{ClusterId, ErrorKind};
/// use qovery_dr_testkit::memory::InMemoryCluster;
/// use qovery_dr_testkit::{FaultAction, FaultInjector, FaultLayer, Trigger, World};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let injector = Arc::new(FaultInjector::default());
/// let cluster = Layered::new(InMemoryCluster::new(&World::new()), FaultLayer::new(Arc::clone(&injector)));
/// injector.inject("cluster.cluster_status", Trigger::Nth(1), FaultAction::Fail(ErrorKind::Transient));
/// let e = cluster.cluster_status(&ClusterId::new("c1")).await.unwrap_err();
/// assert_eq!(e.kind(), ErrorKind::Transient);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FaultLayer {
    injector: Arc<FaultInjector>,
}

impl FaultLayer {
    /// A layer applying `injector`'s rules (shared: rules added later apply at once).
    pub fn new(injector: Arc<FaultInjector>) -> Self {
        Self { injector }
    }

    /// The rules.
    pub fn injector(&self) -> &FaultInjector {
        &self.injector
    }
}

/// The error of an injected fault.
pub(crate) fn injected(kind: ErrorKind, provider: &str, operation: &str) -> ProviderError {
    let e = ProviderError::new(kind, provider, operation, format!("fault injected on {operation}"));
    if kind == ErrorKind::RateLimited { e.with_retry_after(Duration::from_secs(1)) } else { e }
}

impl Layer for FaultLayer {
    fn around<'a, T: Send + 'a>(&'a self, call: &'a CallInfo<'a>, next: &'a Next<'a, T>) -> CallFuture<'a, T> {
        Box::pin(async move {
            let decision = self.injector.decide(call.operation);
            if !decision.latency.is_zero() {
                tokio::time::sleep(decision.latency).await;
            }
            if decision.hang {
                std::future::pending::<()>().await;
            }
            if let Some(kind) = decision.fail {
                crate::recorder::report_applied(false);
                return Err(injected(kind, call.provider, call.operation));
            }
            let result = next().await;
            match (result, decision.fail_after_apply) {
                (Ok(_), Some(kind)) => {
                    // Applied, whatever the caller hears: "the request may have been applied".
                    crate::recorder::report_applied(call.mutating);
                    Err(injected(kind, call.provider, call.operation))
                }
                (r, _) => r,
            }
        })
    }
}

/// What a random [`ChaosSchedule`] may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChaosOptions {
    /// Whether calls may hang (until the caller's timeout). Off against real peers,
    /// where a step's timeout is minutes of real time.
    pub hangs: bool,
    /// The longest injected latency (whole seconds, at least one).
    pub max_latency: Duration,
}

impl Default for ChaosOptions {
    /// Hangs, and latencies of up to 30 s: for simulated time.
    fn default() -> Self {
        Self { hangs: true, max_latency: Duration::from_secs(30) }
    }
}

impl ChaosOptions {
    /// For real peers in real time: no hang, latencies of 1 or 2 s.
    pub fn real_time() -> Self {
        Self { hangs: false, max_latency: Duration::from_secs(2) }
    }
}

/// A seeded random fault schedule: one to five faults on operations a run makes, each a
/// failure (transient, timeout, throttling, permission denied), an apply-then-fail
/// ("the request may have been applied"), a latency or a hang, on the n-th call, the
/// first n calls, or at random. The same seed gives the same schedule, whichever
/// providers it is applied to (the simulated world's, or real ones behind a
/// [`FaultLayer`]).
///
/// ```
/// use qovery_dr_testkit::{ChaosOptions, ChaosSchedule, FaultInjector};
/// let a = ChaosSchedule::random(7, ChaosSchedule::RUN_OPERATIONS, ChaosOptions::default());
/// let b = ChaosSchedule::random(7, ChaosSchedule::RUN_OPERATIONS, ChaosOptions::default());
/// assert_eq!(a, b);
/// let injector = FaultInjector::default();
/// a.apply(&injector);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosSchedule {
    seed: u64,
    faults: Vec<(&'static str, Trigger, FaultAction)>,
}

/// splitmix64: a tiny deterministic generator for building schedules.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

impl ChaosSchedule {
    /// The operations a failover run makes, whichever providers serve them.
    pub const RUN_OPERATIONS: &'static [&'static str] = &[
        "cluster.cluster_status",
        "cluster.environment_status",
        "cluster.list_services",
        "cluster.deploy_services",
        "cluster.deployment_status",
        "cluster.set_variable",
        "cluster.set_service_image",
        "dns.current",
        "dns.switch",
        "dns.change_status",
        "dns.target_health",
        "replication.status",
        "replication.primary_writability",
        "replication.fence_primary",
        "replication.wait_for_catch_up",
        "replication.promote_standby",
        "replication.last_heartbeat",
        "registry.parity",
    ];

    /// The schedule of `seed` over `operations`.
    pub fn random(seed: u64, operations: &[&'static str], options: ChaosOptions) -> Self {
        let mut rng = SplitMix(seed);
        let mut faults = Vec::new();
        if operations.is_empty() {
            return Self { seed, faults };
        }
        for _ in 0..1 + rng.below(5) {
            let op = operations[usize::try_from(rng.below(operations.len() as u64)).unwrap_or(0)];
            let action = match rng.below(7) {
                0 => FaultAction::Fail(ErrorKind::Transient),
                1 => FaultAction::Fail(ErrorKind::Timeout),
                2 => FaultAction::Fail(ErrorKind::RateLimited),
                3 => FaultAction::ApplyThenFail(ErrorKind::Indeterminate),
                4 => FaultAction::Latency(Duration::from_secs(1 + rng.below(options.max_latency.as_secs()))),
                5 => FaultAction::Fail(ErrorKind::PermissionDenied),
                _ if options.hangs => FaultAction::Hang,
                _ => FaultAction::Fail(ErrorKind::Transient),
            };
            let trigger = match rng.below(3) {
                0 => Trigger::Nth(1 + rng.below(4)),
                1 => Trigger::FirstN(1 + rng.below(3)),
                _ => Trigger::Probability(0.05 + (rng.below(25) as f64) / 100.0),
            };
            faults.push((op, trigger, action));
        }
        Self { seed, faults }
    }

    /// Adds the faults to `injector`, and seeds its generator with the schedule's seed.
    pub fn apply(&self, injector: &FaultInjector) {
        injector.reseed(self.seed);
        for (op, trigger, action) in &self.faults {
            injector.inject(op, *trigger, *action);
        }
    }

    /// One line per fault, for failure messages.
    pub fn describe(&self) -> Vec<String> {
        self.faults.iter().map(|(op, trigger, action)| format!("{op}: {action:?} on {trigger:?}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_first_n_and_always() {
        let f = FaultInjector::default();
        f.inject("cluster.deploy_environment", Trigger::Nth(2), FaultAction::Fail(ErrorKind::Transient));
        assert_eq!(f.decide("cluster.deploy_environment").fail, None);
        assert_eq!(f.decide("cluster.deploy_environment").fail, Some(ErrorKind::Transient));
        assert_eq!(f.decide("cluster.deploy_environment").fail, None);
        f.clear();
        f.inject("dns.*", Trigger::FirstN(2), FaultAction::Latency(Duration::from_secs(1)));
        assert_eq!(f.decide("dns.switch").latency, Duration::from_secs(1));
        assert_eq!(f.decide("dns.current").latency, Duration::from_secs(1));
        assert_eq!(f.decide("dns.current").latency, Duration::ZERO);
        assert_eq!(f.decide("cluster.x").latency, Duration::ZERO);
        let id = f.inject("*", Trigger::Always, FaultAction::Hang);
        assert!(f.decide("anything").hang);
        f.remove(id);
        assert!(!f.decide("anything").hang);
    }

    #[test]
    fn probability_is_reproducible_from_the_seed() {
        let draw = |seed| {
            let f = FaultInjector::with_seed(seed);
            f.inject("*", Trigger::Probability(0.5), FaultAction::Fail(ErrorKind::Timeout));
            (0..64).map(|_| f.decide("x").fail.is_some()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let hits = draw(7).iter().filter(|b| **b).count();
        assert!((16..=48).contains(&hits), "{hits}");
    }
}
