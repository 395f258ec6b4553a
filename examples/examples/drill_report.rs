//! Writes the report of a run from its journal: HTML (self-contained, with a
//! Gantt chart), Markdown and JSON; and, with `--runbook`, the plan's runbook
//! document.
//!
//! ```text
//! cargo run -p qovery-dr-examples --example failover_drill -- --yes --mode drill --journal /tmp/drill.jsonl
//! cargo run -p qovery-dr-examples --example drill_report -- --journal /tmp/drill.jsonl --out /tmp/drill-report [--runbook]
//! cargo run -p qovery-dr-examples --features live --example drill_report -- --live --plan PATH [--runbook]
//! ```
//! With `--live`, the journal is the plan's `[state]` one (unless `--journal` is given) and
//! the runbook is a dry run against the plan's real services (read-only).

use std::path::PathBuf;
use std::process::ExitCode;

use qovery_dr_core::document::{Timeline, runbook_markdown};
use qovery_dr_core::engine::{Engine, EngineOptions, FileJournal, Journal};
use qovery_dr_core::plan::DrPlan;
use qovery_dr_testkit::World;

#[tokio::main]
async fn main() -> ExitCode {
    let mut journal: Option<PathBuf> = None;
    let mut out = PathBuf::from("drill-report");
    let mut plan_path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/plans/aws-cross-region.toml"));
    let mut runbook = false;
    let mut live = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--journal" => journal = args.next().map(PathBuf::from),
            "--out" => out = args.next().map(PathBuf::from).unwrap_or(out),
            "--plan" => plan_path = args.next().map(PathBuf::from).unwrap_or(plan_path),
            "--runbook" => runbook = true,
            "--live" => live = true,
            other => {
                return fail(
                    &format!(
                        "unknown argument {other:?}; usage: drill_report (--journal PATH | --live --plan PATH) [--out DIR] [--runbook]"
                    ),
                    2,
                );
            }
        }
    }
    let connected = if live {
        let plan = match DrPlan::load(&plan_path).await {
            Ok(p) => p,
            Err(e) => return fail(&e.to_string(), 2),
        };
        match qovery_dr_examples::connect_live(&plan).await {
            Ok(c) => Some((plan, c)),
            Err(e) => return fail(&e, 2),
        }
    } else {
        None
    };
    let (entries, source) = match (&journal, &connected) {
        (Some(path), _) => (FileJournal::new(path).entries().await, path.display().to_string()),
        (None, Some((_, c))) => match &c.state {
            Some((_, j)) => (j.entries().await, "the plan's [state] journal".to_owned()),
            None => return fail("the plan has no [state] url: give --journal PATH", 2),
        },
        (None, None) => return fail("--journal PATH (or --live --plan PATH) is required", 2),
    };
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return fail(&e.to_string(), 1),
    };
    let timeline = match Timeline::from_journal(&entries, None) {
        Ok(t) => t,
        Err(e) => return fail(&format!("{e} in {source}"), 1),
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        return fail(&format!("cannot create {}: {e}", out.display()), 1);
    }
    let mut files = vec![
        ("report.html", timeline.to_html()),
        ("report.md", timeline.to_markdown()),
        ("report.json", timeline.to_json()),
    ];
    if runbook {
        let built = match &connected {
            // A dry run against the real services: read-only guards, no mutating call.
            Some((plan, c)) => {
                let engine =
                    Engine::builder(plan.clone(), c.providers.clone()).options(EngineOptions::default()).build();
                engine.plan(timeline.mode).await.map(|rb| runbook_markdown(plan, &rb))
            }
            None => {
                let plan = match DrPlan::load(&plan_path).await {
                    Ok(p) => p,
                    Err(e) => return fail(&e.to_string(), 2),
                };
                // The runbook is built as the engine would build it now (a dry run on the simulated world).
                let sim = World::from_plan(&plan);
                let engine = Engine::builder(plan.clone(), sim.providers()).options(EngineOptions::default()).build();
                engine.plan(timeline.mode).await.map(|rb| runbook_markdown(&plan, &rb))
            }
        };
        match built {
            Ok(doc) => files.push(("runbook.md", doc)),
            Err(e) => return fail(&e.to_string(), 1),
        }
    }
    for (name, text) in files {
        let path = out.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            return fail(&format!("cannot write {}: {e}", path.display()), 1);
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(code)
}
