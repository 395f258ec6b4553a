//! Small helpers shared by the HTTP providers.

use std::time::Duration;

/// The `Retry-After` header of an answer, in seconds form (the form these APIs send).
pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
