//! Cloudflare DNS on the v4 REST API (reqwest and typed serde models; the
//! `cloudflare` crate lacks DNS PATCH).
//!
//! [`CloudflareDnsSwitcher`] swaps a DNS record's content by PATCH after
//! checking that the record holds the expected value, then re-reads it to
//! verify. The API has no conditional write, so a foreign write between the read
//! and the PATCH is overwritten unseen; one found on the re-read is a `Conflict`.
//! Requests are paced client-side under Cloudflare's limit (at most 1,200 in any
//! 5 minutes per token); after a
//! 429 every call fails fast with `RateLimited` until `retry-after` has passed,
//! since Cloudflare blocks the token for that long anyway.
//!
//! With [`CloudflareConfig::with_load_balancers`], a record that is a load balancer's
//! hostname is switched with `SwitchStrategy::LoadBalancerPool`: targets are pool
//! ids, the current target is the first enabled pool of `default_pools`, and a
//! switch enables the new pool if needed, puts it first, moves `fallback_pool` off
//! the old pool, then re-reads to verify. [`CloudflareDnsSwitcher::pool_health`]
//! and [`CloudflareDnsSwitcher::set_pool_enabled`] are there for runbooks that
//! need them directly.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use qovery_dr_providers::cloudflare::{CloudflareConfig, CloudflareDnsSwitcher};
//! use qovery_dr_providers::core::SecretString;
//!
//! let token = SecretString::new(std::env::var("CLOUDFLARE_API_TOKEN")?);
//! let switcher = CloudflareDnsSwitcher::new(CloudflareConfig::new("023e105f4ecef8ad9ca31a8372d0c353", token))?;
//! # let _ = switcher; Ok(()) }
//! ```

mod client;
mod config;
mod load_balancer;
mod models;
mod switcher;

pub use config::CloudflareConfig;
pub use switcher::CloudflareDnsSwitcher;

#[cfg(fuzzing)]
pub(crate) use models::fuzz_envelopes;
