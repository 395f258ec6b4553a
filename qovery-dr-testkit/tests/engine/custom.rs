//! Steps of the embedder's own: at their points, journaled and reported, retried and
//! failing as any step, found again by name on resume.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use qovery_dr_core::engine::{
    ActionContext, AutoApprove, CustomAction, CustomOutput, CustomStep, Engine, EngineError, HookPoint, MemoryJournal,
    Outcome, RetryPolicy, RunMode, StepOutput, journaled_outputs,
};
use qovery_dr_core::{ErrorKind, ProviderError, async_trait};
use qovery_dr_testkit::PlanWorld;

use super::common::*;

/// Records each context it is given; fails the first `failures` attempts with `kind`.
#[derive(Debug, Clone)]
struct Probe {
    seen: Arc<Mutex<Vec<ActionContext>>>,
    failures: usize,
    kind: ErrorKind,
    sleep: Duration,
}

impl Probe {
    fn new() -> Self {
        Self { seen: Arc::default(), failures: 0, kind: ErrorKind::Transient, sleep: Duration::ZERO }
    }
    fn failing(failures: usize, kind: ErrorKind) -> Self {
        Self { failures, kind, ..Self::new() }
    }
    fn seen(&self) -> Vec<ActionContext> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl CustomAction for Probe {
    async fn run(&self, ctx: &ActionContext) -> Result<CustomOutput, ProviderError> {
        let attempt = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(ctx.clone());
            seen.len()
        };
        tokio::time::sleep(self.sleep).await;
        if attempt <= self.failures {
            return Err(ProviderError::new(self.kind, "smoke", "run", format!("attempt {attempt}: 502 from /health")));
        }
        Ok(CustomOutput::new(format!("{} environment(s) answer /health", ctx.environments.len()))
            .with_details(serde_json::json!({ "attempt": attempt })))
    }
}

fn engine_with(pw: &PlanWorld, journal: MemoryJournal, step: CustomStep, probe: &Probe) -> Engine {
    pw.engine_builder()
        .journal(journal)
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .custom_step(step, probe.clone())
        .build()
}

fn smoke() -> CustomStep {
    CustomStep::new("smoke", HookPoint::BeforeSwitch, "HTTP smoke test of the DR site").read_only()
}

#[tokio::test(start_paused = true)]
async fn a_smoke_step_runs_when_the_dr_site_serves_before_dns_moves_and_is_journaled() {
    let pw = aws();
    let probe = Probe::new();
    let journal = MemoryJournal::new();
    let e = engine_with(&pw, journal.clone(), smoke(), &probe);
    let runbook = e.plan(RunMode::Switchover).await.unwrap();
    let stages: Vec<&str> = runbook.stages.iter().map(|s| s.name.as_str()).collect();
    let at = stages.iter().position(|s| *s == "custom-before-switch").expect("its stage");
    assert_eq!((stages[at - 1], stages[at + 1]), ("verify-dr", "dns"), "{stages:?}");
    assert!(runbook.to_table().contains("custom:smoke"), "{}", runbook.to_table());

    let report = e.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let seen = probe.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].environments, pw.plan.dr().environments, "the DR environments");
    assert_eq!(seen[0].step, "custom:smoke");
    assert_eq!(seen[0].idempotency_key, format!("{}/custom:smoke", report.run_id));
    let step = report.steps.iter().find(|s| s.name == "custom:smoke").unwrap();
    assert_eq!(step.note.as_deref(), Some("1 environment(s) answer /health"), "shown in the report");
    match journaled_outputs(&journal.snapshot(), &report.run_id).unwrap().get("custom:smoke") {
        Some(StepOutput::Custom(o)) => assert_eq!(o.details["attempt"], 1),
        other => panic!("{other:?}"),
    }
    // The drill report and the runbook document show it too.
    let t = qovery_dr_core::document::Timeline::from_journal(&journal.snapshot(), None).unwrap();
    assert!(t.to_markdown().contains("| `custom:smoke` | custom-before-switch |"), "{}", t.to_markdown());
    assert!(t.to_markdown().contains("| 1 environment(s) answer /health |"), "{}", t.to_markdown());
    assert!(t.to_html().contains("<td>1 environment(s) answer /health</td>"));
    let doc = qovery_dr_core::document::runbook_markdown(&pw.plan, &runbook);
    assert!(doc.contains("custom:smoke") && doc.contains("HTTP smoke test of the DR site"), "{doc}");
}

