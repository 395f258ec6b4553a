//! [`RateLimiter`]: the client-side request budget every HTTP provider spends
//! before each request, so a run stays under the API's limit instead of
//! discovering it through 429s.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult};
use tokio::time::Instant;

#[derive(Debug)]
struct Bucket {
    /// Requests that may start now.
    tokens: f64,
    last: Instant,
    /// After a 429 from an API that blocks the caller: nothing before this instant.
    blocked_until: Option<Instant>,
}

/// A token bucket: at most `requests` per `window`, in bursts of at most `burst`.
/// Clones share one budget: give the same limiter to every client of one API
/// (one token, one account) and together they stay under its limit.
///
/// After an API said 429 with a block (Cloudflare blocks a token for minutes),
/// [`block_for`](Self::block_for) makes every caller fail fast with `RateLimited`
/// until then, since a request during the block only extends it.
///
/// ```
/// use std::time::Duration;
/// use qovery_dr_providers::RateLimiter;
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let limiter = RateLimiter::new(10, Duration::from_secs(1)).with_burst(1);
/// let start = tokio::time::Instant::now();
/// for _ in 0..11 {
///     limiter.acquire("demo", "list").await.unwrap();
/// }
/// assert!(start.elapsed() >= Duration::from_secs(1)); // 11 starts at 10/s, one at a time
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RateLimiter {
    requests: u32,
    window: Duration,
    burst: u32,
    bucket: Arc<Mutex<Bucket>>,
}

impl RateLimiter {
    /// At most `requests` per `window` (at least one), bursts up to `requests`.
    pub fn new(requests: u32, window: Duration) -> Self {
        let requests = requests.max(1);
        Self {
            requests,
            window: window.max(Duration::from_millis(1)),
            burst: requests,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: f64::from(requests),
                last: Instant::now(),
                blocked_until: None,
            })),
        }
    }

    /// No practical limit (for APIs without one, e.g. a self-hosted registry).
    pub fn unlimited() -> Self {
        Self::new(u32::MAX, Duration::from_secs(1))
    }

    /// Bursts of at most `burst` requests (at least one); the bucket starts full.
    pub fn with_burst(self, burst: u32) -> Self {
        let burst = burst.clamp(1, self.requests);
        if let Ok(mut b) = self.bucket.lock() {
            b.tokens = f64::from(burst);
        }
        Self { burst, ..self }
    }

    /// The configured rate, as `(requests, window)`.
    pub fn rate(&self) -> (u32, Duration) {
        (self.requests, self.window)
    }

    /// Waits for a request slot; `RateLimited` (with the time left) while blocked after a 429.
    pub async fn acquire(&self, provider: &str, operation: &str) -> ProviderResult<()> {
        loop {
            let wait = {
                let mut b = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                if let Some(until) = b.blocked_until {
                    if now < until {
                        let left = until - now;
                        return Err(ProviderError::new(
                            ErrorKind::RateLimited,
                            provider,
                            operation,
                            format!(
                                "the API rate-limited us; not sending anything for another {}s (a request now \
                                 would extend the block)",
                                left.as_secs().max(1)
                            ),
                        )
                        .with_retry_after(left));
                    }
                    b.blocked_until = None;
                }
                let rate = f64::from(self.requests) / self.window.as_secs_f64();
                b.tokens = (b.tokens + (now - b.last).as_secs_f64() * rate).min(f64::from(self.burst));
                b.last = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    return Ok(());
                }
                Duration::from_secs_f64((1.0 - b.tokens) / rate)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Blocks every caller for `duration` (after a 429 that blocks the credential).
    pub fn block_for(&self, duration: Duration) {
        // A block longer than a day is a broken peer's number: a day it is (never an overflow).
        let now = Instant::now();
        let until = now.checked_add(duration.min(Duration::from_secs(24 * 3600))).unwrap_or(now);
        let mut b = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
    }
}

/// A rate limiter is also a [`Layer`](qovery_dr_core::provider::Layer): every call of
/// the provider it wraps (every attempt, when a retry layer is outside it) first takes
/// a token. For providers that do not pace themselves (a custom one, or the simulated
/// world in a test of pacing).
///
/// ```
/// use std::time::Duration;
/// use qovery_dr_core::provider::{ClusterProvider, Layered};
/// use qovery_dr_core::ClusterId;
/// use qovery_dr_providers::RateLimiter;
/// use qovery_dr_testkit::{World, memory::InMemoryCluster};
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let paced = Layered::new(InMemoryCluster::new(&World::new()), RateLimiter::new(2, Duration::from_secs(1)).with_burst(1));
/// let start = tokio::time::Instant::now();
/// for _ in 0..5 {
///     let _ = paced.cluster_status(&ClusterId::new("c1")).await;
/// }
/// assert!(start.elapsed() >= Duration::from_secs(2)); // 5 calls at 2/s, one at a time
/// # });
/// ```
impl qovery_dr_core::provider::Layer for RateLimiter {
    fn around<'a, T: Send + 'a>(
        &'a self,
        call: &'a qovery_dr_core::provider::CallInfo<'a>,
        next: &'a qovery_dr_core::provider::Next<'a, T>,
    ) -> qovery_dr_core::provider::CallFuture<'a, T> {
        Box::pin(async move {
            self.acquire(call.provider, call.method()).await?;
            next().await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces_and_clones_share_the_budget() {
        let a = RateLimiter::new(5, Duration::from_secs(1));
        let b = a.clone();
        let start = Instant::now();
        for _ in 0..5 {
            a.acquire("t", "op").await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "a full bucket bursts");
        b.acquire("t", "op").await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(199), "the clone waits: {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_block_fails_fast_until_it_ends() {
        let l = RateLimiter::new(100, Duration::from_secs(1));
        l.block_for(Duration::from_secs(30));
        let e = l.acquire("cloudflare", "list").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.retry_after().is_some_and(|d| d <= Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(31)).await;
        l.acquire("cloudflare", "list").await.unwrap();
    }
}
