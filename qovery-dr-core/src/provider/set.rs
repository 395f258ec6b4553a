//! The providers a run drives, as one value.

use std::sync::Arc;

use super::layer::{Layer, Layered, ReadOnlyLayer};
use super::{ClusterProvider, DnsSwitcher, RegistrySync, ReplicationManager};
use crate::clock::Clock;

/// The providers a run drives.
#[derive(Debug, Clone)]
pub struct Providers {
    /// The platform (Qovery).
    pub cluster: Arc<dyn ClusterProvider>,
    /// DNS.
    pub dns: Arc<dyn DnsSwitcher>,
    /// The database pair.
    pub replication: Arc<dyn ReplicationManager>,
    /// Primary registry → DR registry.
    pub registry: Arc<dyn RegistrySync>,
    /// DR registry → primary registry, for failback (images are not synced back without it).
    pub registry_back: Option<Arc<dyn RegistrySync>>,
    /// The database pair the other way round, for failback: the DR database as the primary
    /// and the original primary as its standby (once re-protected). `None` when
    /// `replication` serves both directions (a manager that follows the roles, like the
    /// testkit's); a manager bound to fixed endpoints (PostgreSQL's) needs it, or a
    /// failback would fence and promote the wrong servers.
    pub replication_back: Option<Arc<dyn ReplicationManager>>,
    /// The clock these providers stamp time with (heartbeats), when it is not the
    /// system's: the testkit's simulated world sets its own. An engine or a readiness
    /// evaluation over these providers uses it unless told otherwise, and an engine
    /// given a clock that disagrees with it refuses to run (see [`EngineError::ClockMismatch`](crate::engine::EngineError::ClockMismatch)),
    /// since every data-loss figure compares the two. `None` for real providers.
    pub clock: Option<Arc<dyn Clock>>,
    /// Asks each authoritative server of a record what it answers: the DNS step is done
    /// only when every one serves the new target (a provider's own "in sync" is not
    /// enough). `None`, or `NotSupported` for a record, leaves that record verified by
    /// the provider's change status alone, and the step's output says so.
    pub resolver: Option<Arc<dyn crate::provider::AuthoritativeResolver>>,
}

impl Providers {
    /// The same providers behind read-only guards (dry runs).
    pub fn read_only(&self) -> Providers {
        self.with_layer(ReadOnlyLayer)
    }

    /// The same providers, each behind `layer` (the clock and the resolver are kept as
    /// they are): retries, timeouts, rate limits, or the testkit's fault injection and
    /// recording, for a whole run.
    pub fn with_layer<L: Layer + Clone + 'static>(&self, layer: L) -> Providers {
        fn wrap<P: ?Sized, L: Layer + Clone>(p: &Arc<P>, layer: &L) -> Layered<Arc<P>, L> {
            Layered::new(Arc::clone(p), layer.clone())
        }
        Providers {
            cluster: Arc::new(wrap(&self.cluster, &layer)),
            dns: Arc::new(wrap(&self.dns, &layer)),
            replication: Arc::new(wrap(&self.replication, &layer)),
            registry: Arc::new(wrap(&self.registry, &layer)),
            registry_back: self.registry_back.as_ref().map(|r| Arc::new(wrap(r, &layer)) as Arc<dyn RegistrySync>),
            replication_back: self
                .replication_back
                .as_ref()
                .map(|r| Arc::new(wrap(r, &layer)) as Arc<dyn ReplicationManager>),
            clock: self.clock.clone(),
            resolver: self.resolver.clone(),
        }
    }
}

impl Providers {
    /// The providers a failback drives: [`replication_back`](Self::replication_back)
    /// (when set) is the replication manager.
    pub fn for_failback(&self) -> Providers {
        let mut p = self.clone();
        if let Some(back) = &self.replication_back {
            p.replication = Arc::clone(back);
        }
        p
    }
}
