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
    /// `max_attempts` attempts in all (at least 1), the first retry after about
    /// `initial_backoff`; the other settings are the defaults.
    ///
    /// ```
    /// use qovery_dr_core::resilience::RetryConfig;
    /// use std::time::Duration;
    /// let c = RetryConfig::new(3, Duration::from_millis(200));
    /// assert_eq!((c.max_attempts, c.max_retry_after), (3, Duration::from_secs(300)));
    /// ```
    pub fn new(max_attempts: u32, initial_backoff: Duration) -> Self {
        Self { max_attempts: max_attempts.max(1), initial_backoff, ..Self::default() }
    }

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
        // Checked: a configured backoff near `Duration::MAX` must not overflow (and panic).
        let grown =
            Duration::try_from_secs_f64(self.initial_backoff.as_secs_f64() * exp.min(1e6)).unwrap_or(Duration::MAX);
        let base = grown.min(self.max_backoff);
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

/// A small deterministic generator for jitter (xorshift64*): the engine seeds it per
/// run so that replays of a run wait the same.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// Seeded from the clock: concurrent callers spread their retries.
    fn from_clock() -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        Self::new(u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// A draw in `[0, 1)`.
    pub(crate) fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The project's one retry loop: runs `attempt` (given its 1-based number) until it
/// succeeds, fails with an error that must not be repeated, or `config`'s attempts or
/// total budget run out. Every provider that retries and the
/// [`RetryLayer`](crate::provider::RetryLayer) go through it, so a backoff, a capped
/// `Retry-After` and the exhaustion mark mean the same thing everywhere.
///
/// An error is repeated when [`RetryConfig::should_retry`] says so (a retryable kind,
/// attempts left, not already retried to exhaustion by an inner layer) *and*
/// `may_repeat` allows it: a caller whose request may have been applied (a write whose
/// answer was lost) refuses there. The error that ends a loop after more than one
/// attempt, or because the next wait would overrun the budget, is marked
/// [`with_retries_exhausted`](ProviderError::with_retries_exhausted), so that an outer
/// layer (the engine) does not multiply the attempts.
///
/// ```
/// use qovery_dr_core::resilience::{retry, RetryConfig};
/// use qovery_dr_core::{ErrorKind, ProviderError};
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let config = RetryConfig { max_attempts: 3, initial_backoff: Duration::from_millis(10), ..RetryConfig::default() };
/// let e = retry(&config, |_| true, |n| async move {
///     Err::<(), _>(ProviderError::new(ErrorKind::Transient, "demo", "get", format!("attempt {n} failed")))
/// })
/// .await
/// .unwrap_err();
/// assert_eq!(e.retries_exhausted(), Some(3));
/// # }
/// ```
pub async fn retry<T, F, Fut>(
    config: &RetryConfig,
    may_repeat: impl Fn(&ProviderError) -> bool,
    mut attempt: F,
) -> crate::ProviderResult<T>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = crate::ProviderResult<T>>,
{
    let started = tokio::time::Instant::now();
    let mut jitter = Jitter::from_clock();
    let mut n = 0u32;
    loop {
        n = n.saturating_add(1);
        let e = match attempt(n).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !(e.is_retryable() && e.retries_exhausted().is_none() && may_repeat(&e)) {
            return Err(e);
        }
        let wait = config.backoff(n, e.retry_after(), jitter.next());
        let in_budget = config.total_budget.is_none_or(|budget| started.elapsed().saturating_add(wait) < budget);
        if n >= config.max_attempts || !in_budget {
            return Err(if n > 1 || !in_budget { e.with_retries_exhausted(n) } else { e });
        }
        tracing::debug!(attempt = n, kind = %e.kind(), error = %e, wait_ms = wait.as_millis() as u64, "retrying");
        tokio::time::sleep(wait).await;
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
        // A huge configured backoff does not overflow.
        let huge = RetryConfig { initial_backoff: Duration::MAX / 2, max_backoff: Duration::MAX, ..p };
        assert_eq!(huge.backoff(3, None, 1.0), Duration::MAX);
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
    fn jitter_is_in_range_and_reproducible() {
        let mut a = Jitter::new(42);
        let mut b = Jitter::new(42);
        for _ in 0..1000 {
            let x = a.next();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, b.next());
        }
    }

    fn failing(kind: ErrorKind) -> ProviderError {
        ProviderError::new(kind, "p", "o", "m")
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_at_success_at_a_refused_kind_and_when_the_caller_says_so() {
        let config = RetryConfig::default();
        let mut calls = 0;
        let ok = retry(
            &config,
            |_| true,
            |n| {
                calls += 1;
                async move { if n < 3 { Err(failing(ErrorKind::Transient)) } else { Ok(n) } }
            },
        )
        .await;
        assert_eq!(ok.unwrap(), 3);
        assert_eq!(calls, 3);

        let mut calls = 0;
        let e = retry(
            &config,
            |_| true,
            |_| {
                calls += 1;
                async { Err::<(), _>(failing(ErrorKind::PermissionDenied)) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!((calls, e.retries_exhausted()), (1, None), "a refused kind is not repeated nor marked");

        let mut calls = 0;
        let e = retry(
            &config,
            |e| e.kind() == ErrorKind::RateLimited,
            |_| {
                calls += 1;
                async { Err::<(), _>(failing(ErrorKind::Transient)) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!((calls, e.retries_exhausted()), (1, None), "the caller refused a repeat (a write)");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_marks_exhaustion_and_never_repeats_an_exhausted_error() {
        let config = RetryConfig { max_attempts: 4, ..RetryConfig::default() };
        let mut calls = 0;
        let e = retry(
            &config,
            |_| true,
            |_| {
                calls += 1;
                async { Err::<(), _>(failing(ErrorKind::Timeout)) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!((calls, e.retries_exhausted()), (4, Some(4)));

        // An inner layer's exhausted error goes straight through: attempts do not multiply.
        let mut calls = 0;
        let e = retry(
            &config,
            |_| true,
            |_| {
                calls += 1;
                async { Err::<(), _>(failing(ErrorKind::Timeout).with_retries_exhausted(5)) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!((calls, e.retries_exhausted()), (1, Some(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_caps_a_hostile_retry_after_and_keeps_inside_the_budget() {
        let config =
            RetryConfig { max_attempts: 10, total_budget: Some(Duration::from_secs(600)), ..RetryConfig::default() };
        let start = tokio::time::Instant::now();
        let mut calls = 0;
        let e = retry(
            &config,
            |_| true,
            |_| {
                calls += 1;
                async { Err::<(), _>(failing(ErrorKind::RateLimited).with_retry_after(Duration::MAX)) }
            },
        )
        .await
        .unwrap_err();
        // Waits of 5 minutes (the cap): two fit in 10 minutes, the third would not.
        assert_eq!(calls, 2);
        assert_eq!(start.elapsed(), DEFAULT_MAX_RETRY_AFTER);
        assert_eq!(e.retries_exhausted(), Some(2));
    }

    #[test]
    fn journals_written_before_the_cap_and_budget_still_read() {
        let old = r#"{"initial_backoff":"1s","max_attempts":6,"max_backoff":"30s","multiplier":2.0}"#;
        let p: RetryConfig = serde_json::from_str(old).unwrap();
        assert_eq!(p, RetryConfig::default());
    }
}
