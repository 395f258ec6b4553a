//! DNS switchers against real peers: RFC 2136 against Knot DNS on 127.0.0.1
//! (TSIG-signed updates; two servers for propagation).
#![cfg(feature = "rfc2136")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/reaper.rs"]
mod reaper;

mod dns {
    pub mod knot;
    mod rfc2136;
}
