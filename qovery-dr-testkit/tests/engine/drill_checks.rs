//! A drill proves the DR site works, not only that it deployed: the clone's parameters
//! name the DR database, and the DR database answers.

use std::sync::Arc;

use qovery_dr_core::engine::{MemoryJournal, Outcome, RunMode, StepOutput, journaled_outputs};
use qovery_dr_core::provider::*;
use qovery_dr_core::{
    ClusterId, DeploymentId, EnvironmentId, ImageRef, ProjectId, ProviderResult, ServiceId, async_trait,
};
use qovery_dr_testkit::memory::InMemoryCluster;

use super::common::*;

#[tokio::test(start_paused = true)]
async fn a_drill_checks_that_the_clone_names_the_dr_database_and_that_it_answers() {
    let pw = aws();
    let journal = MemoryJournal::new();
    let report = engine(&pw, journal.clone()).run(RunMode::Drill).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let id = format!("check-database:clone-of-{}", pw.plan.primary().environments[0]);
    let step = report.steps.iter().find(|s| s.name == id).unwrap_or_else(|| panic!("no {id}"));
    assert_eq!(step.stage, "verify-dr");
    match journaled_outputs(&journal.snapshot(), &report.run_id).unwrap().get(&id) {
        Some(StepOutput::DatabaseConnection(o)) => {
            assert_eq!(o.parameters, ["DATABASE_HOST"], "{o:?}");
            assert!(o.reached.starts_with("the DR database answered"), "{o:?}");
            assert!(o.skipped.is_none());
        }
        other => panic!("{other:?}"),
    }
}

/// The world's cluster, except that it drops writes of `DATABASE_HOST` (as a platform
/// whose override does not take).
#[derive(Debug)]
struct Forgetful(InMemoryCluster);

#[async_trait]
impl ClusterProvider for Forgetful {
    fn name(&self) -> &str {
        "forgetful"
    }
    fn capabilities(&self) -> ClusterCapabilities {
        self.0.capabilities()
    }
    async fn cluster_status(&self, c: &ClusterId) -> ProviderResult<ClusterStatus> {
        self.0.cluster_status(c).await
    }
    async fn environment_status(&self, e: &EnvironmentId) -> ProviderResult<EnvironmentStatus> {
        self.0.environment_status(e).await
    }
    async fn list_environments(&self, p: &ProjectId) -> ProviderResult<Vec<EnvironmentSummary>> {
        self.0.list_environments(p).await
    }
    async fn list_services(&self, e: &EnvironmentId) -> ProviderResult<Vec<ServiceInfo>> {
        self.0.list_services(e).await
    }
    async fn deploy_environment(&self, e: &EnvironmentId) -> ProviderResult<DeploymentId> {
        self.0.deploy_environment(e).await
    }
    async fn redeploy_environment(&self, e: &EnvironmentId) -> ProviderResult<DeploymentId> {
        self.0.redeploy_environment(e).await
    }
    async fn deploy_services(&self, e: &EnvironmentId, s: &DeployServices) -> ProviderResult<DeploymentId> {
        self.0.deploy_services(e, s).await
    }
    async fn stop_environment(&self, e: &EnvironmentId) -> ProviderResult<DeploymentId> {
        self.0.stop_environment(e).await
    }
    async fn deployment_status(&self, e: &EnvironmentId, d: &DeploymentId) -> ProviderResult<DeploymentStatus> {
        self.0.deployment_status(e, d).await
    }
    async fn list_variables(&self, s: &VariableScope) -> ProviderResult<Vec<Variable>> {
        self.0.list_variables(s).await
    }
    async fn set_variable(&self, s: &VariableScope, k: &str, v: &VariableValue) -> ProviderResult<()> {
        if k == "DATABASE_HOST" {
            return Ok(());
        }
        self.0.set_variable(s, k, v).await
    }
    async fn delete_variable(&self, s: &VariableScope, k: &str) -> ProviderResult<()> {
        self.0.delete_variable(s, k).await
    }
    async fn set_service_image(&self, e: &EnvironmentId, s: &ServiceId, i: &ImageRef) -> ProviderResult<()> {
        self.0.set_service_image(e, s, i).await
    }
    async fn clone_environment(&self, s: &EnvironmentId, r: &CloneRequest) -> ProviderResult<EnvironmentId> {
        self.0.clone_environment(s, r).await
    }
    async fn delete_environment(&self, e: &EnvironmentId) -> ProviderResult<()> {
        self.0.delete_environment(e).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_drill_whose_clone_still_points_at_the_production_database_fails_and_cleans_up() {
    let pw = aws();
    let mut providers = pw.providers();
    providers.cluster = Arc::new(Forgetful(InMemoryCluster::new(&pw.world)));
    let failed = qovery_dr_core::engine::Engine::builder(pw.plan.clone(), providers)
        .journal(MemoryJournal::new())
        .approver(qovery_dr_core::engine::AutoApprove::new("oncall-sre"))
        .options(options())
        .build()
        .run(RunMode::Drill)
        .await
        .unwrap_err();
    let message = failed.error.to_string();
    let production = &pw.plan.primary().parameters["DATABASE_HOST"];
    let dr = &pw.plan.dr().parameters["DATABASE_HOST"];
    assert!(message.contains("does not point at the DR database"), "{message}");
    assert!(message.contains(&format!("DATABASE_HOST is {production}, not {dr}")), "{message}");
    let cleanup = failed.report.steps.iter().find(|s| s.stage == "cleanup").unwrap();
    assert_eq!(cleanup.status, qovery_dr_core::engine::StepStatus::Succeeded, "the clone is deleted all the same");
}
