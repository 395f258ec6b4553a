//! Readiness at scale: a plan with 500 DR environments (each with its
//! production twin), every provider call taking 20 ms of real time, checks
//! bounded to 32 calls at once.
//!
//! - `readiness_ratio` = wall time / (calls × 20 ms / 32): 1.0 means the
//!   bound is used completely.
//! - `readiness_over_rate_requests`: the same evaluation with a rate limit of
//!   100 requests/s configured; the simulated world counts the calls that
//!   started while more than 100 had started in the preceding second.
//!
//! Unlimited and rate-limited evaluations alternate; medians are reported.

use std::time::{Duration, Instant};

use qovery_dr_core::EnvironmentId;
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
    let mut plan = match DrPlan::parse(text, PlanFormat::Toml) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("example plan: {e}");
            std::process::exit(1);
        }
    };
    plan.primary.environments = (0..ENVIRONMENTS).map(|i| EnvironmentId::new(format!("prod-{i:03}"))).collect();
    plan.dr.environments = (0..ENVIRONMENTS).map(|i| EnvironmentId::new(format!("dr-{i:03}"))).collect();
    plan
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plan = plan();
    let mut ratios = Vec::new();
    let mut walls = Vec::new();
    let mut over = Vec::new();
    let mut limited_walls = Vec::new();
    let (mut calls, mut checks) = (0, 0);
    for _ in 0..REPETITIONS {
        let r = evaluate(&plan, None).await;
        let ideal = LATENCY.as_secs_f64() * r.calls as f64 / CONCURRENCY as f64;
        ratios.push(r.wall.as_secs_f64() / ideal);
        walls.push(r.wall.as_secs_f64());
        calls = r.calls;
        checks = r.checks;
        let l = evaluate(&plan, Some(RATE)).await;
        over.push(l.over_rate as f64);
        limited_walls.push(l.wall.as_secs_f64());
    }
    println!("environments = {ENVIRONMENTS}");
    println!("checks = {checks}");
    println!("calls = {calls}");
    println!("provider_latency_ms = {}", LATENCY.as_millis());
    println!("concurrency = {CONCURRENCY}");
    println!("repetitions = {REPETITIONS}");
    println!("readiness_wall_ms = {:.0}", median(walls) * 1e3);
    println!("readiness_ratio = {:.3}", median(ratios));
    println!("rate_limit_per_second = {RATE}");
    println!("rate_limited_wall_ms = {:.0}", median(limited_walls) * 1e3);
    println!("readiness_over_rate_requests = {}", over.iter().copied().fold(0.0_f64, f64::max) as u64);
}
