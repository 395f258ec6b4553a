//! Readiness of a plan's DR site on the simulated world, or with `--live` on the
//! infrastructure the plan names: a terminal table (default), `--json`, or
//! Prometheus text (`--prometheus`).
//!
//! ```text
//! cargo run -p qovery-dr-examples --example readiness -- [--plan PATH] [--json | --prometheus] [--break]
//! cargo run -p qovery-dr-examples --features live --example readiness -- --live --plan PATH
//! ```
//! `--live` only reads (the heartbeat it checks is the one your writer keeps up).
//! `--break` breaks the simulated world first (image missing, link down,
//! long TTL) to show what a failing verdict looks like. The exit code is 0
//! when ready, 1 when not.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::readiness::{Readiness, ReadinessOptions};
use qovery_dr_testkit::World;
use qovery_dr_testkit::world::LinkSim;

#[tokio::main]
async fn main() -> ExitCode {
    let mut plan_path = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/aws-cross-region.toml").to_owned();
    let (mut json, mut prometheus, mut broken, mut live) = (false, false, false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--plan" => match args.next() {
                Some(p) => plan_path = p,
                None => return usage("--plan needs a path"),
            },
            "--json" => json = true,
            "--prometheus" => prometheus = true,
            "--break" => broken = true,
            "--live" => live = true,
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let plan = match DrPlan::load(&plan_path).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let options = ReadinessOptions { concurrency: 8, rate_per_second: Some(50.0), ..ReadinessOptions::default() };
    let report = if live {
        if broken {
            return usage("--break breaks the simulated world; it cannot be used with --live");
        }
        let connected = match qovery_dr_examples::connect_live(&plan).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let mut readiness = Readiness::new(plan, connected.providers.clone()).options(options);
        if let Some((lock, journal)) = &connected.state {
            readiness = readiness.lock(Arc::clone(lock)).journal(Arc::clone(journal));
        }
        readiness.evaluate().await
    } else {
        simulated(plan, broken, options).await
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("{e}"),
        }
    } else if prometheus {
        print!("{}", report.to_prometheus());
    } else {
        print!("{}", report.to_table());
    }
    if report.ready { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn simulated(
    plan: DrPlan,
    broken: bool,
    options: ReadinessOptions,
) -> qovery_dr_core::readiness::ReadinessReport {
    let sim = World::from_plan(&plan);
    sim.world.use_real_wall_clock();
    if broken {
        let r = &plan.dns()[0];
        sim.world.add_record(
            r.record.clone(),
            r.primary_target.clone(),
            plan.objectives().rto + Duration::from_secs(3600),
        );
        sim.world.set_link(&plan.primary().database.id, LinkSim::Down);
        sim.world.with_state(|s| {
            if let Some(reg) = s.registries.get_mut(&plan.registry_mapping().to.host) {
                let first = reg.tags.keys().next().cloned();
                if let Some(k) = first {
                    reg.tags.remove(&k);
                }
            }
        });
    }
    Readiness::new(plan, sim.providers()).clock(Arc::new(sim.world.clone())).options(options).evaluate().await
}

fn usage(error: &str) -> ExitCode {
    eprintln!("error: {error}\nusage: readiness [--plan PATH] [--live] [--json | --prometheus] [--break]");
    ExitCode::from(2)
}
