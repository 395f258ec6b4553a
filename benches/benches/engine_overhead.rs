//! Engine overhead: a switchover whose DR environment has 20 services,
//! redeployed in one stage, with every provider operation taking 20 ms of
//! real time (simulated world, latency injected on every call).
//!
//! - `engine_overhead_ratio` = wall time of the concurrent run / its critical
//!   path. The critical path is the sum, stage by stage, of the slowest step's
//!   provider-call time (plus the calls made before the first step), measured
//!   from the call log of a sequential run of the same plan, where each call
//!   belongs to exactly one step.
//! - `engine_speedup_vs_sequential` = wall time of the same plan run one step
//!   at a time / wall time of the concurrent run.
//!
//! Runs alternate (sequential, concurrent) for several repetitions and the
//! medians are reported.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use qovery_dr_core::engine::{AutoApprove, EngineOptions, JournalEvent, MemoryJournal, RunMode};
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_core::{ImageRef, ServiceId, Timestamp};
use qovery_dr_testkit::state::{ServiceConfig, ServiceSim};
use qovery_dr_testkit::world::build::digest_of;
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
    let dr_env = plan.dr.environments[0].clone();
    let from = &plan.registry_mapping.from;
    let images: Vec<ImageRef> = (0..SERVICES)
        .filter_map(|i| format!("{}/{}/svc{i}:v1", from.host, from.prefix.clone().unwrap_or_default()).parse().ok())
        .collect();
    for img in &images {
        pw.world.add_image(img, digest_of(&img.to_string()), 1 << 20);
        if let Ok(dr) = plan.registry_mapping.remap(img) {
            pw.world.add_image(&dr, digest_of(&img.to_string()), 1 << 20);
        }
    }
    pw.world.with_state(|s| {
        if let Some(env) = s.environments.get_mut(&dr_env) {
            env.services.clear();
            for (i, img) in images.iter().enumerate() {
                let config = ServiceConfig { image: Some(img.clone()), variables: BTreeMap::new(), min_instances: 2 };
                env.services.insert(
                    ServiceId::new(format!("svc-{i:02}")),
                    ServiceSim {
                        name: format!("svc{i}"),
                        desired: config.clone(),
                        running: Some(config),
                        running_env_vars: env.variables.clone(),
                        last_deployment: None,
                    },
                );
            }
        }
        for db in s.databases.values_mut() {
            db.lag = Duration::ZERO;
        }
    });
    pw.world.faults().inject("*", Trigger::Always, FaultAction::Latency(LATENCY));
    pw
}

struct Measured {
    wall: Duration,
    /// Per step: total provider-call time (sequential runs only).
    critical_path: Duration,
}

async fn run(plan: &DrPlan, max_concurrency: usize, stage_of: &BTreeMap<String, String>) -> Measured {
    let pw = world(plan);
    let journal = MemoryJournal::new();
    let engine = pw
        .engine_builder()
        .journal(journal.clone())
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
    if let Err(f) = engine.run(RunMode::Switchover).await {
        eprintln!("run failed: {}\n{}", f.error, f.report.to_text());
        std::process::exit(1);
    }
    let wall = t0.elapsed();
    Measured { wall, critical_path: critical_path(&pw, &journal, stage_of) }
}

/// Step id → stage name, from a dry run on a separate world of the same shape.
async fn stages(plan: &DrPlan) -> BTreeMap<String, String> {
    let pw = world(plan);
    pw.world.faults().clear();
    let engine = pw.engine_builder().options(EngineOptions { drain_ttl: false, ..EngineOptions::default() }).build();
    match engine.plan(RunMode::Switchover).await {
        Ok(runbook) => {
            runbook.stages.iter().flat_map(|s| s.steps.iter().map(|st| (st.id.clone(), s.name.clone()))).collect()
        }
        Err(e) => {
            eprintln!("dry run failed: {e}");
            std::process::exit(1);
        }
    }
}

/// Attributes each call to the step whose window contains it (exact when
/// steps run one at a time) and sums stage by stage the slowest step.
fn critical_path(pw: &PlanWorld, journal: &MemoryJournal, stage_of: &BTreeMap<String, String>) -> Duration {
    let base = Timestamp::from_unix_millis(0)
        .plus(Duration::from_millis(pw.world.wall_now().unix_millis()).saturating_sub(pw.world.elapsed()));
    let since_start = |t: Timestamp| t.saturating_since(base);
    let mut windows: BTreeMap<String, (Duration, Duration)> = BTreeMap::new();
    for e in journal.snapshot() {
        match e.event {
            JournalEvent::StepStarted { step, .. } => {
                windows.entry(step).or_insert((since_start(e.at), Duration::MAX)).0 = since_start(e.at);
            }
            JournalEvent::StepFinished { step, .. } => {
                if let Some(w) = windows.get_mut(&step) {
                    w.1 = since_start(e.at);
                }
            }
            _ => {}
        }
    }
    let first_step = windows.values().map(|w| w.0).min().unwrap_or_default();
    let mut per_step: BTreeMap<String, Duration> = BTreeMap::new();
    let mut before = Duration::ZERO;
    for call in pw.world.recorder().calls() {
        let d = call.at.saturating_sub(call.started);
        if call.at <= first_step {
            before += d;
            continue;
        }
        if let Some((step, _)) = windows.iter().find(|(_, (s, e))| {
            call.started + Duration::from_millis(1) >= *s && call.at <= *e + Duration::from_millis(1)
        }) {
            *per_step.entry(step.clone()).or_default() += d;
        }
    }
    let mut per_stage: BTreeMap<String, Duration> = BTreeMap::new();
    for (step, d) in per_step {
        let stage = stage_of.get(&step).cloned().unwrap_or(step);
        let slot = per_stage.entry(stage).or_default();
        *slot = (*slot).max(d);
    }
    before + per_stage.values().sum::<Duration>()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plan = plan();
    let stage_of = stages(&plan).await;
    let mut seq = Vec::new();
    let mut conc = Vec::new();
    let mut critical = Vec::new();
    // Warm-up, then alternate.
    let _ = run(&plan, 32, &stage_of).await;
    for _ in 0..REPETITIONS {
        let s = run(&plan, 1, &stage_of).await;
        critical.push(s.critical_path);
        seq.push(s.wall);
        conc.push(run(&plan, 32, &stage_of).await.wall);
    }
    let (s, c, cp) = (median(seq), median(conc), median(critical));
    println!("services = {SERVICES}");
    println!("provider_latency_ms = {}", LATENCY.as_millis());
    println!("repetitions = {REPETITIONS}");
    println!("critical_path_ms = {:.1}", cp.as_secs_f64() * 1e3);
    println!("concurrent_wall_ms = {:.1}", c.as_secs_f64() * 1e3);
    println!("sequential_wall_ms = {:.1}", s.as_secs_f64() * 1e3);
    println!("engine_overhead_ratio = {:.3}", c.as_secs_f64() / cp.as_secs_f64());
    println!("engine_speedup_vs_sequential = {:.2}", s.as_secs_f64() / c.as_secs_f64());
}
