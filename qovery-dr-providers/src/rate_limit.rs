//! [`RateLimiter`]: the client-side request budget every HTTP provider spends
//! before each request, so a run stays under the API's limit instead of
//! discovering it through 429s.

use std::collections::VecDeque;
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
    /// When each of the last `requests` requests was let through (a limit of at most
    /// [`CEILING_LOG`] requests per window): the ceiling over any window.
    sent: VecDeque<Instant>,
    /// Requests let through since the limiter was made.
    granted: u64,
}

/// Limits above this many requests per window keep no log (they are "unlimited" in
/// practice): the token bucket alone paces them.
const CEILING_LOG: u32 = 100_000;

/// At most `requests` in **any** `window` (a ceiling, as APIs count: Cloudflare's 1,200
/// per 5 minutes holds over every 5-minute span, the first one included), paced by a
/// token bucket in bursts of at most `burst`. Clones share one budget: give the same
/// limiter to every client of one API (one token, one account) and together they stay
/// under its limit. [`granted`](Self::granted) counts the requests let through.
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
                sent: VecDeque::new(),
                granted: 0,
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
            let wait = 'decide: {
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
                // The ceiling: the request `requests` ago must be a window old.
                if self.requests <= CEILING_LOG {
                    while b.sent.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                        b.sent.pop_front();
                    }
                    if b.sent.len() >= self.requests as usize
                        && let Some(oldest) = b.sent.front()
                    {
                        break 'decide self
                            .window
                            .saturating_sub(now.duration_since(*oldest))
                            .max(Duration::from_millis(1));
                    }
                }
                let rate = f64::from(self.requests) / self.window.as_secs_f64();
                b.tokens = (b.tokens + (now - b.last).as_secs_f64() * rate).min(f64::from(self.burst));
                b.last = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    b.granted += 1;
                    if self.requests <= CEILING_LOG {
                        b.sent.push_back(now);
                    }
                    return Ok(());
                }
                Duration::from_secs_f64((1.0 - b.tokens) / rate)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// How many requests this limiter (and its clones) let through.
    pub fn granted(&self) -> u64 {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner).granted
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

    /// Cloudflare's default: 1,200 per 5 minutes, bucket full at the start. Over any
    /// 5-minute span (the first included) no more than 1,200 go out, and the steady pace
    /// is the limit's.
    #[tokio::test(start_paused = true)]
    async fn no_window_ever_holds_more_than_the_limit() {
        let window = Duration::from_secs(300);
        let l = RateLimiter::new(1200, window);
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..3000 {
            l.acquire("cloudflare", "list").await.unwrap();
            at.push(start.elapsed());
        }
        let mut most = 0;
        for (i, t) in at.iter().enumerate() {
            let in_window = at[i..].iter().take_while(|u| **u < *t + window).count();
            most = most.max(in_window);
        }
        assert_eq!(most, 1200, "the busiest 5-minute span");
        assert!(at[2999] >= Duration::from_secs(600), "3,000 take at least two more windows: {:?}", at[2999]);
        assert!(at[2999] <= Duration::from_secs(750), "and not much more: {:?}", at[2999]);
        assert_eq!(l.granted(), 3000);
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
