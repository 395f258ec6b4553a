//! Documents for humans and auditors: drill reports (JSON, Markdown, HTML
//! with a Gantt chart) built from a run's journal, and the plan rendered as
//! the runbook the team reviews.
//!
//! ```
//! use qovery_dr_core::document::Timeline;
//! use qovery_dr_core::engine::{AutoApprove, MemoryJournal, RunMode};
//! use qovery_dr_core::plan::DrPlan;
//! use qovery_dr_testkit::World;
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let plan = DrPlan::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml")).await.unwrap();
//! let sim = World::from_plan(&plan);
//! let journal = MemoryJournal::new();
//! let engine = sim.engine_builder().journal(journal.clone()).approver(AutoApprove::new("oncall-sre")).build();
//! engine.run(RunMode::Drill).await.unwrap();
//! let timeline = Timeline::from_journal(&journal.snapshot(), None).unwrap();
//! assert!(timeline.to_html().contains("<svg"));
//! assert!(timeline.to_markdown().contains("| RTO |"));
//! # });
//! ```

mod drill;
mod escape;
mod runbook_doc;
mod timeline;

pub use runbook_doc::runbook_markdown;
pub use timeline::{AuditEvent, NoSuchRun, StepSpan, Timeline};
