//! What the Route53 switcher needs beyond the AWS SDK configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use qovery_dr_core::DnsTarget;
use qovery_dr_core::resilience::RetryConfig;

use crate::RateLimiter;

/// The hosted zone, and optional overrides for tests and tuning.
#[derive(Debug, Clone)]
pub struct Route53Config {
    pub(crate) hosted_zone_id: String,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) retry: RetryConfig,
    pub(crate) health_checks: BTreeMap<DnsTarget, String>,
    pub(crate) limiter: RateLimiter,
}

impl Route53Config {
    /// Records of this hosted zone (e.g. `Z0123456789ABCDEFGHIJ`; a `/hostedzone/` prefix is accepted).
    pub fn new(hosted_zone_id: impl Into<String>) -> Self {
        let id: String = hosted_zone_id.into();
        Self {
            hosted_zone_id: id.trim_start_matches("/hostedzone/").to_owned(),
            endpoint_url: None,
            retry: RetryConfig::new(5, Duration::from_millis(500)),
            health_checks: BTreeMap::new(),
            // Route53 allows five API requests per second per account.
            limiter: RateLimiter::new(5, Duration::from_secs(1)),
        }
    }

    /// The switcher, with the AWS configuration from the standard chain
    /// ([`Route53DnsSwitcher::from_env`](super::Route53DnsSwitcher::from_env)).
    pub async fn build(self) -> super::Route53DnsSwitcher {
        super::Route53DnsSwitcher::from_env(self).await
    }

    /// Sends requests to this endpoint instead of AWS (moto, LocalStack, a test fake).
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// How requests are retried (default: 5 attempts, the first retry after about
    /// 500 ms): throttling always (Route53 did not apply the request), other transient
    /// failures only for reads. The AWS SDK's own retries are off: every attempt takes a
    /// token from the rate limiter.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The client-side request budget (default Route53's 5 requests per second per account;
    /// share one limiter between the switchers of one account).
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// The Route53 health check that watches `target`, for `target_health`.
    pub fn with_health_check(mut self, target: impl Into<DnsTarget>, health_check_id: impl Into<String>) -> Self {
        self.health_checks.insert(target.into(), health_check_id.into());
        self
    }
}
