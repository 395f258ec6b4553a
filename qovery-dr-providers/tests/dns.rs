//! DNS switchers against real peers: RFC 2136 against Knot DNS on 127.0.0.1
//! (TSIG-signed updates; two servers for propagation), Route53 against moto
//! (signature verification on), Cloudflare against the testkit's stateful fake.
#![cfg(any(feature = "rfc2136", feature = "route53", feature = "cloudflare"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "cloudflare")]
#[path = "common/prism.rs"]
mod prism;
#[path = "common/reaper.rs"]
mod reaper;

mod dns {
    #[cfg(feature = "cloudflare")]
    mod cloudflare;
    #[cfg(feature = "cloudflare")]
    mod cloudflare_contract;
    #[cfg(feature = "cloudflare")]
    mod cloudflare_lb;
    #[cfg(feature = "rfc2136")]
    pub mod knot;
    #[cfg(feature = "route53")]
    pub mod moto;
    #[cfg(feature = "rfc2136")]
    mod rfc2136;
    #[cfg(feature = "route53")]
    mod route53;
    #[cfg(feature = "route53")]
    mod route53_failover;
}
