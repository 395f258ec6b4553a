//! [`ClusterProvider`]: the platform that runs the application (Qovery).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{ErrorKind, ProviderError, ProviderResult};
use crate::model::{
    ClusterId, DeploymentId, EnvironmentId, ImageRef, ProjectId, SecretString, ServiceId, ServiceScale,
};

/// What a cluster provider can do beyond the required operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ClusterCapabilities {
    /// [`ClusterProvider::clone_environment`] and [`ClusterProvider::delete_environment`] work.
    pub clone_environment: bool,
    /// Variables can be scoped to a single service ([`VariableScope::Service`]).
    pub service_scoped_variables: bool,
    /// [`ClusterProvider::deploy_services`] deploys a subset of services.
    pub deploy_services: bool,
    /// [`ClusterProvider::start_cluster`] starts a stopped cluster.
    pub start_cluster: bool,
    /// [`ClusterProvider::set_service_scale`] sets instance counts and resources.
    pub scale_services: bool,
}

with_setters!(ClusterCapabilities {
    set {
        with_clone_environment => clone_environment: bool,
        with_service_scoped_variables => service_scoped_variables: bool,
        with_deploy_services => deploy_services: bool,
        with_start_cluster => start_cluster: bool,
        with_scale_services => scale_services: bool,
    }
});

impl ClusterCapabilities {
    /// Every capability.
    pub fn all() -> Self {
        Self {
            clone_environment: true,
            service_scoped_variables: true,
            deploy_services: true,
            start_cluster: true,
            scale_services: true,
        }
    }
}

/// The state of a cluster as the platform reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
#[non_exhaustive]
pub enum ClusterState {
    /// Up and able to run deployments.
    Running,
    /// Being created or updated.
    Deploying,
    /// Stopped (scaled to zero or paused).
    Stopped,
    /// In error.
    Error,
    /// A state this SDK does not know, with the platform's raw value.
    Unknown(String),
}

/// A cluster's status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ClusterStatus {
    /// The cluster.
    pub cluster: ClusterId,
    /// Its state.
    pub state: ClusterState,
    /// The platform's own words, if any.
    pub message: Option<String>,
}

impl ClusterStatus {
    /// The status of `cluster`: `state`, no message.
    pub fn new(cluster: ClusterId, state: ClusterState) -> Self {
        Self { cluster, state, message: None }
    }
}

with_setters!(ClusterStatus { some { with_message => message: String } });

impl ClusterStatus {
    /// Whether the cluster can take deployments now.
    pub fn is_healthy(&self) -> bool {
        self.state == ClusterState::Running
    }
}

/// Where a deployment (of an environment or a service) is in its lifecycle,
/// normalised from the platform's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeploymentPhase {
    /// Accepted, waiting to start.
    Queued,
    /// Building, deploying, stopping, restarting or cancelling.
    InProgress,
    /// Finished: running the requested version.
    Deployed,
    /// Finished: stopped as requested.
    Stopped,
    /// Finished: cancelled.
    Canceled,
    /// Finished with an error.
    Failed,
    /// Never deployed, or a state that cannot be classified.
    Unknown,
}

impl DeploymentPhase {
    /// Whether the phase is final (no more change without a new request).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Deployed | Self::Stopped | Self::Canceled | Self::Failed)
    }
}

/// The status of one deployment request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DeploymentStatus {
    /// The request.
    pub deployment: DeploymentId,
    /// The normalised phase.
    pub phase: DeploymentPhase,
    /// The platform's raw state (e.g. `DEPLOYMENT_ERROR`).
    pub raw_state: String,
    /// The platform's message, if any.
    pub message: Option<String>,
}

impl DeploymentStatus {
    /// `deployment` in `phase`, as the platform named it (`raw_state`), no message.
    pub fn new(deployment: DeploymentId, phase: DeploymentPhase, raw_state: impl Into<String>) -> Self {
        Self { deployment, phase, raw_state: raw_state.into(), message: None }
    }
}

with_setters!(DeploymentStatus { some { with_message => message: String } });

