//! Every suite, against the in-memory implementations, as concrete types and
//! as `Arc<dyn Trait>`, with full and reduced capabilities.

use std::sync::Arc;
use std::time::Duration;

use qovery_dr_core::provider::{
    ClusterCapabilities, ClusterProvider, ClusterState, DnsCapabilities, DnsSwitcher, RegistryLocation,
    RegistryMapping, RegistrySync, ReplicationCapabilities, ReplicationManager, ReplicationMode, SwitchStrategy,
    TargetHealth,
};
use qovery_dr_core::{ClusterId, ImageRef, ProjectId, ServiceId};
use qovery_dr_testkit::World;
use qovery_dr_testkit::conformance::cluster::ClusterFixture;
use qovery_dr_testkit::conformance::dns::DnsFixture;
use qovery_dr_testkit::conformance::registry::RegistryFixture;
use qovery_dr_testkit::conformance::replication::ReplicationFixture;
use qovery_dr_testkit::memory::{InMemoryCluster, InMemoryDns, InMemoryRegistry, InMemoryReplication};
use qovery_dr_testkit::world::build::digest_of;
use qovery_dr_testkit::world::{DatabaseSpec, EnvironmentSpec, HealthSource, ServiceSpec};

fn cluster_world() -> World {
    let world = World::new();
    world.add_cluster("c1", ClusterState::Running);
    world.add_cluster("c2", ClusterState::Running);
    world.add_environment(EnvironmentSpec {
        id: "e1".into(),
        name: "prod".into(),
        cluster: ClusterId::new("c1"),
        project: ProjectId::new("p1"),
        services: vec![
            ServiceSpec {
                id: "s1".into(),
                name: "api".into(),
                image: Some("r1.io/api:v1".parse().unwrap()),
                min_instances: 2,
                kind: Default::default(),
            },
            ServiceSpec {
                id: "s2".into(),
                name: "web".into(),
                image: Some("r1.io/web:v1".parse().unwrap()),
                min_instances: 2,
                kind: Default::default(),
            },
        ],
        variables: Default::default(),
        secrets: Default::default(),
        deployed: true,
    });
    world
}

fn cluster_fixture<P>(provider: P) -> ClusterFixture<P> {
    ClusterFixture {
        provider,
        cluster: "c1".into(),
        clone_target: "c2".into(),
        environment: "e1".into(),
        project: "p1".into(),
        service: ServiceId::new("s1"),
        image: "r2.io/api:v2".parse().unwrap(),
        deploy_timeout: Duration::from_secs(600),
        poll_interval: Duration::from_secs(5),
    }
}

async fn cluster_concrete() -> ClusterFixture<InMemoryCluster> {
    cluster_fixture(InMemoryCluster::new(&cluster_world()))
}
async fn cluster_dyn() -> ClusterFixture<Arc<dyn ClusterProvider>> {
    cluster_fixture(Arc::new(InMemoryCluster::new(&cluster_world())))
}
async fn cluster_minimal() -> ClusterFixture<Box<InMemoryCluster>> {
    cluster_fixture(Box::new(InMemoryCluster::new(&cluster_world()).with_capabilities(ClusterCapabilities::default())))
}

qovery_dr_testkit::cluster_provider_conformance!(cluster_in_memory, cluster_concrete(), start_paused);
qovery_dr_testkit::cluster_provider_conformance!(cluster_in_memory_dyn, cluster_dyn(), start_paused);
qovery_dr_testkit::cluster_provider_conformance!(cluster_in_memory_no_capabilities, cluster_minimal(), start_paused);

fn dns_world() -> World {
    let world = World::new();
    world.add_record("shop.example.com", "203.0.113.10", Duration::from_secs(60));
    world.set_target_health("203.0.113.20", HealthSource::Fixed(TargetHealth::Healthy));
    world
}

fn dns_fixture<P>(provider: P, strategy: SwitchStrategy) -> DnsFixture<P> {
    DnsFixture {
        provider,
        record: "shop.example.com".into(),
        current: "203.0.113.10".into(),
        alternative: "203.0.113.20".into(),
        strategy,
        sync_timeout: Duration::from_secs(300),
        poll_interval: Duration::from_secs(5),
    }
}

