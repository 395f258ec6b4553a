//! The simulated world shared by the in-memory providers.

pub mod build;
mod persist;
pub mod state;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use qovery_dr_core::provider::{ClusterState, DeploymentPhase, LinkState, TargetHealth};
use qovery_dr_core::{DatabaseId, DnsTarget, EnvironmentId, ErrorKind, ProviderError, ProviderResult, Timestamp};
use tokio::time::Instant;

pub use build::{DatabaseSpec, EnvironmentSpec, PlanWorld, ServiceSpec};
pub use state::{HealthSource, LinkSim, NodeCondition, State};

use qovery_dr_core::provider::{CallFuture, CallInfo, Layer};

use crate::fault::{FaultInjector, FaultLayer};
use crate::recorder::{Recorder, RecordingLayer};

/// The provider name the in-memory implementations report in errors.
pub const PROVIDER: &str = "in-memory";

/// How long simulated things take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorldConfig {
    /// Time a deployment waits in the queue.
    pub queue_delay: Duration,
    /// Time a deployment takes once started.
    pub deploy_duration: Duration,
    /// Time a stop takes.
    pub stop_duration: Duration,
    /// Time a DNS change takes to reach every authoritative server.
    pub dns_propagation: Duration,
    /// Step of the polling loops inside the world (catch-up waits).
    pub poll_step: Duration,
}

impl WorldConfig {
    /// Durations for worlds that run in real time next to real servers (tests of real
    /// providers, processes killed mid-run): deployments of 200 ms, DNS in 100 ms.
    pub fn real_time_fast() -> Self {
        Self {
            queue_delay: Duration::from_millis(50),
            deploy_duration: Duration::from_millis(200),
            stop_duration: Duration::from_millis(50),
            dns_propagation: Duration::from_millis(100),
            poll_step: Duration::from_millis(20),
        }
    }
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            queue_delay: Duration::from_secs(5),
            deploy_duration: Duration::from_secs(60),
            stop_duration: Duration::from_secs(20),
            dns_propagation: Duration::from_secs(30),
            poll_step: Duration::from_millis(250),
        }
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Every call goes through these, as any provider wrapped in them would: the
    /// recorder outside, the faults inside (a failed call is recorded).
    instruments: (RecordingLayer, FaultLayer),
    faults: Arc<FaultInjector>,
    recorder: Arc<Recorder>,
    config: Mutex<WorldConfig>,
    started: Instant,
    wall_base: Mutex<Timestamp>,
    reported_split_brain: Mutex<BTreeSet<DatabaseId>>,
    persist_to: Mutex<Option<std::path::PathBuf>>,
    /// Held while a snapshot is serialised and written: concurrent mutations must not
    /// interleave their writes of the same file, and the newest state must land last.
    persisting: tokio::sync::Mutex<()>,
}

