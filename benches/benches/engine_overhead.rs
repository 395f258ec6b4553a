//! Engine overhead: a switchover whose DR environment has 20 services,
//! redeployed in one stage, with every provider operation taking 20 ms of
//! real time (simulated world, latency injected on every call), journaled to
//! a `FileJournal` (fsync on every append, as a user gets it).
//!
//! Each repetition runs the same plan twice on fresh worlds, concurrently
//! (`max_concurrency` 32) and one step at a time, alternating which goes first.
//! Everything below is measured inside the run it describes:
//!
//! - `engine_overhead_ratio` = wall time of the concurrent run / its critical
//!   path. The critical path is the provider-busy time of that same run, stage
//!   by stage: each call is attributed to the step that made it (the recorder
//!   reads [`current_step`](qovery_dr_core::engine::current_step)), a step's
//!   busy time is the union of its calls' intervals, a stage costs its slowest
//!   step, and calls made outside any step (preflight reads) add their busy time.
//!   What is left over is the engine's own cost: journaling, scheduling, polling.
//! - `engine_overhead_journal_ms`: time spent inside `Journal::append` during
//!   the concurrent run (summed over appends; appends of one stage's steps
//!   overlap, so this can exceed their share of the wall time).
//! - `engine_speedup_vs_sequential` = sequential wall / concurrent wall, per
//!   repetition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use qovery_dr_benches::{a_first, figure, note, setting};
use qovery_dr_core::async_trait;
use qovery_dr_core::engine::{
    AutoApprove, EngineOptions, FileJournal, Journal, JournalEntry, JournalError, LockGuard, RunMode,
};
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_testkit::recorder::Call;
use qovery_dr_testkit::{FaultAction, PlanWorld, Trigger, World, WorldConfig};

const SERVICES: usize = 20;
const LATENCY: Duration = Duration::from_millis(20);
const REPETITIONS: usize = 5;

fn plan() -> DrPlan {
    let text = include_str!("../../examples/plans/aws-cross-region.toml");
    match DrPlan::parse(text, PlanFormat::Toml) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("example plan: {e}");
            std::process::exit(1);
        }
    }
}

fn world(plan: &DrPlan) -> PlanWorld {
    let pw = World::from_plan(plan);
    pw.world.set_config(WorldConfig {
        queue_delay: Duration::ZERO,
        deploy_duration: Duration::ZERO,
        stop_duration: Duration::ZERO,
        dns_propagation: Duration::ZERO,
        poll_step: Duration::from_millis(1),
    });
    pw.with_dr_services(SERVICES);
    pw.world.with_state(|s| {
        for db in s.databases.values_mut() {
            db.lag = Duration::ZERO;
        }
    });
    pw.world.faults().inject("*", Trigger::Always, FaultAction::Latency(LATENCY));
    pw
}

/// A journal that measures the time its appends take.
#[derive(Debug)]
struct TimedJournal {
    inner: FileJournal,
    append_nanos: Arc<AtomicU64>,
    appends: Arc<AtomicU64>,
}

#[async_trait]
impl Journal for TimedJournal {
    async fn append(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        let t0 = Instant::now();
        let r = self.inner.append(guard, entry).await;
        let took = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.append_nanos.fetch_add(took, Ordering::Relaxed);
        self.appends.fetch_add(1, Ordering::Relaxed);
        r
    }
    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        self.inner.entries().await
    }
}

struct Measured {
    wall: Duration,
    critical_path: Duration,
    journal: Duration,
    appends: u64,
    steps: usize,
    calls: usize,
    calls_outside_steps: usize,
}

async fn run(plan: &DrPlan, max_concurrency: usize, dir: &std::path::Path, label: &str) -> Measured {
    let pw = world(plan);
    let path = dir.join(format!("{label}.jsonl"));
    let _ = std::fs::remove_file(&path);
    let append_nanos = Arc::new(AtomicU64::new(0));
    let appends = Arc::new(AtomicU64::new(0));
    let journal = TimedJournal {
        inner: FileJournal::new(&path),
        append_nanos: Arc::clone(&append_nanos),
        appends: Arc::clone(&appends),
    };
    let engine = pw
        .engine_builder()
        .journal(journal)
        .approver(AutoApprove::new("oncall-sre"))
        .options(EngineOptions {
            operator: "bench".into(),
            poll_interval: Duration::from_millis(1),
            max_concurrency,
            drain_ttl: false,
            ..EngineOptions::default()
        })
        .build();
    let t0 = Instant::now();
    let report = match engine.run(RunMode::Switchover).await {
        Ok(r) => r,
        Err(f) => {
            eprintln!("run failed: {}\n{}", f.error, f.report.to_text());
            std::process::exit(1);
        }
    };
    let wall = t0.elapsed();
    let stage_of: BTreeMap<String, String> = report.steps.iter().map(|s| (s.name.clone(), s.stage.clone())).collect();
    let _ = std::fs::remove_file(&path);
    let calls = pw.world.recorder().calls();
    Measured {
        wall,
        critical_path: critical_path(&calls, &stage_of),
        calls: calls.len(),
        calls_outside_steps: calls.iter().filter(|c| c.step.is_none()).count(),
        journal: Duration::from_nanos(append_nanos.load(Ordering::Relaxed)),
        appends: appends.load(Ordering::Relaxed),
        steps: report.steps.len(),
    }
}

