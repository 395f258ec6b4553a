//! Read-only guards: the engine's dry run goes through these, so no provider
//! can mutate anything during a dry run, whatever its own code does.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{ErrorKind, ProviderError, ProviderResult};
use crate::model::{
    ChangeId, ClusterId, DatabaseId, DeploymentId, DnsRecordId, DnsTarget, EnvironmentId, ImageRef, Lsn, ProjectId,
    ServiceId,
};
use crate::provider::*;

/// Wraps a provider so that every mutating call fails with `InvalidInput`
/// ("dry run") without reaching it.
#[derive(Debug, Clone)]
pub struct ReadOnly<T: ?Sized>(pub Arc<T>);

fn refused(provider: &str, op: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::InvalidInput,
        provider,
        op,
        "refused by the engine's dry-run guard: no mutating call in a dry run",
    )
}

#[async_trait]
impl ClusterProvider for ReadOnly<dyn ClusterProvider> {
    fn name(&self) -> &str {
        self.0.name()
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
    async fn deploy_environment(&self, _: &EnvironmentId) -> ProviderResult<DeploymentId> {
        Err(refused(self.name(), "deploy_environment"))
    }
    async fn redeploy_environment(&self, _: &EnvironmentId) -> ProviderResult<DeploymentId> {
        Err(refused(self.name(), "redeploy_environment"))
    }
    async fn deploy_services(&self, _: &EnvironmentId, _: &DeployServices) -> ProviderResult<DeploymentId> {
        Err(refused(self.name(), "deploy_services"))
    }
    async fn stop_environment(&self, _: &EnvironmentId) -> ProviderResult<DeploymentId> {
        Err(refused(self.name(), "stop_environment"))
    }
    async fn deployment_status(&self, e: &EnvironmentId, d: &DeploymentId) -> ProviderResult<DeploymentStatus> {
        self.0.deployment_status(e, d).await
    }
    async fn list_variables(&self, s: &VariableScope) -> ProviderResult<Vec<Variable>> {
        self.0.list_variables(s).await
    }
    async fn set_variable(&self, _: &VariableScope, _: &str, _: &VariableValue) -> ProviderResult<()> {
        Err(refused(self.name(), "set_variable"))
    }
    async fn delete_variable(&self, _: &VariableScope, _: &str) -> ProviderResult<()> {
        Err(refused(self.name(), "delete_variable"))
    }
    async fn set_service_image(&self, _: &EnvironmentId, _: &ServiceId, _: &ImageRef) -> ProviderResult<()> {
        Err(refused(self.name(), "set_service_image"))
    }
    async fn clone_environment(&self, _: &EnvironmentId, _: &CloneRequest) -> ProviderResult<EnvironmentId> {
        Err(refused(self.name(), "clone_environment"))
    }
    async fn image_source_ready(&self, i: &ImageRef) -> ProviderResult<()> {
        self.0.image_source_ready(i).await
    }
    async fn delete_environment(&self, _: &EnvironmentId) -> ProviderResult<()> {
        Err(refused(self.name(), "delete_environment"))
    }
}

#[async_trait]
impl DnsSwitcher for ReadOnly<dyn DnsSwitcher> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn capabilities(&self) -> DnsCapabilities {
        self.0.capabilities()
    }
    fn capabilities_for(&self, r: &DnsRecordId) -> DnsCapabilities {
        self.0.capabilities_for(r)
    }
    async fn current(&self, r: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        self.0.current(r).await
    }
    async fn switch(&self, _: &SwitchRequest) -> ProviderResult<ChangeId> {
        Err(refused(self.name(), "switch"))
    }
    async fn change_status(&self, c: &ChangeId) -> ProviderResult<ChangeStatus> {
        self.0.change_status(c).await
    }
    async fn target_health(&self, t: &DnsTarget) -> ProviderResult<TargetHealth> {
        self.0.target_health(t).await
    }
}

#[async_trait]
impl ReplicationManager for ReadOnly<dyn ReplicationManager> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn capabilities(&self) -> ReplicationCapabilities {
        self.0.capabilities()
    }
    async fn status(&self, d: &DatabaseId) -> ProviderResult<ReplicationStatus> {
        self.0.status(d).await
    }
    async fn primary_writability(&self, d: &DatabaseId) -> ProviderResult<Writability> {
        self.0.primary_writability(d).await
    }
    async fn fence_primary(&self, _: &DatabaseId) -> ProviderResult<FenceOutcome> {
        Err(refused(self.name(), "fence_primary"))
    }
    async fn wait_for_catch_up(&self, d: &DatabaseId, l: &CatchUp) -> ProviderResult<Lsn> {
        self.0.wait_for_catch_up(d, l).await
    }
    async fn promote_standby(&self, _: &DatabaseId) -> ProviderResult<PromoteOutcome> {
        Err(refused(self.name(), "promote_standby"))
    }
    async fn promotion_state(&self, d: &DatabaseId) -> ProviderResult<PromotionState> {
        self.0.promotion_state(d).await
    }
    async fn post_promotion_fixups(&self, _: &DatabaseId, _: &PromotionState) -> ProviderResult<FixupReport> {
        Err(refused(self.name(), "post_promotion_fixups"))
    }
    async fn write_heartbeat(&self, _: &DatabaseId) -> ProviderResult<Heartbeat> {
        Err(refused(self.name(), "write_heartbeat"))
    }
    async fn last_heartbeat(&self, d: &DatabaseId, n: Node) -> ProviderResult<Option<Heartbeat>> {
        self.0.last_heartbeat(d, n).await
    }
}

#[async_trait]
impl RegistrySync for ReadOnly<dyn RegistrySync> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn capabilities(&self) -> RegistryCapabilities {
        self.0.capabilities()
    }
    async fn parity(&self, i: &ImageRef) -> ProviderResult<ImageParity> {
        self.0.parity(i).await
    }
    async fn copy(&self, _: &ImageRef) -> ProviderResult<CopyReport> {
        Err(refused(self.name(), "copy"))
    }
    fn remap(&self, i: &ImageRef) -> ProviderResult<ImageRef> {
        self.0.remap(i)
    }
}
