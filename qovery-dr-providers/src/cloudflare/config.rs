//! Cloudflare connection settings.

use std::time::Duration;

use qovery_dr_core::SecretString;
use qovery_dr_core::resilience::TimeoutConfig;

use crate::RateLimiter;

/// The zone, the API token and the limits. `Debug` never shows the token.
#[derive(Debug, Clone)]
pub struct CloudflareConfig {
    pub(crate) zone_id: String,
    pub(crate) token: SecretString,
    pub(crate) api_base: String,
    pub(crate) limiter: RateLimiter,
    pub(crate) timeouts: TimeoutConfig,
    pub(crate) account_id: Option<String>,
}

impl CloudflareConfig {
    /// Records of zone `zone_id`, with an API token allowed to edit its DNS.
    pub fn new(zone_id: impl Into<String>, token: SecretString) -> Self {
        Self {
            zone_id: zone_id.into(),
            token,
            api_base: "https://api.cloudflare.com/client/v4".to_owned(),
            limiter: RateLimiter::new(1200, Duration::from_secs(300)),
            timeouts: TimeoutConfig { request: Duration::from_secs(30), ..TimeoutConfig::default() },
            account_id: None,
        }
    }

    /// Another API base (a test fake), e.g. `http://127.0.0.1:8080/client/v4`.
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Client-side pacing: at most `requests` per `window` (default Cloudflare's 1,200 per 5 minutes).
    pub fn rate_limit(mut self, requests: u32, window: Duration) -> Self {
        self.limiter = RateLimiter::new(requests, window);
        self
    }

    /// Shares one budget between clients of the same token (Cloudflare counts per token).
    pub fn rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// Enables load balancers: records that are the hostname of a zone load balancer are
    /// switched by pool ([`SwitchStrategy::LoadBalancerPool`]), and pool ids get health from
    /// Cloudflare's monitors. Pools live in the account `account_id`; the token then also
    /// needs Load Balancing edit permission.
    ///
    /// [`SwitchStrategy::LoadBalancerPool`]: qovery_dr_core::provider::SwitchStrategy::LoadBalancerPool
    pub fn load_balancers(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// Deadlines and the largest answer read (default: 30 s per request, 10 s to connect,
    /// 16 MiB).
    pub fn timeouts(mut self, timeouts: TimeoutConfig) -> Self {
        self.timeouts = timeouts;
        self
    }
}
