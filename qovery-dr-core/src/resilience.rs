//! Retries and timeouts: one [`RetryConfig`] and one [`TimeoutConfig`] shared by the
//! engine and every provider, so that a server's `Retry-After`, a backoff or a
//! deadline means the same thing everywhere.
//!
//! - A server's `Retry-After` is honoured up to [`RetryConfig::max_retry_after`]
//!   (5 minutes by default): a hostile or broken peer cannot park a failover for hours.
//! - An error that one layer already retried to exhaustion says so
//!   ([`ProviderError::retries_exhausted`](crate::ProviderError::retries_exhausted)), and
//!   [`RetryConfig::should_retry`] does not retry it again: attempts never multiply.
//! - [`RetryConfig::total_budget`] bounds a step's attempts *and* the backoffs between them.

use std::time::Duration;

use crate::error::ProviderError;

/// The cap on a server's `Retry-After` unless configured otherwise.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

fn default_max_retry_after() -> Duration {
    DEFAULT_MAX_RETRY_AFTER
}

/// How a failed attempt is retried: exponential backoff with jitter, honouring a
/// server's retry-after up to a cap, within a total budget.
///
/// Only retryable kinds are retried ([`ErrorKind::is_retryable`](crate::ErrorKind::is_retryable)),
/// and never an error another layer already retried to exhaustion.
///
/// ```
/// use qovery_dr_core::resilience::RetryConfig;
/// use std::time::Duration;
/// let p = RetryConfig::default();
/// let d = p.backoff(3, None, 0.5);
/// assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(4));
/// // A Retry-After of a day is capped.
/// assert_eq!(p.backoff(1, Some(Duration::from_secs(86_400)), 0.5), Duration::from_secs(300));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetryConfig {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt.
    #[serde(with = "crate::model::duration_serde")]
    pub initial_backoff: Duration,
    /// Upper bound of a computed backoff.
    #[serde(with = "crate::model::duration_serde")]
    pub max_backoff: Duration,
    /// Growth factor per attempt.
    pub multiplier: f64,
    /// Upper bound of a server's `Retry-After` (a longer one is waited this long).
    #[serde(with = "crate::model::duration_serde", default = "default_max_retry_after")]
    pub max_retry_after: Duration,
    /// The time all attempts and the waits between them may take (`None`: the step's
    /// timeout times `max_attempts`, for the engine; unbounded otherwise). A retry whose
    /// wait would end past it is not made.
    #[serde(with = "crate::model::duration_serde::option", default, skip_serializing_if = "Option::is_none")]
    pub total_budget: Option<Duration>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            total_budget: None,
        }
    }
}

impl RetryConfig {
    /// No retry.
    pub fn never() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The wait before attempt `attempt + 1` (attempts are 1-based), given the
    /// server's retry-after and a jitter draw in `[0, 1)`: "equal jitter", half fixed
    /// and half random, so waits never collapse to zero. A retry-after longer than the
    /// backoff wins, up to [`max_retry_after`](Self::max_retry_after).
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = self.multiplier.max(1.0).powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
        let base = self.initial_backoff.mul_f64(exp.min(1e6)).min(self.max_backoff);
        let jittered = base / 2 + (base / 2).mul_f64(jitter.clamp(0.0, 1.0));
        match retry_after.map(|r| r.min(self.max_retry_after)) {
            Some(r) if r > jittered => r,
            _ => jittered,
        }
    }

    /// Whether `error` on attempt `attempt` should be retried: a retryable kind, attempts
    /// left, and not already retried to exhaustion by another layer.
    pub fn should_retry(&self, attempt: u32, error: &ProviderError) -> bool {
        attempt < self.max_attempts && error.is_retryable() && error.retries_exhausted().is_none()
    }
}

/// Deadlines of one call to a remote API.
///
/// ```
/// use qovery_dr_core::resilience::TimeoutConfig;
/// let t = TimeoutConfig::default();
/// assert!(t.connect < t.request);
/// assert_eq!(t.max_body_bytes, 16 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimeoutConfig {
    /// Establishing the connection (TCP and TLS).
    #[serde(with = "crate::model::duration_serde")]
    pub connect: Duration,
    /// The whole request, answer body included: a peer that never ends its answer
    /// fails the call instead of hanging it.
    #[serde(with = "crate::model::duration_serde")]
    pub request: Duration,
    /// The largest answer body read (API answers; not image blobs, which stream).
    pub max_body_bytes: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self { connect: Duration::from_secs(10), request: Duration::from_secs(60), max_body_bytes: 16 * 1024 * 1024 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, ProviderError};

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after_up_to_the_cap() {
        let p = RetryConfig::default();
        assert_eq!(p.backoff(1, None, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(2, None, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(20, None, 1.0), Duration::from_secs(30));
        assert_eq!(p.backoff(u32::MAX, None, 1.0), Duration::from_secs(30));
        assert_eq!(p.backoff(1, None, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(1, Some(Duration::from_secs(9)), 0.3), Duration::from_secs(9));
        assert_eq!(p.backoff(1, Some(Duration::MAX), 0.3), DEFAULT_MAX_RETRY_AFTER);
    }

    #[test]
    fn only_retryable_kinds_are_retried_once_and_attempts_are_bounded() {
        let p = RetryConfig::default();
        let transient = ProviderError::new(ErrorKind::Transient, "p", "o", "m");
        let denied = ProviderError::new(ErrorKind::PermissionDenied, "p", "o", "m");
        assert!(p.should_retry(1, &transient));
        assert!(!p.should_retry(6, &transient));
        assert!(!p.should_retry(1, &denied));
        let exhausted = ProviderError::new(ErrorKind::Transient, "p", "o", "m").with_retries_exhausted(4);
        assert!(!p.should_retry(1, &exhausted), "another layer already retried it");
    }

    #[test]
    fn journals_written_before_the_cap_and_budget_still_read() {
        let old = r#"{"initial_backoff":"1s","max_attempts":6,"max_backoff":"30s","multiplier":2.0}"#;
        let p: RetryConfig = serde_json::from_str(old).unwrap();
        assert_eq!(p, RetryConfig::default());
    }
}