async fn dns_concrete() -> DnsFixture<InMemoryDns> {
    dns_fixture(InMemoryDns::new(&dns_world()), SwitchStrategy::FailoverRouting)
}
async fn dns_dyn() -> DnsFixture<Arc<dyn DnsSwitcher>> {
    dns_fixture(Arc::new(InMemoryDns::new(&dns_world())), SwitchStrategy::RecordSwap)
}
async fn dns_record_swap_only() -> DnsFixture<InMemoryDns> {
    let caps = DnsCapabilities::default().with_record_swap(true);
    dns_fixture(InMemoryDns::new(&dns_world()).with_capabilities(caps), SwitchStrategy::RecordSwap)
}

qovery_dr_testkit::dns_switcher_conformance!(dns_in_memory, dns_concrete(), start_paused);
qovery_dr_testkit::dns_switcher_conformance!(dns_in_memory_dyn, dns_dyn(), start_paused);
qovery_dr_testkit::dns_switcher_conformance!(dns_in_memory_record_swap_only, dns_record_swap_only(), start_paused);

fn replication_fixture<P>(provider: P) -> ReplicationFixture<P> {
    ReplicationFixture {
        provider,
        database: "db".into(),
        catch_up_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(100),
    }
}

fn replication_world(mode: ReplicationMode) -> World {
    let world = World::new();
    let mut spec = DatabaseSpec::streaming("db", mode);
    if mode == ReplicationMode::Dump {
        spec.dump_every = Some(Duration::from_secs(60));
    }
    world.add_database(spec);
    world
}

async fn replication_physical() -> ReplicationFixture<InMemoryReplication> {
    let world = replication_world(ReplicationMode::Physical);
    // Let some WAL flow before the checks.
    tokio::time::sleep(Duration::from_secs(2)).await;
    replication_fixture(InMemoryReplication::new(&world))
}
async fn replication_logical_dyn() -> ReplicationFixture<Arc<dyn ReplicationManager>> {
    let world = replication_world(ReplicationMode::Logical);
    tokio::time::sleep(Duration::from_secs(2)).await;
    replication_fixture(Arc::new(InMemoryReplication::new(&world)))
}
async fn replication_dump_without_fencing() -> ReplicationFixture<InMemoryReplication> {
    let world = replication_world(ReplicationMode::Dump);
    tokio::time::sleep(Duration::from_secs(61)).await;
    let caps = ReplicationCapabilities::default().with_dump(true);
    replication_fixture(InMemoryReplication::new(&world).with_capabilities(caps))
}

qovery_dr_testkit::replication_manager_conformance!(
    replication_in_memory_physical,
    replication_physical(),
    start_paused
);
qovery_dr_testkit::replication_manager_conformance!(
    replication_in_memory_logical_dyn,
    replication_logical_dyn(),
    start_paused
);
qovery_dr_testkit::replication_manager_conformance!(
    replication_in_memory_dump_no_fencing,
    replication_dump_without_fencing(),
    start_paused
);

fn registry_fixture<P>(provider: P) -> RegistryFixture<P> {
    RegistryFixture {
        provider,
        present: "r1.io/team/api:v1".parse().unwrap(),
        missing: "r1.io/team/web:v1".parse().unwrap(),
        missing_digest: digest_of("web"),
        absent: "r1.io/team/nope:v1".parse().unwrap(),
        foreign: "elsewhere.io/team/api:v1".parse().unwrap(),
    }
}

fn registry_world() -> (World, RegistryMapping) {
    let world = World::new();
    let api: ImageRef = "r1.io/team/api:v1".parse().unwrap();
    let web: ImageRef = "r1.io/team/web:v1".parse().unwrap();
    world.add_image(&api, digest_of("api"), 10 << 20);
    world.add_image(&web, digest_of("web"), 20 << 20);
    world.add_image(&"r2.io:5000/dr/api:v1".parse().unwrap(), digest_of("api"), 10 << 20);
    let mapping = RegistryMapping::new(
        RegistryLocation { host: "r1.io".into(), prefix: Some("team".into()) },
        RegistryLocation { host: "r2.io:5000".into(), prefix: Some("dr".into()) },
    );
    (world, mapping)
}

