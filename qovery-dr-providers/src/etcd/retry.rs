//! Retrying etcd calls through leader changes and a lost member.

use std::future::Future;
use std::time::Duration;

use etcd_client::Error;
use tokio::time::Instant;

/// Whether an error is worth retrying: no leader for a moment (an election after a member
/// died), an unreachable member (the client moves to another), a request that timed out.
fn transient(e: &Error) -> bool {
    match e {
        // gRPC codes (stable across gRPC implementations): 1 Cancelled (the client's own
        // request timeout, e.g. on a connection to a member that just died), 2 Unknown,
        // 4 DeadlineExceeded, 10 Aborted, 14 Unavailable ("etcdserver: leader changed").
        Error::GRpcStatus(s) => matches!(s.code() as i32, 1 | 2 | 4 | 10 | 14),
        Error::TransportError(_) | Error::IoError(_) => true,
        _ => false,
    }
}

/// Runs `call` until it succeeds, fails for good, or `budget` has passed, backing off from
/// 50 ms to 1 s. Callers of writes make the retried request idempotent themselves.
pub(super) async fn retrying<T, F, Fut>(budget: Duration, what: &str, mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + budget;
    let mut delay = Duration::from_millis(50);
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if transient(&e) && Instant::now() + delay < deadline => {
                tracing::debug!(error = %e, what, "etcd call failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}
