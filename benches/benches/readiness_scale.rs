//! Readiness at scale: a plan with 500 DR environments (each with its
//! production twin), every provider call taking 20 ms of real time, checks
//! bounded to 32 calls at once.
//!
//! - `readiness_ratio` = measured wall time / a *computed* lower bound,
//!   `calls × 20 ms / 32` (the time the calls of that same evaluation would take
//!   with the concurrency bound used completely): 1.0 means no time is lost.
//! - `readiness_over_rate_requests`: the same evaluation with a rate limit of
//!   100 requests/s configured; the simulated world counts the calls that
//!   started while more than 100 had started in the preceding second.
//!
//! Unlimited and rate-limited evaluations alternate (which goes first alternates
//! too); medians are the values, with min and max beside them.

use std::time::{Duration, Instant};

use qovery_dr_benches::{a_first, figure, note, setting};
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_core::readiness::{Readiness, ReadinessOptions};
use qovery_dr_testkit::{FaultAction, PlanWorld, Trigger, World};

const ENVIRONMENTS: usize = 500;
const LATENCY: Duration = Duration::from_millis(20);
const CONCURRENCY: usize = 32;
const RATE: f64 = 100.0;
const REPETITIONS: usize = 3;

fn plan() -> DrPlan {
    let text = include_str!("../../examples/plans/aws-cross-region.toml");
    // A validated plan cannot be changed: the environments are written into the text.
    let list = |prefix: &str| {
        let ids: Vec<String> = (0..ENVIRONMENTS).map(|i| format!("\"{prefix}-{i:03}\"")).collect();
        format!("environments = [{}]", ids.join(", "))
    };
    // More than one environment per site: the plan states the pairing.
    let pairs: String = (0..ENVIRONMENTS)
        .map(|i| format!("\n[[environment_pairs]]\nprimary = \"prod-{i:03}\"\ndr = \"dr-{i:03}\"\n"))
        .collect();
    let text = text
        .replace(r#"environments = ["e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a01"]"#, &list("prod"))
        .replace(r#"environments = ["e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a02"]"#, &list("dr"))
        + &pairs;
    match DrPlan::parse(&text, PlanFormat::Toml) {
        Ok(p) if p.primary().environments.len() == ENVIRONMENTS => p,
        Ok(_) => {
            eprintln!("example plan: its environments changed; update this bench");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("example plan: {e}");
            std::process::exit(1);
        }
    }
}

fn world(plan: &DrPlan) -> PlanWorld {
    let pw = World::from_plan(plan);
    pw.world.faults().inject("*", Trigger::Always, FaultAction::Latency(LATENCY));
    pw
}

struct Run {
    wall: Duration,
    calls: usize,
    checks: usize,
    over_rate: usize,
}

async fn evaluate(plan: &DrPlan, rate: Option<f64>) -> Run {
    let pw = world(plan);
    let options =
        ReadinessOptions { concurrency: CONCURRENCY, rate_per_second: rate, call_timeout: Duration::from_secs(30) };
    let readiness = Readiness::new(plan.clone(), pw.providers()).options(options);
    let t0 = Instant::now();
    let report = readiness.evaluate().await;
    let wall = t0.elapsed();
    if !report.ready {
        eprintln!("unexpected verdict: {:?}", report.reasons.iter().take(3).collect::<Vec<_>>());
        std::process::exit(1);
    }
    let calls = pw.world.recorder().calls();
    let mut starts: Vec<Duration> = calls.iter().map(|c| c.started).collect();
    starts.sort();
    // A call is over the rate when more than RATE calls started in the second up to and including it.
    let over_rate = (0..starts.len())
        .filter(|&i| {
            let window_start = starts[i].saturating_sub(Duration::from_secs(1));
            let first = starts.partition_point(|t| *t <= window_start);
            i + 1 - first > RATE as usize
        })
        .count();
    Run { wall, calls: calls.len(), checks: report.checks.len(), over_rate }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plan = plan();
    let (mut ratios, mut walls, mut ideals, mut over, mut limited_walls) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut calls, mut checks) = (0, 0);
    for rep in 0..REPETITIONS {
        let (r, l) = if a_first(rep) {
            let r = evaluate(&plan, None).await;
            (r, evaluate(&plan, Some(RATE)).await)
        } else {
            let l = evaluate(&plan, Some(RATE)).await;
            (evaluate(&plan, None).await, l)
        };
        let ideal = LATENCY.as_secs_f64() * r.calls as f64 / CONCURRENCY as f64;
        ratios.push(r.wall.as_secs_f64() / ideal);
        walls.push(r.wall.as_secs_f64() * 1e3);
        ideals.push(ideal * 1e3);
        calls = r.calls;
        checks = r.checks;
        over.push(l.over_rate as f64);
        limited_walls.push(l.wall.as_secs_f64() * 1e3);
    }
    note("simulated world (in-memory providers, 20 ms of injected latency per call)");
    note("readiness_ideal_ms is COMPUTED, not measured: calls x provider_latency_ms / concurrency");
    note("readiness_ratio = measured readiness_wall_ms / computed readiness_ideal_ms, per repetition");
    note(
        "readiness_over_rate_requests: calls the world saw start while more than the rate had started in the second before",
    );
    setting("environments", ENVIRONMENTS);
    setting("checks", checks);
    setting("calls", calls);
    setting("provider_latency_ms", LATENCY.as_millis());
    setting("concurrency", CONCURRENCY);
    setting("repetitions", REPETITIONS);
    setting("rate_limit_per_second", RATE);
    figure("readiness_wall_ms", &walls, 0);
    figure("readiness_ideal_ms", &ideals, 0);
    figure("readiness_ratio", &ratios, 3);
    figure("rate_limited_wall_ms", &limited_walls, 0);
    figure("readiness_over_rate_requests", &over, 0);
}