/// A simulated world: clusters, environments, databases, registries and DNS,
/// shared by the in-memory implementations of the four provider traits.
///
/// All time is tokio time: under `#[tokio::test(start_paused = true)]` a
/// one-minute deployment takes no real time. Cloning a `World` gives another
/// handle on the same world.
///
/// ```
/// use qovery_dr_testkit::World;
/// use qovery_dr_core::provider::ClusterState;
/// let world = World::new();
/// world.add_cluster("c1", ClusterState::Running);
/// assert!(world.recorder().calls().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct World {
    shared: Arc<Shared>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// An empty world with default timings and fault seed 0.
    pub fn new() -> Self {
        Self::with_config(WorldConfig::default())
    }

    /// An empty world with the given timings.
    pub fn with_config(config: WorldConfig) -> Self {
        let started = Instant::now();
        let (faults, recorder) = instruments(started);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                instruments: (RecordingLayer::new(Arc::clone(&recorder)), FaultLayer::new(Arc::clone(&faults))),
                faults,
                recorder,
                config: Mutex::new(config),
                started,
                // A fixed epoch: reports from simulated runs are reproducible.
                wall_base: Mutex::new(Timestamp::from_unix_millis(1_780_000_000_000)),
                reported_split_brain: Mutex::new(BTreeSet::new()),
                persist_to: Mutex::new(None),
                persisting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The fault rules every call of this world's providers goes through (a
    /// [`FaultLayer`] inside the world).
    pub fn faults(&self) -> &FaultInjector {
        &self.shared.faults
    }

    /// The call log and invariant violations (a [`RecordingLayer`] inside the world).
    pub fn recorder(&self) -> &Recorder {
        &self.shared.recorder
    }

    /// The rules, shared: a [`FaultLayer`] over them puts other providers (real ones)
    /// under the same schedule as this world's.
    pub fn fault_injector(&self) -> Arc<FaultInjector> {
        Arc::clone(&self.shared.faults)
    }

    /// The log, shared: a [`RecordingLayer`] over it records other providers' calls
    /// beside this world's, on the same clock.
    pub fn shared_recorder(&self) -> Arc<Recorder> {
        Arc::clone(&self.shared.recorder)
    }

    /// The timings.
    pub fn config(&self) -> WorldConfig {
        *self.shared.config.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the timings (affects requests made afterwards).
    pub fn set_config(&self, config: WorldConfig) {
        *self.shared.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// Simulated wall-clock time now (a fixed epoch plus tokio time elapsed).
    pub fn wall_now(&self) -> Timestamp {
        self.wall_base().plus(self.elapsed())
    }

    /// Simulated wall-clock time at a tokio instant.
    pub fn wall_at(&self, t: Instant) -> Timestamp {
        self.wall_base().plus(t.saturating_duration_since(self.shared.started))
    }

    fn wall_base(&self) -> Timestamp {
        *self.shared.wall_base.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the simulated wall clock read the real time now (it reads a fixed
    /// epoch by default, so that simulated runs are reproducible).
    pub fn use_real_wall_clock(&self) {
        let base = Timestamp::from_unix_millis(
            Timestamp::now()
                .unix_millis()
                .saturating_sub(u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX)),
        );
        *self.shared.wall_base.lock().unwrap_or_else(PoisonError::into_inner) = base;
    }

    /// Tokio time elapsed since the world was created.
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.shared.started)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads (or changes) the state directly, after bringing time-dependent
    /// values up to date. For scenario scripting; not recorded as a call.
    /// Invariants are checked afterwards.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let now = Instant::now();
        let out = {
            let mut state = self.lock();
            self.settle(&mut state, now);
            f(&mut state)
        };
        self.check_invariants();
        out
    }

    /// Runs one provider operation through the world's layers (recording, then faults),
    /// then `f` on the settled state, then the invariant checks.
    pub(crate) async fn call<T, F>(
        &self,
        operation: &'static str,
        mutating: bool,
        detail: String,
        f: F,
    ) -> ProviderResult<T>
    where
        T: Send,
        F: FnOnce(&mut State, &Ctx<'_>) -> ProviderResult<T> + Send,
    {
        let args = Rendered(&detail);
        let call = CallInfo::new(PROVIDER, operation, mutating).with_args(&args);
        // The layers call `next` once (neither the recorder nor the faults retry).
        let once = Mutex::new(Some(f));
        let next = || -> CallFuture<'_, T> {
            let f = once.lock().unwrap_or_else(PoisonError::into_inner).take();
            Box::pin(async move {
                match f {
                    Some(f) => self.apply(mutating, f).await,
                    None => Err(ProviderError::new(
                        ErrorKind::InvalidInput,
                        PROVIDER,
                        operation,
                        "a layer ran this world call twice",
                    )),
                }
            })
        };
        self.shared.instruments.around(&call, &next).await
    }

    async fn apply<T>(
        &self,
        mutating: bool,
        f: impl FnOnce(&mut State, &Ctx<'_>) -> ProviderResult<T>,
    ) -> ProviderResult<T> {
        let now = Instant::now();
        let (result, noop) = {
            let mut state = self.lock();
            self.settle(&mut state, now);
            let ctx = Ctx { world: self, now, noop: std::cell::Cell::new(false) };
            let r = f(&mut state, &ctx);
            (r, ctx.noop.get())
        };
        let applied = mutating && result.is_ok() && !noop;
        crate::recorder::report_applied(applied);
        if mutating {
            self.check_invariants();
            if applied {
                self.persist().await;
            }
        }
        result
    }

    /// Brings deployments and databases up to `now`.
    fn settle(&self, state: &mut State, now: Instant) {
        settle_deployments(state, now);
        let wall = |t: Instant| self.wall_at(t);
        for db in state.databases.values_mut() {
            db.advance(now, &wall);
        }
    }

    /// Checks the safety invariants now; violations go to the recorder.
    pub fn check_invariants(&self) {
        let at = self.elapsed();
        let state = self.lock();
        let mut reported = self.shared.reported_split_brain.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, db) in &state.databases {
            if db.a.writable() && db.b.writable() {
                if reported.insert(id.clone()) {
                    self.shared.recorder.violation(
                        at,
                        format!("split brain: database {id} has two writable primaries (old primary {:?}, promoted standby {:?})", db.a.condition, db.b.condition),
                    );
                }
            } else {
                reported.remove(id);
            }
        }
    }

    /// The health of a DNS target now, from its health source.
    pub fn target_health(&self, target: &DnsTarget) -> TargetHealth {
        let now = Instant::now();
        let mut state = self.lock();
        self.settle(&mut state, now);
        health_of(&state, target, now)
    }

    /// Whether an environment serves traffic now (deployed, running, on a running cluster).
    pub fn environment_serving(&self, environment: &EnvironmentId) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        self.settle(&mut state, now);
        serving(&state, environment)
    }
}

