//! Small helpers shared by the HTTP providers: the one reading of `Retry-After`, and
//! answer bodies read up to a size limit (a peer cannot make us buffer without end).

use std::time::{Duration, SystemTime};

use qovery_dr_core::resilience::DEFAULT_MAX_RETRY_AFTER;

/// The `Retry-After` header of an answer, at most [`DEFAULT_MAX_RETRY_AFTER`].
pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let value = resp.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now(), DEFAULT_MAX_RETRY_AFTER)
}

/// A `Retry-After` value (RFC 9110 §10.2.3: delay-seconds, or an HTTP-date) as a wait
/// from `now`, at most `cap`. A date in the past is no wait; anything else (negative,
/// fractional, garbage) is ignored.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime, cap: Duration) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than u64 seconds is longer than the cap anyway.
        return Some(v.parse::<u64>().map_or(cap, Duration::from_secs).min(cap));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(cap))
}

/// Why an answer body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the limit: reading stopped there.
    TooLarge(u64),
    /// The transfer failed (or the request's timeout ended it).
    Transport(reqwest::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => write!(f, "the answer is longer than {limit} bytes; refusing to read more"),
            BodyError::Transport(e) => write!(f, "reading the answer: {}", crate::http::without_url(e)),
        }
    }
}

/// `e` without the URL it carries (a URL may hold a secret, e.g. a webhook's).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

/// The body of `resp`, read chunk by chunk up to `limit` bytes.
pub(crate) async fn body(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The body of `resp` as text (lossy), up to `limit` bytes.
pub(crate) async fn text(resp: reqwest::Response, limit: u64) -> Result<String, BodyError> {
    body(resp, limit).await.map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(300);

    fn now() -> SystemTime {
        httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap()
    }

    #[test]
    fn retry_after_in_every_form_is_a_capped_wait_or_nothing() {
        assert_eq!(parse_retry_after("7", now(), CAP), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 7 ", now(), CAP), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(&u64::MAX.to_string(), now(), CAP), Some(CAP));
        assert_eq!(parse_retry_after(&(1u64 << 62).to_string(), now(), CAP), Some(CAP));
        assert_eq!(parse_retry_after("99999999999999999999999999", now(), CAP), Some(CAP));
        assert_eq!(parse_retry_after("-5", now(), CAP), None);
        assert_eq!(parse_retry_after("1.5", now(), CAP), None);
        assert_eq!(parse_retry_after("soon", now(), CAP), None);
        assert_eq!(parse_retry_after("", now(), CAP), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now(), CAP), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now(), CAP), Some(Duration::ZERO), "past");
        assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now(), CAP), Some(CAP), "far future");
    }
}
