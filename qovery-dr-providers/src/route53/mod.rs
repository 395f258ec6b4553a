//! Route53 on the official AWS SDK (`aws-sdk-route53` with `aws-config`): the
//! standard credential chain (environment, profiles, SSO, web identity, IMDS),
//! SigV4 signing by the SDK, retries of `Throttling` and
//! `PriorRequestNotComplete` by the SDK's standard retry strategy.
//!
//! [`Route53DnsSwitcher`] does guarded record swaps and weighted shifts. The guard is enforced by
//! Route53 itself: the change batch DELETEs the record set exactly as read
//! (values and TTL) and CREATEs the new one, atomically; if anyone changed the
//! record in between, Route53 rejects the whole batch (`InvalidChangeBatch`),
//! the switcher re-reads, and reports a `Conflict` naming both values unless
//! the record already holds the new one (a retried switch).
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
mod error;
mod switcher;

pub use config::Route53Config;
pub use switcher::Route53DnsSwitcher;
