//! OciRegistrySync against two real registries (Debian's docker-registry) on
//! 127.0.0.1: the conformance suite and the sync scenarios.
#![cfg(feature = "registry")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/reaper.rs"]
mod reaper;

mod reg {
    mod conformance;
    mod scenarios;
    pub mod server;
}