/// Total length of the union of the intervals (overlapping calls count once).
fn busy(mut intervals: Vec<(Duration, Duration)>) -> Duration {
    intervals.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Duration, Duration)> = None;
    for (s, e) in intervals {
        match current {
            Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                current = Some((s, e));
            }
            None => current = Some((s, e)),
        }
    }
    total + current.map(|(s, e)| e - s).unwrap_or_default()
}

/// Provider-busy time outside steps, plus each stage's slowest step.
fn critical_path(calls: &[Call], stage_of: &BTreeMap<String, String>) -> Duration {
    let mut outside = Vec::new();
    let mut per_step: BTreeMap<&str, Vec<(Duration, Duration)>> = BTreeMap::new();
    for call in calls {
        let interval = (call.started, call.at.max(call.started));
        match call.step.as_deref() {
            Some(step) => per_step.entry(step).or_default().push(interval),
            None => outside.push(interval),
        }
    }
    let mut per_stage: BTreeMap<String, Duration> = BTreeMap::new();
    for (step, intervals) in per_step {
        let stage = stage_of.get(step).cloned().unwrap_or_else(|| step.to_owned());
        let slot = per_stage.entry(stage).or_default();
        *slot = (*slot).max(busy(intervals));
    }
    busy(outside) + per_stage.values().sum::<Duration>()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plan = plan();
    let dir = std::env::temp_dir().join(format!("qdr-bench-engine-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    // Warm-up (page cache, allocator), not counted.
    let _ = run(&plan, 32, &dir, "warmup").await;
    let (mut ratio, mut speedup, mut journal, mut cp, mut conc_wall, mut seq_wall) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut appends, mut steps, mut calls, mut outside) = (0, 0, 0, 0);
    for rep in 0..REPETITIONS {
        let (c, s) = if a_first(rep) {
            let c = run(&plan, 32, &dir, "concurrent").await;
            (c, run(&plan, 1, &dir, "sequential").await)
        } else {
            let s = run(&plan, 1, &dir, "sequential").await;
            (run(&plan, 32, &dir, "concurrent").await, s)
        };
        ratio.push(c.wall.as_secs_f64() / c.critical_path.as_secs_f64());
        speedup.push(s.wall.as_secs_f64() / c.wall.as_secs_f64());
        journal.push(ms(c.journal));
        cp.push(ms(c.critical_path));
        conc_wall.push(ms(c.wall));
        seq_wall.push(ms(s.wall));
        appends = c.appends;
        steps = c.steps;
        calls = c.calls;
        outside = c.calls_outside_steps;
    }
    let _ = std::fs::remove_dir_all(&dir);
    note("simulated world (in-memory providers with 20 ms of injected latency per call), real FileJournal with fsync");
    note(
        "critical_path_ms: measured in the concurrent run itself (per-step provider busy time, slowest step per stage)",
    );
    note("each ratio is computed per repetition from two measurements of that repetition; min/median/max across them");
    setting("services", SERVICES);
    setting("provider_latency_ms", LATENCY.as_millis());
    setting("repetitions", REPETITIONS);
    setting("steps", steps);
    setting("journal_appends", appends);
    setting("provider_calls", calls);
    setting("provider_calls_outside_steps", outside);
    figure("critical_path_ms", &cp, 1);
    figure("concurrent_wall_ms", &conc_wall, 1);
    figure("sequential_wall_ms", &seq_wall, 1);
    figure("engine_overhead_journal_ms", &journal, 1);
    figure("engine_overhead_ratio", &ratio, 3);
    figure("engine_speedup_vs_sequential", &speedup, 2);
}