/// The status of one service of an environment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ServiceStatus {
    /// The service.
    pub service: ServiceId,
    /// Its deployment phase.
    pub phase: DeploymentPhase,
    /// The platform's raw state.
    pub raw_state: String,
    /// Whether the running version is older than the configured one (Qovery's `OUT_OF_DATE`).
    pub out_of_date: bool,
}

impl ServiceStatus {
    /// `service` in `phase`, as the platform named it (`raw_state`), up to date.
    pub fn new(service: ServiceId, phase: DeploymentPhase, raw_state: impl Into<String>) -> Self {
        Self { service, phase, raw_state: raw_state.into(), out_of_date: false }
    }
}

with_setters!(ServiceStatus { set { with_out_of_date => out_of_date: bool } });

/// The status of an environment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct EnvironmentStatus {
    /// The environment.
    pub environment: EnvironmentId,
    /// The cluster it runs on.
    pub cluster: ClusterId,
    /// The phase of its last deployment.
    pub phase: DeploymentPhase,
    /// The platform's raw state.
    pub raw_state: String,
    /// Per-service status.
    pub services: Vec<ServiceStatus>,
}

impl EnvironmentStatus {
    /// `environment` on `cluster` in `phase` (`raw_state` as the platform named it), no service.
    pub fn new(
        environment: EnvironmentId,
        cluster: ClusterId,
        phase: DeploymentPhase,
        raw_state: impl Into<String>,
    ) -> Self {
        Self { environment, cluster, phase, raw_state: raw_state.into(), services: Vec::new() }
    }
}

with_setters!(EnvironmentStatus { set { with_services => services: Vec<ServiceStatus> } });

/// An environment as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct EnvironmentSummary {
    /// Its id.
    pub id: EnvironmentId,
    /// Its name (unique in its project).
    pub name: String,
    /// The cluster it runs on.
    pub cluster: ClusterId,
}

impl EnvironmentSummary {
    /// Environment `id`, named `name`, on `cluster`.
    pub fn new(id: EnvironmentId, name: impl Into<String>, cluster: ClusterId) -> Self {
        Self { id, name: name.into(), cluster }
    }
}

/// What kind of service an environment holds, as far as a failover cares.
///
/// ```
/// use qovery_dr_core::provider::ServiceKind;
/// assert!(ServiceKind::Job.is_deployed_by_a_failover());
/// let db = ServiceKind::Database { engine: "POSTGRESQL".into(), managed: true };
/// assert!(!db.is_deployed_by_a_failover() && !db.scales());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServiceKind {
    /// A long-running service from a container image.
    #[default]
    Container,
    /// A long-running service built from git.
    Application,
    /// A job (cron or lifecycle), from an image or built from git: its image is synced and
    /// re-pointed like a container's, and it is deployed with the environment's services.
    Job,
    /// A database the platform runs in the environment: listed as a read-only fact. A
    /// failover neither deploys nor re-points it (the plan's replicated databases are
    /// handled by the replication manager).
    Database {
        /// Its engine as the platform names it (e.g. `POSTGRESQL`).
        engine: String,
        /// Whether the cloud provider manages it (e.g. RDS), or it runs as a container.
        managed: bool,
    },
}

impl ServiceKind {
    /// Whether a failover deploys it (containers, applications, jobs).
    pub fn is_deployed_by_a_failover(&self) -> bool {
        !matches!(self, ServiceKind::Database { .. })
    }

    /// Whether it has instance counts a plan's scale applies to (containers, applications).
    pub fn scales(&self) -> bool {
        matches!(self, ServiceKind::Container | ServiceKind::Application)
    }
}

/// A service's configuration as the platform holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// The service.
    pub id: ServiceId,
    /// Its name (stable across environments, used for parity checks).
    pub name: String,
    /// The container image it runs, for container services and image-based jobs.
    pub image: Option<ImageRef>,
    /// The minimum number of running instances configured.
    pub min_instances: u32,
    /// What it is.
    #[serde(default)]
    pub kind: ServiceKind,
}

