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

    /// Records of zone `zone_id`, with the token in `CLOUDFLARE_API_TOKEN` and, when set,
    /// the API base in `CLOUDFLARE_API_URL`. `InvalidConfig` naming the variable when the
    /// token is missing.
    pub fn from_env(zone_id: impl Into<String>) -> qovery_dr_core::ProviderResult<Self> {
        let token = std::env::var("CLOUDFLARE_API_TOKEN").map_err(|_| {
            qovery_dr_core::ProviderError::new(
                qovery_dr_core::ErrorKind::InvalidConfig,
                super::client::PROVIDER,
                "configure",
                "CLOUDFLARE_API_TOKEN is not set: export an API token allowed to edit the zone's DNS",
            )
        })?;
        let config = Self::new(zone_id, SecretString::new(token));
        Ok(match std::env::var("CLOUDFLARE_API_URL") {
            Ok(url) => config.with_api_base(url),
            Err(_) => config,
        })
    }

    /// The switcher ([`CloudflareDnsSwitcher::new`](super::CloudflareDnsSwitcher::new)).
    pub fn build(self) -> qovery_dr_core::ProviderResult<super::CloudflareDnsSwitcher> {
        super::CloudflareDnsSwitcher::new(self)
    }

    /// Another API base (a test fake), e.g. `http://127.0.0.1:8080/client/v4`.
    pub fn with_api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Client-side pacing: at most `requests` per `window` (default Cloudflare's 1,200 per 5 minutes).
    pub fn with_rate_limit(mut self, requests: u32, window: Duration) -> Self {
        self.limiter = RateLimiter::new(requests, window);
        self
    }

    /// Shares one budget between clients of the same token (Cloudflare counts per token).
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// Enables load balancers: records that are the hostname of a zone load balancer are
    /// switched by pool ([`SwitchStrategy::LoadBalancerPool`]), and pool ids get health from
    /// Cloudflare's monitors. Pools live in the account `account_id`; the token then also
    /// needs Load Balancing edit permission.
    ///
    /// [`SwitchStrategy::LoadBalancerPool`]: qovery_dr_core::provider::SwitchStrategy::LoadBalancerPool
    pub fn with_load_balancers(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// Deadlines and the largest answer read (default: 30 s per request, 10 s to connect,
    /// 16 MiB).
    pub fn with_timeouts(mut self, timeouts: TimeoutConfig) -> Self {
        self.timeouts = timeouts;
        self
    }
}
