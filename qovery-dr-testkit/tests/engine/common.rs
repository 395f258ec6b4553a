//! Shared set-up for the engine tests.

use qovery_dr_core::engine::{AutoApprove, Engine, EngineOptions, MemoryJournal};
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_testkit::PlanWorld;
use qovery_dr_testkit::World;

pub fn plan(name: &str) -> DrPlan {
    plan_edited(name, |text| text)
}

/// An example plan with its text changed first (a validated plan cannot be changed).
pub fn plan_edited(name: &str, edit: impl FnOnce(String) -> String) -> DrPlan {
    let path = format!("{}/../examples/plans/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = edit(std::fs::read_to_string(&path).unwrap());
    let format = PlanFormat::from_path(std::path::Path::new(&path)).unwrap();
    DrPlan::parse(&text, format).unwrap_or_else(|e| panic!("{e}"))
}

pub fn aws() -> PlanWorld {
    World::from_plan(&plan("aws-cross-region.toml"))
}

pub fn options() -> EngineOptions {
    EngineOptions { operator: "test@ci".into(), ..EngineOptions::default() }
}

pub fn engine(pw: &PlanWorld, journal: MemoryJournal) -> Engine {
    pw.engine_builder().journal(journal).approver(AutoApprove::new("oncall-sre")).options(options()).build()
}
