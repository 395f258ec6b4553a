//! Providers that time every call: each call's interval is recorded with the engine
//! step that made it ([`current_step`]), so a benchmark can compute the real
//! operations' critical path of the very run whose RTO it measures.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use qovery_dr_core::engine::{Providers, current_step};
use qovery_dr_core::provider::*;
use qovery_dr_core::{
    ChangeId, ClusterId, DatabaseId, DeploymentId, DnsRecordId, DnsTarget, EnvironmentId, ImageRef, Lsn, ProjectId,
    ProviderResult, ServiceId, ServiceScale, async_trait,
};

/// One provider call: the step that made it (`None` outside any step), its operation, when.
#[derive(Debug, Clone)]
pub struct TimedCall {
    /// The engine step.
    pub step: Option<String>,
    /// `provider.operation`.
    pub op: &'static str,
    /// Start.
    pub start: Instant,
    /// End.
    pub end: Instant,
}

/// The calls recorded so far.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<TimedCall>>>);

impl CallLog {
    /// Every call, in the order they ended.
    pub fn calls(&self) -> Vec<TimedCall> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn time<T>(&self, op: &'static str, call: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = call.await;
        let c = TimedCall { step: current_step(), op, start, end: Instant::now() };
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(c);
        out
    }
}

/// A provider whose calls are recorded in a [`CallLog`].
#[derive(Debug)]
pub struct Timed<T: ?Sized> {
    inner: Arc<T>,
    log: CallLog,
}

/// The same providers, every call timed into `log`.
pub fn timed(p: &Providers, log: &CallLog) -> Providers {
    Providers {
        cluster: Arc::new(Timed { inner: Arc::clone(&p.cluster), log: log.clone() }),
        dns: Arc::new(Timed { inner: Arc::clone(&p.dns), log: log.clone() }),
        replication: Arc::new(Timed { inner: Arc::clone(&p.replication), log: log.clone() }),
        registry: Arc::new(Timed { inner: Arc::clone(&p.registry), log: log.clone() }),
        registry_back: p
            .registry_back
            .as_ref()
            .map(|r| Arc::new(Timed { inner: Arc::clone(r), log: log.clone() }) as Arc<dyn RegistrySync>),
        replication_back: p
            .replication_back
            .as_ref()
            .map(|r| Arc::new(Timed { inner: Arc::clone(r), log: log.clone() }) as Arc<dyn ReplicationManager>),
        clock: p.clock.clone(),
        resolver: p
            .resolver
            .as_ref()
            .map(|r| Arc::new(Timed { inner: Arc::clone(r), log: log.clone() }) as Arc<dyn AuthoritativeResolver>),
    }
}

#[async_trait]
impl ClusterProvider for Timed<dyn ClusterProvider> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> ClusterCapabilities {
        self.inner.capabilities()
    }
    async fn cluster_status(&self, c: &ClusterId) -> ProviderResult<ClusterStatus> {
        self.log.time("cluster.cluster_status", self.inner.cluster_status(c)).await
    }
    async fn environment_status(&self, e: &EnvironmentId) -> ProviderResult<EnvironmentStatus> {
        self.log.time("cluster.environment_status", self.inner.environment_status(e)).await
    }
    async fn list_environments(&self, p: &ProjectId) -> ProviderResult<Vec<EnvironmentSummary>> {
        self.log.time("cluster.list_environments", self.inner.list_environments(p)).await
    }
    async fn list_services(&self, e: &EnvironmentId) -> ProviderResult<Vec<ServiceInfo>> {
        self.log.time("cluster.list_services", self.inner.list_services(e)).await
    }
    async fn deploy_environment(&self, e: &EnvironmentId) -> ProviderResult<DeploymentId> {
        self.log.time("cluster.deploy_environment", self.inner.deploy_environment(e)).await
    }
    async fn redeploy_environment(&self, e: &EnvironmentId) -> ProviderResult<DeploymentId> {
        self.log.time("cluster.redeploy_environment", self.inner.redeploy_environment(e)).await
    }
    async fn deploy_services(&self, e: &EnvironmentId, s: &DeployServices) -> ProviderResult<DeploymentId> {
        self.log.time("cluster.deploy_services", self.inner.deploy_services(e, s)).await
    }
    async fn stop_environment(&self, e: &EnvironmentId) -> ProviderResult<DeploymentId> {
        self.log.time("cluster.stop_environment", self.inner.stop_environment(e)).await
    }
    async fn deployment_status(&self, e: &EnvironmentId, d: &DeploymentId) -> ProviderResult<DeploymentStatus> {
        self.log.time("cluster.deployment_status", self.inner.deployment_status(e, d)).await
    }
    async fn list_variables(&self, s: &VariableScope) -> ProviderResult<Vec<Variable>> {
        self.log.time("cluster.list_variables", self.inner.list_variables(s)).await
    }
    async fn set_variable(&self, s: &VariableScope, k: &str, v: &VariableValue) -> ProviderResult<()> {
        self.log.time("cluster.set_variable", self.inner.set_variable(s, k, v)).await
    }
    async fn delete_variable(&self, s: &VariableScope, k: &str) -> ProviderResult<()> {
        self.log.time("cluster.delete_variable", self.inner.delete_variable(s, k)).await
    }
    async fn set_service_image(&self, e: &EnvironmentId, s: &ServiceId, i: &ImageRef) -> ProviderResult<()> {
        self.log.time("cluster.set_service_image", self.inner.set_service_image(e, s, i)).await
    }
    async fn clone_environment(&self, e: &EnvironmentId, r: &CloneRequest) -> ProviderResult<EnvironmentId> {
        self.log.time("cluster.clone_environment", self.inner.clone_environment(e, r)).await
    }
    async fn image_source_ready(&self, i: &ImageRef) -> ProviderResult<()> {
        self.log.time("cluster.image_source_ready", self.inner.image_source_ready(i)).await
    }
    async fn start_cluster(&self, c: &ClusterId) -> ProviderResult<()> {
        self.log.time("cluster.start_cluster", self.inner.start_cluster(c)).await
    }
    async fn set_service_scale(&self, e: &EnvironmentId, s: &ServiceId, x: &ServiceScale) -> ProviderResult<()> {
        self.log.time("cluster.set_service_scale", self.inner.set_service_scale(e, s, x)).await
    }
    async fn delete_environment(&self, e: &EnvironmentId) -> ProviderResult<()> {
        self.log.time("cluster.delete_environment", self.inner.delete_environment(e)).await
    }
}

