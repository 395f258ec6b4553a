//! The etcd failover lock and fenced journal against real etcd members on
//! 127.0.0.1 (one alone, and a three-member cluster for the failure test).
#![cfg(feature = "etcd")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/reaper.rs"]
mod reaper;

mod etcd {
    mod lock;
    pub mod server;
}
