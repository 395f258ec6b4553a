//! A shared client-side bound for API calls: at most N at once, and at most
//! R per second. Starts are paced one interval apart (a token bucket with a
//! burst of one), measured from when each start was actually released, and
//! at 98% of R: timer and scheduling jitter cannot push any one-second
//! window over R.

use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Headroom below the configured rate, absorbing wake-up jitter.
const HEADROOM: f64 = 0.98;

#[derive(Debug)]
struct Bucket {
    interval: Duration,
    next: Instant,
}

/// Bounds concurrency and request rate of the calls made through it.
///
/// ```
/// use qovery_dr_core::readiness::Throttle;
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let throttle = Throttle::new(4, Some(100.0));
/// let start = tokio::time::Instant::now();
/// for _ in 0..10 {
///     let _permit = throttle.acquire().await;
/// }
/// assert!(start.elapsed() >= std::time::Duration::from_millis(90)); // 10 starts at (just under) 100/s
/// # });
/// ```
#[derive(Debug)]
pub struct Throttle {
    permits: Semaphore,
    bucket: Option<Mutex<Bucket>>,
}

impl Throttle {
    /// At most `concurrency` calls at once and, if given, `rate_per_second` starts per second.
    pub fn new(concurrency: usize, rate_per_second: Option<f64>) -> Self {
        let bucket = rate_per_second.filter(|r| r.is_finite() && *r > 0.0).map(|r| {
            Mutex::new(Bucket { interval: Duration::from_secs_f64(1.0 / (r * HEADROOM)), next: Instant::now() })
        });
        Self { permits: Semaphore::new(concurrency.max(1)), bucket }
    }

    /// Waits for a slot; the call runs while the permit lives.
    pub async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        let permit = self.permits.acquire().await.ok();
        if let Some(bucket) = &self.bucket {
            // Starts are released one at a time (the async lock queues them in
            // order), each an interval after the previous actual release.
            let mut b = bucket.lock().await;
            tokio::time::sleep_until(b.next).await;
            b.next = Instant::now() + b.interval;
        }
        permit
    }

    /// Runs `call` under the bounds.
    pub async fn run<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let _permit = self.acquire().await;
        call.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_window_of_a_second_holds_more_than_the_rate() {
        let t = std::sync::Arc::new(Throttle::new(64, Some(50.0)));
        let starts = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let (t, starts) = (t.clone(), starts.clone());
            set.spawn(async move {
                t.run(async {
                    starts.lock().await.push(Instant::now());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                })
                .await
            });
        }
        while set.join_next().await.is_some() {}
        let mut s = starts.lock().await.clone();
        s.sort();
        for (i, t0) in s.iter().enumerate() {
            let in_window = s[i..].iter().take_while(|t| t.duration_since(*t0) < Duration::from_secs(1)).count();
            assert!(in_window <= 50, "{in_window} starts within a second");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        let t = std::sync::Arc::new(Throttle::new(3, None));
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (t, running, peak) = (t.clone(), running.clone(), peak.clone());
            set.spawn(async move {
                t.run(async {
                    let n = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    peak.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
                .await
            });
        }
        while set.join_next().await.is_some() {}
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