async fn registry_concrete() -> RegistryFixture<InMemoryRegistry> {
    let (world, mapping) = registry_world();
    registry_fixture(InMemoryRegistry::new(&world, mapping))
}
async fn registry_dyn_check_only() -> RegistryFixture<Arc<dyn RegistrySync>> {
    let (world, mapping) = registry_world();
    let caps = qovery_dr_core::provider::RegistryCapabilities::default();
    registry_fixture(Arc::new(InMemoryRegistry::new(&world, mapping).with_capabilities(caps)))
}

qovery_dr_testkit::registry_sync_conformance!(registry_in_memory, registry_concrete(), start_paused);
qovery_dr_testkit::registry_sync_conformance!(
    registry_in_memory_dyn_check_only,
    registry_dyn_check_only(),
    start_paused
);

// ---- The suite rejects broken providers -------------------------------------------------

use qovery_dr_core::provider::{
    CloneRequest, ClusterStatus, DeploymentPhase, DeploymentStatus, EnvironmentStatus, EnvironmentSummary, ServiceInfo,
    Variable, VariableScope, VariableValue,
};
use qovery_dr_core::{DeploymentId, EnvironmentId, ErrorKind, ProviderResult, async_trait};

/// How a provider breaks the cluster contract.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Breakage {
    /// Accepts a second deployment while one runs (answers a fresh id instead of 409).
    AcceptsSecondDeploy,
    /// Says `Deployed` as soon as asked, while the environment is still rolling out.
    DeployedAtOnce,
    /// Conflicts per service, not per environment (two services deploy side by side).
    PerServiceConflicts,
    /// Refuses to start a cluster that already runs (a retried start would fail).
    RefusesStartingARunningCluster,
    /// Answers a scale request with success and changes nothing.
    IgnoresScale,
}

#[derive(Debug)]
struct Broken {
    inner: InMemoryCluster,
    breakage: Breakage,
}

