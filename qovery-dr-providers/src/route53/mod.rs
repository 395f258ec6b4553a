//! Route53 on the official AWS SDK (`aws-sdk-route53` with `aws-config`): the
//! standard credential chain (environment, profiles, SSO, web identity, IMDS),
//! SigV4 signing by the SDK. Retries are the switcher's, not the SDK's (whose retry is
//! disabled): `Throttling` and `PriorRequestNotComplete` always, other transient
//! failures of reads; each attempt takes a token of the rate limiter, and an error
//! after several attempts is marked so that the engine does not retry it again.
//!
//! [`Route53DnsSwitcher`] does guarded record swaps, weighted shifts and failover routing
//! (see below). For swaps and shifts the guard is enforced by
//! Route53 itself: the change batch DELETEs the record set exactly as read
//! (values and TTL) and CREATEs the new one, atomically; if anyone changed the
//! record in between, Route53 rejects the whole batch (`InvalidChangeBatch`),
//! the switcher re-reads, and reports a `Conflict` naming both values unless
//! the record already holds the new one (a retried switch).
//!
//! Failover routing (a PRIMARY and a SECONDARY record set, the primary watched by a
//! health check) is switched by setting `Inverted=true` on the primary's health check,
//! which makes Route53 count a healthy primary as unhealthy and answer with the
//! secondary. (`Disabled=true` would not move traffic: a disabled check counts as
//! healthy.) The update carries the `HealthCheckVersion` read just before, so a check
//! edited by someone else in between is re-read, never overwritten blindly. Failing back
//! to a primary whose checkers report it failing is refused.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use qovery_dr_providers::route53::{Route53Config, Route53DnsSwitcher};
//!
//! // Credentials and region from the standard AWS chain.
//! let switcher = Route53DnsSwitcher::from_env(Route53Config::new("Z0123456789ABCDEFGHIJ")).await;
//! # let _ = switcher; Ok(()) }
//! ```

mod config;
mod epoch;
mod error;
mod failover;
mod switcher;

pub use config::Route53Config;
pub use switcher::Route53DnsSwitcher;
