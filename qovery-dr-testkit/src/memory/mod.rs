//! In-memory implementations of the four provider traits over a [`World`](crate::World).

mod cluster;
mod dns;
mod registry;
mod replication;

pub use cluster::InMemoryCluster;
pub use dns::InMemoryDns;
pub use registry::InMemoryRegistry;
pub use replication::InMemoryReplication;