#[async_trait]
impl ClusterProvider for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn capabilities(&self) -> ClusterCapabilities {
        self.inner.capabilities()
    }
    async fn cluster_status(&self, c: &ClusterId) -> ProviderResult<ClusterStatus> {
        self.inner.cluster_status(c).await
    }
    async fn environment_status(&self, e: &EnvironmentId) -> ProviderResult<EnvironmentStatus> {
        self.inner.environment_status(e).await
    }
    async fn list_environments(&self, p: &ProjectId) -> ProviderResult<Vec<EnvironmentSummary>> {
        self.inner.list_environments(p).await
    }
    async fn list_services(&self, e: &EnvironmentId) -> ProviderResult<Vec<ServiceInfo>> {
        self.inner.list_services(e).await
    }
    async fn start_cluster(&self, c: &ClusterId) -> ProviderResult<()> {
        if self.breakage == Breakage::RefusesStartingARunningCluster
            && self.inner.cluster_status(c).await.is_ok_and(|s| s.is_healthy())
        {
            return Err(qovery_dr_core::ProviderError::new(ErrorKind::Conflict, "broken", "start", "already running"));
        }
        self.inner.start_cluster(c).await
    }
    async fn deploy_environment(&self, e: &EnvironmentId) -> ProviderResult<DeploymentId> {
        match self.inner.deploy_environment(e).await {
            Err(err) if err.kind() == ErrorKind::Conflict && self.breakage == Breakage::AcceptsSecondDeploy => {
                Ok(DeploymentId::new("accepted-anyway"))
            }
            other => other,
        }
    }
    async fn redeploy_environment(&self, e: &EnvironmentId) -> ProviderResult<DeploymentId> {
        self.inner.redeploy_environment(e).await
    }
    async fn deploy_services(
        &self,
        e: &EnvironmentId,
        s: &qovery_dr_core::provider::DeployServices,
    ) -> ProviderResult<DeploymentId> {
        match self.inner.deploy_services(e, s).await {
            Err(err) if err.kind() == ErrorKind::Conflict && self.breakage == Breakage::PerServiceConflicts => {
                // Only a deployment covering one of these services would conflict.
                let status = self.inner.environment_status(e).await?;
                let busy = status.services.iter().any(|x| s.services.contains(&x.service) && !x.phase.is_terminal());
                if busy { Err(err) } else { Ok(DeploymentId::new("side-by-side")) }
            }
            other => other,
        }
    }
    async fn stop_environment(&self, e: &EnvironmentId) -> ProviderResult<DeploymentId> {
        self.inner.stop_environment(e).await
    }
    async fn deployment_status(&self, e: &EnvironmentId, d: &DeploymentId) -> ProviderResult<DeploymentStatus> {
        if matches!(d.as_str(), "accepted-anyway" | "side-by-side") {
            return Ok(DeploymentStatus::new(d.clone(), DeploymentPhase::Deployed, "DEPLOYED"));
        }
        let mut s = self.inner.deployment_status(e, d).await?;
        if self.breakage == Breakage::DeployedAtOnce && !s.phase.is_terminal() {
            s.phase = DeploymentPhase::Deployed;
            s.raw_state = "DEPLOYED".into();
        }
        Ok(s)
    }
    async fn list_variables(&self, s: &VariableScope) -> ProviderResult<Vec<Variable>> {
        self.inner.list_variables(s).await
    }
    async fn set_variable(&self, s: &VariableScope, k: &str, v: &VariableValue) -> ProviderResult<()> {
        self.inner.set_variable(s, k, v).await
    }
    async fn delete_variable(&self, s: &VariableScope, k: &str) -> ProviderResult<()> {
        self.inner.delete_variable(s, k).await
    }
    async fn set_service_image(&self, e: &EnvironmentId, s: &ServiceId, i: &ImageRef) -> ProviderResult<()> {
        self.inner.set_service_image(e, s, i).await
    }
    async fn set_service_scale(
        &self,
        e: &EnvironmentId,
        s: &ServiceId,
        scale: &qovery_dr_core::ServiceScale,
    ) -> ProviderResult<()> {
        if self.breakage == Breakage::IgnoresScale {
            return Ok(());
        }
        self.inner.set_service_scale(e, s, scale).await
    }
    async fn clone_environment(&self, s: &EnvironmentId, r: &CloneRequest) -> ProviderResult<EnvironmentId> {
        self.inner.clone_environment(s, r).await
    }
    async fn delete_environment(&self, e: &EnvironmentId) -> ProviderResult<()> {
        self.inner.delete_environment(e).await
    }
}

/// Runs `check` on a provider broken by `breakage`; returns the suite's failure message.
async fn rejection<F, Fut>(breakage: Breakage, check: F) -> String
where
    F: FnOnce(ClusterFixture<Broken>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let fixture = cluster_fixture(Broken { inner: InMemoryCluster::new(&cluster_world()), breakage });
    match tokio::spawn(async move { check(fixture).await }).await {
        Ok(()) => panic!("the suite accepted a provider that {breakage:?}"),
        Err(e) => panic_message(e),
    }
}