impl ServiceInfo {
    /// Service `id` named `name`: a container, no image known, one instance at least.
    pub fn new(id: ServiceId, name: impl Into<String>) -> Self {
        Self { id, name: name.into(), image: None, min_instances: 1, kind: ServiceKind::Container }
    }
}

with_setters!(ServiceInfo {
    set { with_min_instances => min_instances: u32, with_kind => kind: ServiceKind }
    some { with_image => image: ImageRef }
});

/// Where a variable lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VariableScope {
    /// Visible to every service of the environment.
    Environment(EnvironmentId),
    /// Visible to one service only.
    Service(EnvironmentId, ServiceId),
}

impl VariableScope {
    /// The environment the scope belongs to.
    pub fn environment(&self) -> &EnvironmentId {
        match self {
            VariableScope::Environment(e) | VariableScope::Service(e, _) => e,
        }
    }
}

/// A value to write: plain, or secret (write-only).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VariableValue {
    /// A plain value, readable back.
    Plain(String),
    /// A secret value: stored, never read back in clear.
    Secret(SecretString),
}

/// A variable as listed: secrets come without their value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Variable {
    /// The name.
    pub key: String,
    /// The value for plain variables; `None` for secrets.
    pub value: Option<String>,
    /// Whether it is a secret.
    pub secret: bool,
}

impl Variable {
    /// A variable as listed: its value (`None` for a secret), and whether it is secret.
    pub fn new(key: impl Into<String>, value: Option<String>, secret: bool) -> Self {
        Self { key: key.into(), value, secret }
    }

    /// A plain variable, with its value.
    pub fn plain(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self { key: key.into(), value: Some(value.into()), secret: false }
    }

    /// The failover epoch `vars` hold in [`EPOCH_VARIABLE`](crate::model::EPOCH_VARIABLE)
    /// (0 when it is absent or not a number).
    pub(crate) fn failover_epoch_in(vars: &[Variable]) -> u64 {
        vars.iter()
            .find(|v| v.key == crate::model::EPOCH_VARIABLE)
            .and_then(|v| v.value.as_deref())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// A secret, listed without its value.
    pub fn secret(key: impl Into<String>) -> Self {
        Self { key: key.into(), value: None, secret: true }
    }
}

/// Which services of an environment [`ClusterProvider::deploy_services`] deploys, in one
/// deployment. Built with [`DeployServices::new`]; options added later get defaults.
///
/// ```
/// use qovery_dr_core::provider::DeployServices;
/// let d = DeployServices::new(vec!["api".into(), "web".into()]);
/// assert_eq!(d.services.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeployServices {
    /// The services.
    pub services: Vec<ServiceId>,
}

impl DeployServices {
    /// Deploy these services.
    pub fn new(services: Vec<ServiceId>) -> Self {
        Self { services }
    }
}

/// How to clone an environment onto another cluster (drills).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CloneRequest {
    /// The new environment's name.
    pub name: String,
    /// The cluster to create it on.
    pub target_cluster: ClusterId,
    /// The project to create it in; the source's project if `None`.
    pub project: Option<ProjectId>,
}

impl CloneRequest {
    /// A clone named `name` on `target_cluster`, in the source's project.
    pub fn new(name: impl Into<String>, target_cluster: ClusterId) -> Self {
        Self { name: name.into(), target_cluster, project: None }
    }
}

with_setters!(CloneRequest { some { with_project => project: ProjectId } });

