//! The etcd failover lock and fenced journal against real etcd members on
//! 127.0.0.1 (one alone, and a three-member cluster for the failure test),
//! started by the testkit's `etcd_server`.
#![cfg(feature = "etcd")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/lock_fixtures.rs"]
mod lock_fixtures;

mod etcd {
    mod lock;
    mod lock_conformance;
}