/// Context handed to an operation.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub world: &'a World,
    pub now: Instant,
    /// Set by an operation that succeeded without changing anything.
    pub noop: std::cell::Cell<bool>,
}

impl Ctx<'_> {
    /// Marks the call as a successful no-op (not counted as applied).
    pub fn no_change(&self) {
        self.noop.set(true);
    }
    pub fn config(&self) -> WorldConfig {
        self.world.config()
    }
    pub fn wall(&self) -> Timestamp {
        self.world.wall_at(self.now)
    }
    pub fn violation(&self, description: String) {
        self.world.shared.recorder.violation(self.world.elapsed(), description);
    }
}

/// The fault rules and the call log of a world whose clock starts at `started`.
pub(crate) fn instruments(started: Instant) -> (Arc<FaultInjector>, Arc<Recorder>) {
    (Arc::new(FaultInjector::default()), Arc::new(Recorder::starting_at(started)))
}

/// A call's rendered arguments, shown as they are.
struct Rendered<'a>(&'a str);

impl std::fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

pub(crate) fn serving(state: &State, environment: &EnvironmentId) -> bool {
    state
        .environments
        .get(environment)
        .is_some_and(|e| e.running && state.clusters.get(&e.cluster) == Some(&ClusterState::Running))
}

pub(crate) fn health_of(state: &State, target: &DnsTarget, now: Instant) -> TargetHealth {
    match state.health.get(target) {
        None => TargetHealth::Unknown,
        Some(HealthSource::Fixed(h)) => *h,
        Some(HealthSource::Environment(env)) => {
            if serving(state, env) {
                TargetHealth::Healthy
            } else {
                TargetHealth::Unhealthy
            }
        }
        Some(HealthSource::Flapping { period, since }) => {
            let n = now.saturating_duration_since(*since).as_nanos() / period.as_nanos().max(1);
            if n.is_multiple_of(2) { TargetHealth::Healthy } else { TargetHealth::Unhealthy }
        }
    }
}