/// A platform that runs environments of services on clusters: Qovery, or your own.
///
/// Implementations are `Send + Sync + Debug + 'static` and held as
/// `Arc<dyn ClusterProvider>`. Every error is a [`ProviderError`](crate::ProviderError)
/// whose kind follows the `# Contract` of each method. The testkit's
/// `cluster_provider_conformance!` macro checks an implementation against these
/// contracts.
///
/// ```
/// use qovery_dr_core::provider::ClusterProvider;
/// use std::sync::Arc;
/// fn takes_any(p: Arc<dyn ClusterProvider>) -> String { p.name().to_owned() }
/// ```
#[async_trait]
pub trait ClusterProvider: Send + Sync + Debug + 'static {
    /// A short name for errors and reports (e.g. `qovery`).
    fn name(&self) -> &str;

    /// What this implementation supports beyond the required operations.
    fn capabilities(&self) -> ClusterCapabilities;

    /// What each operation depends on (control or data plane, and where), for the
    /// static-stability lint ([`crate::stability`]). Default: nothing declared (the
    /// lint lists the steps using this provider as not checked).
    fn planes(&self) -> crate::stability::Planes {
        crate::stability::Planes::undeclared(self.name())
    }

    /// The status of a cluster.
    ///
    /// # Contract
    /// Read-only. `NotFound` if the cluster does not exist.
    async fn cluster_status(&self, cluster: &ClusterId) -> ProviderResult<ClusterStatus>;

    /// The status of an environment and its services.
    ///
    /// # Contract
    /// Read-only. `NotFound` if the environment does not exist.
    async fn environment_status(&self, environment: &EnvironmentId) -> ProviderResult<EnvironmentStatus>;

    /// The environments of a project.
    ///
    /// # Contract
    /// Read-only. `NotFound` if the project does not exist.
    async fn list_environments(&self, project: &ProjectId) -> ProviderResult<Vec<EnvironmentSummary>>;

    /// The services of an environment with their configuration.
    ///
    /// # Contract
    /// Read-only. `NotFound` if the environment does not exist.
    async fn list_services(&self, environment: &EnvironmentId) -> ProviderResult<Vec<ServiceInfo>>;

    /// Starts deploying every service of the environment with its current configuration.
    ///
    /// # Contract
    /// Not idempotent in itself (each call is a new request), but deploying an
    /// environment that is already deployed with the same configuration is
    /// harmless. `Conflict` if a deployment of the environment is in progress;
    /// `NotFound` if the environment does not exist. On success, the returned
    /// deployment is visible through [`deployment_status`](Self::deployment_status).
    async fn deploy_environment(&self, environment: &EnvironmentId) -> ProviderResult<DeploymentId>;

    /// Starts redeploying the environment (restart with the current configuration).
    ///
    /// # Contract
    /// As [`deploy_environment`](Self::deploy_environment).
    async fn redeploy_environment(&self, environment: &EnvironmentId) -> ProviderResult<DeploymentId>;

    /// Starts deploying only the given services.
    ///
    /// # Contract
    /// As [`deploy_environment`](Self::deploy_environment): one deployment per
    /// environment at a time, so `Conflict` while any deployment of the
    /// environment runs, whichever services it covers. `NotFound` if a service is
    /// not in the environment; `InvalidInput` for an empty list; `NotSupported`
    /// without the `deploy_services` capability.
    async fn deploy_services(
        &self,
        environment: &EnvironmentId,
        request: &DeployServices,
    ) -> ProviderResult<DeploymentId>;

    /// Starts stopping the environment.
    ///
    /// # Contract
    /// Stopping a stopped environment is harmless. `Conflict` if a deployment
    /// is in progress; `NotFound` if the environment does not exist.
    async fn stop_environment(&self, environment: &EnvironmentId) -> ProviderResult<DeploymentId>;

    /// The status of a deployment request. Poll it until
    /// [`DeploymentPhase::is_terminal`].
    ///
    /// # Contract
    /// Read-only. `NotFound` if the request is unknown. `Deployed` only once
    /// [`environment_status`](Self::environment_status) shows every service the
    /// request covers deployed and running its configured version (not out of date):
    /// the engine promotes nothing on a deployment that has not rolled out.
    async fn deployment_status(
        &self,
        environment: &EnvironmentId,
        deployment: &DeploymentId,
    ) -> ProviderResult<DeploymentStatus>;

    /// The variables of a scope. Secrets are listed without their value.
    ///
    /// # Contract
    /// Read-only. `NotFound` if the environment or service does not exist.
    /// Never returns a secret's value.
    async fn list_variables(&self, scope: &VariableScope) -> ProviderResult<Vec<Variable>>;

    /// Creates or updates a variable (upsert). Takes effect at the next deployment.
    ///
    /// # Contract
    /// Idempotent: setting the same value twice leaves one variable.
    /// `NotFound` if the scope does not exist; `Conflict` if a variable of the
    /// same name exists with the other secrecy (plain vs secret);
    /// `NotSupported` for service scope without the capability.
    async fn set_variable(&self, scope: &VariableScope, key: &str, value: &VariableValue) -> ProviderResult<()>;

    /// Deletes a variable.
    ///
    /// # Contract
    /// `NotFound` if the variable does not exist (so a retry after an
    /// `Indeterminate` deletion may see `NotFound`: treat it as done).
    async fn delete_variable(&self, scope: &VariableScope, key: &str) -> ProviderResult<()>;

    /// Points a container service at another image. Takes effect at the next deployment.
    ///
    /// # Contract
    /// Idempotent. `NotFound` if the environment or service does not exist;
    /// `InvalidInput` if the service does not run a container image.
    async fn set_service_image(
        &self,
        environment: &EnvironmentId,
        service: &ServiceId,
        image: &ImageRef,
    ) -> ProviderResult<()>;

    /// Clones an environment (services, variables, secrets) onto another cluster, not deployed.
    ///
    /// # Contract
    /// Not idempotent: `AlreadyExists` if an environment of that name exists in
    /// the project. `NotFound` for an unknown source or cluster. `NotSupported`
    /// without the `clone_environment` capability.
    async fn clone_environment(&self, source: &EnvironmentId, request: &CloneRequest) -> ProviderResult<EnvironmentId>;

    /// Sets how many instances of a service run (and, where given, its CPU and memory).
    ///
    /// # Contract
    /// Takes effect at the service's next deployment (as an image change does). Setting
    /// the scale a service has is harmless. `NotFound` for an unknown environment or
    /// service; `InvalidInput` for a scale the platform refuses (min above max). The
    /// default is `NotSupported`, as is any provider without the `scale_services` capability.
    async fn set_service_scale(
        &self,
        environment: &EnvironmentId,
        service: &ServiceId,
        scale: &ServiceScale,
    ) -> ProviderResult<()> {
        let _ = (environment, scale);
        Err(ProviderError::new(
            ErrorKind::NotSupported,
            self.name(),
            "set_service_scale",
            format!("{} cannot scale service {service}: scale it with the platform's own tools", self.name()),
        ))
    }

    /// Asks the platform to start a stopped cluster (Qovery: deploy it).
    ///
    /// # Contract
    /// Returns once the platform accepted the request; [`cluster_status`](Self::cluster_status)
    /// then shows `Deploying` until the cluster is `Running`. Starting a cluster that is
    /// running or starting is harmless. `NotFound` for an unknown cluster. A lost answer is
    /// `Indeterminate` (read the status to know). The default is `NotSupported`, as is
    /// any provider without the `start_cluster` capability.
    async fn start_cluster(&self, cluster: &ClusterId) -> ProviderResult<()> {
        Err(ProviderError::new(
            ErrorKind::NotSupported,
            self.name(),
            "start_cluster",
            format!("{} cannot start cluster {cluster}: start it with the platform's own tools", self.name()),
        ))
    }

    /// Whether services can be pointed at `image`'s registry, checked before a run
    /// changes anything (Qovery: a container registry of the organization must serve
    /// the host, or `set_service_image` fails after the database was promoted).
    ///
    /// # Contract
    /// Read-only. `Ok` when [`set_service_image`](Self::set_service_image) with this
    /// image would be accepted as far as the registry goes; `InvalidInput` naming what
    /// to set up otherwise. The default accepts every image.
    async fn image_source_ready(&self, image: &ImageRef) -> ProviderResult<()> {
        let _ = image;
        Ok(())
    }

    /// Deletes an environment (drill clean-up).
    ///
    /// # Contract
    /// `NotFound` if it does not exist (treat as done when cleaning up).
    /// `NotSupported` without the `clone_environment` capability.
    async fn delete_environment(&self, environment: &EnvironmentId) -> ProviderResult<()>;
}

cluster_provider_methods!(emit_forwarding!(Arc));
cluster_provider_methods!(emit_forwarding!(Box));
