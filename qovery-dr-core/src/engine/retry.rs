//! Retry policy: exponential backoff with jitter, honouring retry-after.

use std::time::Duration;

use crate::error::ProviderError;

/// How a step retries a failed attempt.
///
/// Only retryable kinds are retried ([`ErrorKind::is_retryable`](crate::ErrorKind::is_retryable));
/// a provider's retry-after wins over the computed backoff when longer.
///
/// ```
/// use qovery_dr_core::engine::RetryPolicy;
/// use std::time::Duration;
/// let p = RetryPolicy::default();
/// let d = p.backoff(3, None, 0.5);
/// assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt.
    #[serde(with = "crate::model::duration_serde")]
    pub initial_backoff: Duration,
    /// Upper bound of a backoff.
    #[serde(with = "crate::model::duration_serde")]
    pub max_backoff: Duration,
    /// Growth factor per attempt.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// No retry.
    pub fn never() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The wait before attempt `attempt + 1` (attempts are 1-based), given the
    /// provider's retry-after and a jitter draw in `[0, 1)`: "equal jitter",
    /// half fixed and half random, so waits never collapse to zero.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = self.multiplier.max(1.0).powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
        let base = self.initial_backoff.mul_f64(exp.min(1e6)).min(self.max_backoff);
        let jittered = base / 2 + (base / 2).mul_f64(jitter.clamp(0.0, 1.0));
        match retry_after {
            Some(r) if r > jittered => r,
            _ => jittered,
        }
    }

    /// Whether `error` on attempt `attempt` should be retried.
    pub fn should_retry(&self, attempt: u32, error: &ProviderError) -> bool {
        attempt < self.max_attempts && error.is_retryable()
    }
}

/// A small deterministic generator for jitter (xorshift64*), seeded per run so
/// replays of a run wait the same.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, ProviderError};

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, None, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(2, None, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(20, None, 1.0), Duration::from_secs(30));
        assert_eq!(p.backoff(1, None, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(1, Some(Duration::from_secs(9)), 0.3), Duration::from_secs(9));
    }

    #[test]
    fn only_retryable_kinds_are_retried_and_attempts_are_bounded() {
        let p = RetryPolicy::default();
        let transient = ProviderError::new(ErrorKind::Transient, "p", "o", "m");
        let denied = ProviderError::new(ErrorKind::PermissionDenied, "p", "o", "m");
        assert!(p.should_retry(1, &transient));
        assert!(!p.should_retry(6, &transient));
        assert!(!p.should_retry(1, &denied));
    }

    #[test]
    fn jitter_is_in_range_and_reproducible() {
        let mut a = Jitter::new(42);
        let mut b = Jitter::new(42);
        for _ in 0..1000 {
            let x = a.next();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, b.next());
        }
    }
}
