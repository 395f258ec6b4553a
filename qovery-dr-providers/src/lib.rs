//! # qovery-dr-providers
//!
//! Real implementations of the `qovery-dr-core` provider traits, one module
//! and one cargo feature each:
//!
//! | feature      | implements           | status        |
//! |--------------|----------------------|---------------|
//! | `qovery`     | `ClusterProvider`    | Qovery REST API, checked against the official OpenAPI spec |
//! | `route53`    | `DnsSwitcher`        | official AWS SDK: guarded record swaps, weighted shifts, failover routing, change sync, health checks |
//! | `cloudflare` | `DnsSwitcher`        | v4 API: guarded DNS record swaps and load-balancer pools, client-side pacing, 429 block |
//! | `etcd`       | `FailoverLock`, `Journal` | lease-backed lock and a journal fenced by the lock's create revision (needs `protoc` to build) |
//! | `postgres`   | `ReplicationManager` | physical, logical and dump strategies on tokio-postgres (`postgres-tls` adds rustls) |
//! | `registry`   | `RegistrySync`       | OCI distribution API: parity by digest, streaming copies |
//! | `rfc2136`    | `DnsSwitcher`, `AuthoritativeResolver` | TSIG-signed dynamic updates (tested on Knot; BIND and PowerDNS expected to work); direct queries to each authoritative server |
//! | `webhook`    | monitor `Notifier`   | generic JSON, Slack, PagerDuty Events v2 |
//!
//! What each is tested against (see the README): real peers for `postgres` and `rds`'s
//! SQL side (PostgreSQL 15), `registry` (docker-registry), `rfc2136` (Knot), `etcd`
//! (etcd), `route53`, `rds` and `dump-store` (moto); fakes for `qovery` (a stateful fake,
//! and its requests through Prism against the official OpenAPI spec), `cloudflare` (a
//! stateful fake, and Prism against a derived copy of the official schema) and `webhook`
//! (a local HTTP receiver); the `rds` states moto cannot produce on a scripted fake.

pub use qovery_dr_core as core;

pub mod connect;

#[cfg(any(feature = "route53", feature = "rds"))]
mod aws_error;
#[cfg(any(feature = "webhook", feature = "qovery", feature = "registry", feature = "cloudflare"))]
mod http;
#[cfg(any(feature = "webhook", feature = "qovery", feature = "registry", feature = "cloudflare", feature = "route53"))]
mod rate_limit;
#[cfg(any(
    feature = "webhook",
    feature = "qovery",
    feature = "registry",
    feature = "cloudflare",
    feature = "route53"
))]
pub use rate_limit::RateLimiter;

#[cfg(feature = "webhook")]
pub mod webhook;

#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(feature = "qovery")]
pub mod qovery;

#[cfg(feature = "registry")]
pub mod registry;

#[cfg(feature = "rfc2136")]
pub mod rfc2136;

#[cfg(feature = "rds")]
pub mod rds;
#[cfg(feature = "route53")]
pub mod route53;

#[cfg(feature = "cloudflare")]
pub mod cloudflare;

#[cfg(feature = "etcd")]
pub mod etcd;

/// Entry points for `cargo fuzz` (built only with `--cfg fuzzing`): the decoders of
/// untrusted input, called the way the providers call them.
#[cfg(all(fuzzing, feature = "qovery", feature = "cloudflare", feature = "registry"))]
#[doc(hidden)]
pub mod fuzz {
    /// Qovery API bodies.
    pub fn qovery_bodies(bytes: &[u8]) {
        crate::qovery::fuzz_bodies(bytes);
    }
    /// Cloudflare envelopes.
    pub fn cloudflare_envelopes(bytes: &[u8]) {
        crate::cloudflare::fuzz_envelopes(bytes);
    }
    /// OCI manifests.
    pub fn oci_manifest(bytes: &[u8]) {
        crate::registry::fuzz_manifest(bytes);
    }
}