#[tokio::test(start_paused = true)]
async fn in_a_drill_the_smoke_step_is_given_the_clones() {
    let pw = aws();
    let probe = Probe::new();
    let report = engine_with(&pw, MemoryJournal::new(), smoke(), &probe)
        .run(RunMode::Drill)
        .await
        .unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let seen = probe.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].environments.len(), 1);
    assert!(!pw.plan.primary().environments.contains(&seen[0].environments[0]), "a clone, not production");
    assert!(!pw.plan.dr().environments.contains(&seen[0].environments[0]));
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_by_the_steps_own_policy() {
    let pw = aws();
    let probe = Probe::failing(2, ErrorKind::Transient);
    let step = smoke().with_retry(RetryPolicy::new(3, Duration::from_secs(1)));
    let report = engine_with(&pw, MemoryJournal::new(), step, &probe)
        .run(RunMode::Switchover)
        .await
        .unwrap_or_else(|f| panic!("{}", f.error));
    let step = report.steps.iter().find(|s| s.name == "custom:smoke").unwrap();
    assert_eq!(step.attempts, 3, "{step:?}");
    let keys: Vec<String> = probe.seen().iter().map(|c| c.idempotency_key.clone()).collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]), "one key across attempts: {keys:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_smoke_test_stops_the_run_before_dns_moves_in_a_safe_state_and_resume_finds_it_by_name() {
    let pw = aws();
    let journal = MemoryJournal::new();
    let failing = Probe::failing(usize::MAX, ErrorKind::InvalidInput);
    let failed = engine_with(&pw, journal.clone(), smoke(), &failing).run(RunMode::Switchover).await.unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains("custom:smoke") && message.contains("502 from /health"), "{message}");
    assert_eq!(failing.seen().len(), 1, "InvalidInput is not retried");
    assert_eq!(pw.world.record_target(&pw.plan.dns()[0].record).as_ref(), Some(&pw.plan.dns()[0].primary_target));
    let safe = failed.report.safe_state.clone().unwrap_or_default();
    assert!(safe.contains("promoted"), "the report says where it stopped: {safe}");

    // An engine without the step cannot resume the run: it says which registration is missing.
    let bare = pw
        .engine_builder()
        .journal(journal.clone())
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .build();
    let refused = bare.resume().await.unwrap_err();
    assert!(refused.error.to_string().contains("custom step smoke is in this run's runbook but not registered"));

    // With the step registered again (now passing), the resume finishes, with the same key.
    let fixed = Probe::new();
    let report = engine_with(&pw, journal, smoke(), &fixed).resume().await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(fixed.seen()[0].idempotency_key, failing.seen()[0].idempotency_key);
    assert_eq!(pw.world.record_target(&pw.plan.dns()[0].record).as_ref(), Some(&pw.plan.dns()[0].dr_target));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_is_cut_and_retried() {
    let pw = aws();
    let slow = Probe { sleep: Duration::from_secs(120), ..Probe::new() };
    let step = smoke().with_timeout(Duration::from_secs(10)).with_retry(RetryPolicy::new(2, Duration::from_secs(1)));
    let failed = engine_with(&pw, MemoryJournal::new(), step, &slow).run(RunMode::Switchover).await.unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains("(timeout)") && message.contains("exceeded its time limit"), "{message}");
    assert_eq!(slow.seen().len(), 2, "cut, then tried once more");
}

#[tokio::test(start_paused = true)]
async fn steps_run_only_in_their_modes_and_at_every_point() {
    let pw = aws();
    let probe = Probe::new();
    let mut b = pw.engine_builder().approver(AutoApprove::new("oncall-sre")).options(options());
    for point in HookPoint::ALL {
        let name = point.stage().trim_start_matches("custom-").to_owned();
        b = b.custom_step(CustomStep::new(name, point, "probe"), probe.clone());
    }
    b = b.custom_step(
        CustomStep::new("drill-only", HookPoint::AtEnd, "probe").with_modes(&[RunMode::Drill]),
        probe.clone(),
    );
    let e = b.build();
    let switchover = e.plan(RunMode::Switchover).await.unwrap();
    let custom: Vec<&str> = switchover.steps().map(|s| s.id.as_str()).filter(|id| id.starts_with("custom:")).collect();
    assert_eq!(
        custom,
        [
            "custom:before-changes",
            "custom:after-promotion",
            "custom:before-switch",
            "custom:after-switch",
            "custom:at-end"
        ]
    );
    let drill = e.plan(RunMode::Drill).await.unwrap();
    let custom: Vec<&str> = drill.steps().map(|s| s.id.as_str()).filter(|id| id.starts_with("custom:")).collect();
    assert_eq!(custom, ["custom:before-changes", "custom:before-switch", "custom:at-end", "custom:drill-only"]);
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_or_malformed_name_refuses_every_run() {
    let pw = aws();
    for (a, b) in [("smoke", "smoke"), ("smoke", "Smoke Test")] {
        let e = pw
            .engine_builder()
            .options(options())
            .custom_step(CustomStep::new(a, HookPoint::AtEnd, "x"), Probe::new())
            .custom_step(CustomStep::new(b, HookPoint::AtEnd, "y"), Probe::new())
            .build();
        let failed = e.run(RunMode::Switchover).await.unwrap_err();
        assert!(matches!(failed.error, EngineError::CustomStep(_)), "{}", failed.error);
        pw.world.recorder().assert_no_mutations();
    }
}
