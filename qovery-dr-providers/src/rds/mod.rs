//! Amazon RDS for PostgreSQL (feature `rds`, on the official `aws-sdk-rds` with the
//! standard credential chain): [`RdsReplicationManager`] for an RDS primary and its
//! read replica, typically in another region.
//!
//! The RDS API says what SQL cannot (the replica's state, whether it is still a replica,
//! its `read replication` status) and does what SQL may not (`PromoteReadReplica`,
//! parameter groups); SQL gives the facts the API does not (LSNs, the heartbeat-based lag)
//! and carries the logins fence. Every API error is mapped to an `ErrorKind`; a lost
//! answer to a mutation is `Indeterminate`.
//!
//! Aurora: two instances of one cluster (the cross-AZ level), the reader made the writer
//! with `FailoverDBCluster` ([`RdsConfig::aurora`]).
//!
//! Not done here: Aurora global databases (`FailoverGlobalCluster`, across regions),
//! re-protection of a read replica (RDS cannot turn an instance into a replica of another).

mod api;
mod aurora;
mod config;
mod fence;
mod manager;

pub use config::{RdsConfig, RdsFence, RdsInstance, RdsTopology};
pub use manager::RdsReplicationManager;
