//! RFC 2136 dynamic DNS updates for self-hosted authoritative DNS (BIND, Knot,
//! PowerDNS; tested on Knot only), signed with TSIG, on the hickory DNS library.
//!
//! [`Rfc2136DnsSwitcher`] implements `DnsSwitcher` with a record swap whose
//! ownership guard is enforced by the server itself: the update carries a
//! prerequisite that the record set is exactly the expected one (RFC 2136
//! §2.4.2), so a record changed behind the SDK's back fails with NXRRSET and
//! is never overwritten. The switcher then re-reads the record to tell a
//! retried switch (already at the new value: success) from a foreign change
//! (a `Conflict` naming both values).
//!
//! A change is identified by the zone's SOA serial after the update;
//! `change_status` is `InSync` once every configured nameserver serves that
//! serial or a later one. [`DnsAuthoritativeResolver`] asks each authoritative
//! server directly, for `verify_propagation`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use qovery_dr_providers::rfc2136::{Rfc2136Config, Rfc2136DnsSwitcher, TsigAlgorithm, TsigKey};
//! use qovery_dr_providers::core::SecretString;
//!
//! let switcher = Rfc2136DnsSwitcher::new(
//!     Rfc2136Config::new("192.0.2.53:53".parse()?, "example.com")
//!         .with_tsig(TsigKey::new("qdr-key", TsigAlgorithm::HmacSha256, SecretString::new(std::env::var("TSIG_SECRET")?)))
//!         .nameservers(vec!["192.0.2.53:53".parse()?, "198.51.100.53:53".parse()?]),
//! )?;
//! # let _ = switcher; Ok(()) }
//! ```

mod config;
mod resolver;
mod switcher;
mod wire;

pub use config::{Rfc2136Config, TsigAlgorithm, TsigKey};
pub(crate) use resolver::DiscoveringResolver;
pub use resolver::DnsAuthoritativeResolver;
pub use switcher::Rfc2136DnsSwitcher;