#[tokio::test(start_paused = true)]
async fn the_cluster_suite_rejects_a_provider_that_accepts_a_second_deployment() {
    use qovery_dr_testkit::conformance::cluster::a_second_deployment_during_one_is_a_conflict as check;
    let msg = rejection(Breakage::AcceptsSecondDeploy, |f| async move { check(&f).await }).await;
    assert!(msg.contains("deploy during a deploy"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_cluster_suite_rejects_a_provider_whose_deployment_status_runs_ahead() {
    use qovery_dr_testkit::conformance::cluster::deployed_means_rolled_out as check;
    let msg = rejection(Breakage::DeployedAtOnce, |f| async move { check(&f).await }).await;
    assert!(msg.contains("must not run ahead of the environment"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_cluster_suite_rejects_a_provider_that_refuses_starting_a_running_cluster() {
    use qovery_dr_testkit::conformance::cluster::starting_a_running_cluster_is_harmless as check;
    let msg = rejection(Breakage::RefusesStartingARunningCluster, |f| async move { check(&f).await }).await;
    assert!(msg.contains("start_cluster of a running cluster"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_cluster_suite_rejects_a_provider_that_ignores_a_scale_request() {
    use qovery_dr_testkit::conformance::cluster::scaling_a_service_is_visible_and_idempotent as check;
    let msg = rejection(Breakage::IgnoresScale, |f| async move { check(&f).await }).await;
    assert!(msg.contains("a scaled service lists its new minimum"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_cluster_suite_rejects_a_provider_that_conflicts_per_service() {
    use qovery_dr_testkit::conformance::cluster::a_second_deployment_during_one_is_a_conflict as check;
    let msg = rejection(Breakage::PerServiceConflicts, |f| async move { check(&f).await }).await;
    assert!(msg.contains("the environment is busy"), "{msg}");
}

/// How a registry sync breaks the batch contract.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BatchBreakage {
    /// One image's failure fails the whole batch.
    StopsAtTheFirstFailure,
    /// Answers the images in another order than given.
    AnswersOutOfOrder,
}

#[derive(Debug)]
struct BrokenBatch {
    inner: InMemoryRegistry,
    breakage: BatchBreakage,
}

#[async_trait]
impl RegistrySync for BrokenBatch {
    fn name(&self) -> &str {
        "broken-batch"
    }
    fn capabilities(&self) -> qovery_dr_core::provider::RegistryCapabilities {
        self.inner.capabilities()
    }
    async fn parity(&self, i: &ImageRef) -> ProviderResult<qovery_dr_core::provider::ImageParity> {
        self.inner.parity(i).await
    }
    async fn copy(&self, i: &ImageRef) -> ProviderResult<qovery_dr_core::provider::CopyReport> {
        self.inner.copy(i).await
    }
    async fn copy_all(&self, images: &[ImageRef]) -> ProviderResult<Vec<qovery_dr_core::provider::ImageCopy>> {
        let mut out = Vec::new();
        for i in images {
            let result = self.inner.copy(i).await;
            if self.breakage == BatchBreakage::StopsAtTheFirstFailure {
                if let Err(e) = result {
                    return Err(e);
                }
                out.push(qovery_dr_core::provider::ImageCopy::new(i.clone(), result));
            } else {
                out.insert(0, qovery_dr_core::provider::ImageCopy::new(i.clone(), result));
            }
        }
        Ok(out)
    }
    fn remap(&self, i: &ImageRef) -> ProviderResult<ImageRef> {
        self.inner.remap(i)
    }
}

async fn batch_rejection(breakage: BatchBreakage) -> String {
    use qovery_dr_testkit::conformance::registry::copy_all_answers_each_image_in_order as check;
    let (world, mapping) = registry_world();
    let fixture = registry_fixture(BrokenBatch { inner: InMemoryRegistry::new(&world, mapping), breakage });
    match tokio::spawn(async move { check(&fixture).await }).await {
        Ok(()) => panic!("the suite accepted a registry sync that {breakage:?}"),
        Err(e) => panic_message(e),
    }
}

#[tokio::test(start_paused = true)]
async fn the_registry_suite_rejects_a_batch_that_one_absent_image_fails_whole() {
    let msg = batch_rejection(BatchBreakage::StopsAtTheFirstFailure).await;
    assert!(msg.contains("one absent image must not fail the whole batch"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_registry_suite_rejects_a_batch_answered_out_of_order() {
    let msg = batch_rejection(BatchBreakage::AnswersOutOfOrder).await;
    assert!(msg.contains("one entry per image, in the order given"), "{msg}");
}

/// What a check that panicked said.
fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// How a replication manager breaks the re-protection or the failover-epoch contract.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ReplicationBreakage {
    /// Re-protects a standby that already follows (rewinds it, discarding what it holds).
    RewindsAHealthyStandby,
    /// Declares no `reprotect` capability, and re-protects anyway.
    ActsWithoutTheCapability,
    /// Records any epoch it is given, an older one over a newer one.
    RecordsAnOlderEpoch,
    /// Records the epoch whether or not the standby was promoted.
    RecordsBeforePromotion,
}

/// The in-memory manager, with `reprotect` or the epoch broken by `breakage`; the rest
/// forwarded.
#[derive(Debug)]
struct BrokenReplication {
    inner: InMemoryReplication,
    breakage: ReplicationBreakage,
    epoch: std::sync::Mutex<Option<qovery_dr_core::FailoverEpoch>>,
}

impl BrokenReplication {
    fn new(inner: InMemoryReplication, breakage: ReplicationBreakage) -> Self {
        BrokenReplication { inner, breakage, epoch: std::sync::Mutex::new(None) }
    }

    fn breaks_the_epoch(&self) -> bool {
        matches!(self.breakage, ReplicationBreakage::RecordsAnOlderEpoch | ReplicationBreakage::RecordsBeforePromotion)
    }
}

mod broken_replication {
    use qovery_dr_core::provider::{
        CatchUp, FenceOutcome, FixupReport, Heartbeat, Node, PromoteOutcome, PromotionState, ReplicationCapabilities,
        ReplicationManager, ReplicationStatus, ReprotectReport, Writability,
    };
    use qovery_dr_core::{DatabaseId, ErrorKind, FailoverEpoch, Lsn, ProviderError, ProviderResult, async_trait};

    use super::{BrokenReplication, ReplicationBreakage};

    #[async_trait]
    impl ReplicationManager for BrokenReplication {
        fn name(&self) -> &str {
            "broken-replication"
        }
        fn capabilities(&self) -> ReplicationCapabilities {
            match self.breakage {
                ReplicationBreakage::ActsWithoutTheCapability => self.inner.capabilities().with_reprotect(false),
                _ => self.inner.capabilities(),
            }
        }
        async fn status(&self, d: &DatabaseId) -> ProviderResult<ReplicationStatus> {
            self.inner.status(d).await
        }
        async fn primary_writability(&self, d: &DatabaseId) -> ProviderResult<Writability> {
            self.inner.primary_writability(d).await
        }
        async fn fence_primary(&self, d: &DatabaseId) -> ProviderResult<FenceOutcome> {
            self.inner.fence_primary(d).await
        }
        async fn wait_for_catch_up(&self, d: &DatabaseId, r: &CatchUp) -> ProviderResult<Lsn> {
            self.inner.wait_for_catch_up(d, r).await
        }
        async fn promote_standby(&self, d: &DatabaseId) -> ProviderResult<PromoteOutcome> {
            self.inner.promote_standby(d).await
        }
        async fn promotion_state(&self, d: &DatabaseId) -> ProviderResult<PromotionState> {
            self.inner.promotion_state(d).await
        }
        async fn post_promotion_fixups(&self, d: &DatabaseId, s: &PromotionState) -> ProviderResult<FixupReport> {
            self.inner.post_promotion_fixups(d, s).await
        }
        async fn write_heartbeat(&self, d: &DatabaseId) -> ProviderResult<Heartbeat> {
            self.inner.write_heartbeat(d).await
        }
        async fn last_heartbeat(&self, d: &DatabaseId, n: Node) -> ProviderResult<Option<Heartbeat>> {
            self.inner.last_heartbeat(d, n).await
        }
        async fn reprotect(&self, d: &DatabaseId) -> ProviderResult<ReprotectReport> {
            if self.breaks_the_epoch() {
                return self.inner.reprotect(d).await;
            }
            Ok(ReprotectReport::new("rewind").with_note("rewound the standby"))
        }
        async fn failover_epoch(&self, d: &DatabaseId, n: Node) -> ProviderResult<Option<FailoverEpoch>> {
            if !self.breaks_the_epoch() {
                return self.inner.failover_epoch(d, n).await;
            }
            self.inner.status(d).await?;
            Ok(self.epoch.lock().unwrap().clone())
        }
        async fn record_failover_epoch(&self, d: &DatabaseId, epoch: &FailoverEpoch) -> ProviderResult<()> {
            if !self.breaks_the_epoch() {
                return self.inner.record_failover_epoch(d, epoch).await;
            }
            let promoted = self.inner.status(d).await?.standby_promoted;
            let mut held = self.epoch.lock().unwrap();
            let refused = match self.breakage {
                // Guards the number, never looks at the promotion.
                ReplicationBreakage::RecordsBeforePromotion => held
                    .as_ref()
                    .is_some_and(|h| h.epoch > epoch.epoch || (h.epoch == epoch.epoch && h.run_id != epoch.run_id)),
                // Guards the promotion, never looks at the number.
                _ => !promoted,
            };
            if refused {
                return Err(ProviderError::new(ErrorKind::Conflict, "broken-replication", "record", "refused"));
            }
            *held = Some(epoch.clone());
            Ok(())
        }
    }
}

async fn broken_replication_rejection<F, Fut>(breakage: ReplicationBreakage, check: F) -> String
where
    F: FnOnce(ReplicationFixture<BrokenReplication>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let world = replication_world(ReplicationMode::Physical);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fixture = replication_fixture(BrokenReplication::new(InMemoryReplication::new(&world), breakage));
    match tokio::spawn(async move { check(fixture).await }).await {
        Ok(()) => panic!("the suite accepted a manager that {breakage:?}"),
        Err(e) => panic_message(e),
    }
}

async fn reprotect_rejection(breakage: ReplicationBreakage) -> String {
    use qovery_dr_testkit::conformance::replication::reprotect_leaves_a_healthy_pair_alone as check;
    broken_replication_rejection(breakage, |f| async move { check(&f).await }).await
}

async fn epoch_record_rejection(breakage: ReplicationBreakage) -> String {
    use qovery_dr_testkit::conformance::replication::failover_epoch_is_recorded_guarded as check;
    broken_replication_rejection(breakage, |f| async move { check(&f).await }).await
}

#[tokio::test(start_paused = true)]
async fn the_replication_suite_rejects_a_manager_that_rewinds_a_healthy_standby() {
    let msg = reprotect_rejection(ReplicationBreakage::RewindsAHealthyStandby).await;
    assert!(msg.contains("re-protected a standby that already follows"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_replication_suite_rejects_a_manager_that_reprotects_without_the_capability() {
    let msg = reprotect_rejection(ReplicationBreakage::ActsWithoutTheCapability).await;
    assert!(msg.contains("reprotect without the reprotect capability"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_replication_suite_rejects_a_manager_that_records_an_older_epoch() {
    let msg = epoch_record_rejection(ReplicationBreakage::RecordsAnOlderEpoch).await;
    assert!(msg.contains("epoch 1 from another run: expected a conflict error, got Ok"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_replication_suite_rejects_a_manager_that_records_an_epoch_before_promotion() {
    let msg = epoch_record_rejection(ReplicationBreakage::RecordsBeforePromotion).await;
    assert!(msg.contains("recording an epoch before promotion: expected a conflict error, got Ok"), "{msg}");
}

/// How a DNS provider breaks the failover-epoch contract.
#[derive(Debug, Clone, Copy, PartialEq)]
enum EpochBreakage {
    /// Writes whatever epoch it is given, an older one over a newer one.
    OverwritesANewerEpoch,
    /// Refuses the same epoch published again (a retry after a lost answer).
    RefusesARetry,
    /// Publishes the epoch by writing it over the record itself.
    WritesOverTheRecord,
}

/// The in-memory DNS, with the epoch beside the record kept by a broken rule; the rest
/// forwarded.
#[derive(Debug)]
struct BrokenEpoch {
    inner: InMemoryDns,
    breakage: EpochBreakage,
    epoch: std::sync::Mutex<Option<u64>>,
}

mod broken_epoch {
    use qovery_dr_core::provider::{
        ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, SwitchRequest, SwitchStrategy, TargetHealth,
    };
    use qovery_dr_core::{
        ChangeId, DnsRecordId, DnsTarget, ErrorKind, FailoverEpoch, ProviderError, ProviderResult, async_trait,
    };

    use super::{BrokenEpoch, EpochBreakage};

    const EPOCH_CHANGE: &str = "broken-epoch";

    #[async_trait]
    impl DnsSwitcher for BrokenEpoch {
        fn name(&self) -> &str {
            "broken-epoch"
        }
        fn capabilities(&self) -> DnsCapabilities {
            self.inner.capabilities()
        }
        async fn current(&self, record: &DnsRecordId) -> ProviderResult<DnsRecordState> {
            self.inner.current(record).await
        }
        async fn switch(&self, request: &SwitchRequest) -> ProviderResult<ChangeId> {
            self.inner.switch(request).await
        }
        async fn change_status(&self, change: &ChangeId) -> ProviderResult<ChangeStatus> {
            if change.as_str() == EPOCH_CHANGE {
                return Ok(ChangeStatus::InSync);
            }
            self.inner.change_status(change).await
        }
        async fn target_health(&self, target: &DnsTarget) -> ProviderResult<TargetHealth> {
            self.inner.target_health(target).await
        }
        async fn failover_epoch(&self, _record: &DnsRecordId) -> ProviderResult<Option<u64>> {
            Ok(*self.epoch.lock().unwrap())
        }
        async fn publish_failover_epoch(
            &self,
            record: &DnsRecordId,
            epoch: &FailoverEpoch,
        ) -> ProviderResult<ChangeId> {
            let held = *self.epoch.lock().unwrap();
            match self.breakage {
                EpochBreakage::OverwritesANewerEpoch => {}
                EpochBreakage::RefusesARetry if held >= Some(epoch.epoch) => {
                    return Err(ProviderError::new(ErrorKind::Conflict, "broken-epoch", "publish", "already there"));
                }
                EpochBreakage::RefusesARetry => {}
                EpochBreakage::WritesOverTheRecord => {
                    if held > Some(epoch.epoch) {
                        return Err(ProviderError::new(ErrorKind::Conflict, "broken-epoch", "publish", "older"));
                    }
                    let current = self.inner.current(record).await?.target;
                    let request = SwitchRequest::new(
                        record.clone(),
                        SwitchStrategy::RecordSwap,
                        current,
                        DnsTarget::new(format!("qdr-epoch={}", epoch.epoch)),
                    );
                    self.inner.switch(&request).await?;
                }
            }
            *self.epoch.lock().unwrap() = Some(epoch.epoch);
            Ok(ChangeId::new(EPOCH_CHANGE))
        }
    }
}

async fn epoch_rejection(breakage: EpochBreakage) -> String {
    use qovery_dr_testkit::conformance::dns::failover_epoch_is_published_guarded as check;
    let provider = BrokenEpoch { inner: InMemoryDns::new(&dns_world()), breakage, epoch: std::sync::Mutex::new(None) };
    let fixture = dns_fixture(provider, SwitchStrategy::RecordSwap);
    match tokio::spawn(async move { check(&fixture).await }).await {
        Ok(()) => panic!("the suite accepted a DNS provider that {breakage:?}"),
        Err(e) => panic_message(e),
    }
}

#[tokio::test(start_paused = true)]
async fn the_dns_suite_rejects_a_provider_that_overwrites_a_newer_epoch() {
    let msg = epoch_rejection(EpochBreakage::OverwritesANewerEpoch).await;
    assert!(msg.contains("publishing an older epoch: expected a conflict error, got Ok"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_dns_suite_rejects_a_provider_that_refuses_a_retried_epoch() {
    let msg = epoch_rejection(EpochBreakage::RefusesARetry).await;
    assert!(msg.contains("publish epoch 1 again"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn the_dns_suite_rejects_a_provider_that_writes_the_epoch_over_the_record() {
    let msg = epoch_rejection(EpochBreakage::WritesOverTheRecord).await;
    assert!(msg.contains("the epoch beside the record leaves the record alone"), "{msg}");
}
