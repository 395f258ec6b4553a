//! The four provider traits and the types they exchange.
//!
//! Each trait is object-safe, `Send + Sync + Debug + 'static`, and implemented
//! for `Arc<T>` and `Box<T>`, so `Arc<dyn ClusterProvider>` is itself a
//! `ClusterProvider`. Every method documents its contract (idempotency, error
//! kinds, visible state); the testkit's conformance suites check them.

#[macro_use]
mod methods;
mod cluster;
mod dns;
mod dns_router;
mod layer;
mod propagation;
mod registry;
mod replication;
mod replication_router;
mod set;

pub use cluster::{
    CloneRequest, ClusterCapabilities, ClusterProvider, ClusterState, ClusterStatus, DeployServices, DeploymentPhase,
    DeploymentStatus, EnvironmentStatus, EnvironmentSummary, ServiceInfo, ServiceKind, ServiceStatus, Variable,
    VariableScope, VariableValue,
};
pub use dns::{
    ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, GuardDecision, SwitchRequest, SwitchStrategy,
    TargetHealth,
};
pub use dns_router::DnsRouter;
pub use layer::{CallFuture, CallInfo, Layer, Layered, Next, ReadOnly, ReadOnlyLayer, RetryLayer, TimeoutLayer};
pub use propagation::{
    AuthoritativeResolver, PropagationOptions, PropagationReport, ServerPropagation, verify_propagation,
};
pub use registry::{
    CopyReport, ImageCopy, ImageParity, RegistryCapabilities, RegistryLocation, RegistryMapping, RegistrySync,
};
pub use replication::{
    BackupFailure, BackupInfo, CatchUp, FenceKind, FenceOutcome, FixupReport, Heartbeat, LinkState, Node,
    PromoteOutcome, PromotionState, ReplicationCapabilities, ReplicationManager, ReplicationMode, ReplicationStatus,
    ReprotectReport, SlotInfo, Writability,
};
pub use replication_router::ReplicationRouter;
pub use set::Providers;