#[async_trait]
impl DnsSwitcher for Timed<dyn DnsSwitcher> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> DnsCapabilities {
        self.inner.capabilities()
    }
    fn capabilities_for(&self, r: &DnsRecordId) -> DnsCapabilities {
        self.inner.capabilities_for(r)
    }
    async fn current(&self, r: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        self.log.time("dns.current", self.inner.current(r)).await
    }
    async fn switch(&self, r: &SwitchRequest) -> ProviderResult<ChangeId> {
        self.log.time("dns.switch", self.inner.switch(r)).await
    }
    async fn change_status(&self, c: &ChangeId) -> ProviderResult<ChangeStatus> {
        self.log.time("dns.change_status", self.inner.change_status(c)).await
    }
    async fn target_health(&self, t: &DnsTarget) -> ProviderResult<TargetHealth> {
        self.log.time("dns.target_health", self.inner.target_health(t)).await
    }
}

#[async_trait]
impl ReplicationManager for Timed<dyn ReplicationManager> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> ReplicationCapabilities {
        self.inner.capabilities()
    }
    async fn status(&self, d: &DatabaseId) -> ProviderResult<ReplicationStatus> {
        self.log.time("replication.status", self.inner.status(d)).await
    }
    async fn primary_writability(&self, d: &DatabaseId) -> ProviderResult<Writability> {
        self.log.time("replication.primary_writability", self.inner.primary_writability(d)).await
    }
    async fn fence_primary(&self, d: &DatabaseId) -> ProviderResult<FenceOutcome> {
        self.log.time("replication.fence_primary", self.inner.fence_primary(d)).await
    }
    async fn wait_for_catch_up(&self, d: &DatabaseId, l: &CatchUp) -> ProviderResult<Lsn> {
        self.log.time("replication.wait_for_catch_up", self.inner.wait_for_catch_up(d, l)).await
    }
    async fn promote_standby(&self, d: &DatabaseId) -> ProviderResult<PromoteOutcome> {
        self.log.time("replication.promote_standby", self.inner.promote_standby(d)).await
    }
    async fn promotion_state(&self, d: &DatabaseId) -> ProviderResult<qovery_dr_core::provider::PromotionState> {
        self.log.time("replication.promotion_state", self.inner.promotion_state(d)).await
    }
    async fn post_promotion_fixups(
        &self,
        d: &DatabaseId,
        s: &qovery_dr_core::provider::PromotionState,
    ) -> ProviderResult<FixupReport> {
        self.log.time("replication.post_promotion_fixups", self.inner.post_promotion_fixups(d, s)).await
    }
    async fn write_heartbeat(&self, d: &DatabaseId) -> ProviderResult<Heartbeat> {
        self.log.time("replication.write_heartbeat", self.inner.write_heartbeat(d)).await
    }
    async fn last_heartbeat(&self, d: &DatabaseId, n: Node) -> ProviderResult<Option<Heartbeat>> {
        self.log.time("replication.last_heartbeat", self.inner.last_heartbeat(d, n)).await
    }
}

#[async_trait]
impl RegistrySync for Timed<dyn RegistrySync> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> RegistryCapabilities {
        self.inner.capabilities()
    }
    async fn parity(&self, i: &ImageRef) -> ProviderResult<ImageParity> {
        self.log.time("registry.parity", self.inner.parity(i)).await
    }
    async fn copy(&self, i: &ImageRef) -> ProviderResult<CopyReport> {
        self.log.time("registry.copy", self.inner.copy(i)).await
    }
    async fn copy_all(&self, i: &[ImageRef]) -> ProviderResult<Vec<ImageCopy>> {
        self.log.time("registry.copy_all", self.inner.copy_all(i)).await
    }
    fn remap(&self, i: &ImageRef) -> ProviderResult<ImageRef> {
        self.inner.remap(i)
    }
}

#[async_trait]
impl AuthoritativeResolver for Timed<dyn AuthoritativeResolver> {
    async fn nameservers(&self, r: &DnsRecordId) -> ProviderResult<Vec<String>> {
        self.log.time("authoritative.nameservers", self.inner.nameservers(r)).await
    }
    async fn lookup(&self, server: &str, r: &DnsRecordId) -> ProviderResult<Option<DnsTarget>> {
        self.log.time("authoritative.lookup", self.inner.lookup(server, r)).await
    }
}
