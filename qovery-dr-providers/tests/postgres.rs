//! The PostgreSQL replication manager against real PostgreSQL 15 servers
//! started on 127.0.0.1: the conformance suite (physical and logical),
//! switchover under load, unplanned failover, sequences, lag and timelines.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/lock_fixtures.rs"]
mod lock_fixtures;

#[cfg(feature = "rds")]
#[path = "common/aurora_moto.rs"]
mod aurora_moto;

mod pg {
    pub mod cluster;
    mod conformance;
    mod dump;
    #[cfg(feature = "dump-store")]
    mod dump_store;
    mod engine;
    mod lock;
    mod lock_conformance;
    mod manager;
    #[cfg(feature = "rds")]
    mod rds;
    pub mod setup;
}