fn settle_deployments(state: &mut State, now: Instant) {
    let State { deployments, environments, .. } = state;
    // Apply finished deployments in the order they finished.
    let mut due: Vec<&mut state::DeploymentSim> =
        deployments.values_mut().filter(|d| !d.settled && d.ends_at <= now).collect();
    due.sort_by_key(|d| (d.ends_at, d.requested_at));
    for d in due {
        d.settled = true;
        let Some(env) = environments.get_mut(&d.environment) else {
            continue;
        };
        if d.fails {
            env.running = false;
            continue;
        }
        match d.kind {
            state::DeploymentKind::Deploy => {
                for (id, svc) in env.services.iter_mut() {
                    // A deployment runs the configuration as it was when requested.
                    if let Some(config) = d.configs.get(id) {
                        svc.running = Some(config.clone());
                        svc.running_env_vars = d.env_vars.clone();
                    }
                }
                env.running = env.services.values().all(|s| s.running.is_some());
            }
            state::DeploymentKind::Stop => {
                env.running = false;
                for svc in env.services.values_mut() {
                    svc.running = None;
                }
            }
        }
    }
}

impl state::DatabaseSim {
    /// Brings WAL positions, replay and heartbeat visibility up to `now`.
    pub(crate) fn advance(&mut self, now: Instant, wall: &dyn Fn(Instant) -> Timestamp) {
        let rate = self.write_rate;
        for node in [&mut self.a, &mut self.b] {
            if node.is_primary {
                if node.writable() {
                    let dt = now.saturating_duration_since(node.updated_at).as_secs_f64();
                    node.lsn = node.lsn.advance((dt * rate as f64) as u64);
                }
                node.updated_at = now;
                node.history.push((now, node.lsn));
            }
        }
        let _ = wall;
        // Replay on the standby side.
        let (primary, standby, primary_hb) = if self.reversed {
            (&self.b, &mut self.a, &self.heartbeats_on_b)
        } else {
            (&self.a, &mut self.b, &self.heartbeats_on_a)
        };
        if !standby.is_primary {
            let replayed = match (self.mode, &self.link) {
                (qovery_dr_core::provider::ReplicationMode::Dump, _) => match self.dump_every {
                    Some(every) if !every.is_zero() => {
                        let since = now.saturating_duration_since(self.created_at);
                        let n = since.as_nanos() / every.as_nanos();
                        let at = self.created_at + every * u32::try_from(n).unwrap_or(u32::MAX);
                        Some(primary.lsn_at(at))
                    }
                    _ => None,
                },
                (_, LinkSim::Up) => Some(primary.lsn_at(now.checked_sub(self.lag).unwrap_or(now)).min(primary.lsn)),
                _ => None,
            };
            if let Some(r) = replayed {
                standby.lsn = standby.lsn.max(r);
            }
            standby.updated_at = now;
            if let Some(hb) = primary_hb.iter().rev().find(|(_, _, lsn)| *lsn <= standby.lsn)
                && standby.last_heartbeat.is_none_or(|(seq, _)| seq < hb.0)
            {
                standby.last_heartbeat = Some((hb.0, hb.1));
            }
        }
    }

    /// The link state as a provider reports it.
    pub(crate) fn link_state(&self) -> LinkState {
        let standby = if self.reversed { &self.a } else { &self.b };
        if standby.is_primary || self.mode == qovery_dr_core::provider::ReplicationMode::Dump {
            return LinkState::NotApplicable;
        }
        match self.link {
            LinkSim::Up => LinkState::Streaming,
            LinkSim::Down => LinkState::Down("no WAL receiver".to_owned()),
            LinkSim::Broken => LinkState::Broken("standby is on another timeline".to_owned()),
        }
    }
}

/// Deployment phase of a request at `now` (for the cluster provider).
pub(crate) fn deployment_phase(
    state: &State,
    id: &qovery_dr_core::DeploymentId,
    now: Instant,
) -> Option<(DeploymentPhase, &'static str)> {
    state.deployments.get(id).map(|d| d.phase(now))
}

impl qovery_dr_core::engine::Clock for World {
    fn now(&self) -> Timestamp {
        self.wall_now()
    }
}
