//! Monitor notifications by HTTP webhook: a JSON POST with retries, in the
//! shape the receiver accepts (generic, Slack incoming webhook, PagerDuty
//! Events API v2).

use qovery_dr_core::resilience::TimeoutConfig;
use std::time::Duration;

use qovery_dr_core::monitor::{Notification, Notifier, NotifyError};
use qovery_dr_core::readiness::CheckStatus;
use qovery_dr_core::{SecretString, async_trait};
use serde_json::{Value, json};
use url::Url;

/// The body shape the receiver expects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WebhookFormat {
    /// The [`Notification`] as JSON.
    Generic,
    /// A Slack incoming webhook (`{"text": …}`).
    Slack,
    /// PagerDuty Events API v2 (`trigger` on failure/warning, `resolve` on recovery,
    /// deduplicated per plan and check).
    PagerDuty {
        /// The integration's routing key (a secret).
        routing_key: SecretString,
    },
}

/// POSTs notifications to a URL, retrying on 5xx, 429 (honouring
/// `Retry-After`) and connection errors; never on other 4xx.
///
/// ```
/// use qovery_dr_providers::webhook::{WebhookFormat, WebhookNotifier};
/// let n = WebhookNotifier::new("https://hooks.slack.com/services/T/B/X".parse().unwrap(), WebhookFormat::Slack);
/// let shown = format!("{n:?}");
/// assert!(shown.contains("hooks.slack.com") && !shown.contains("T/B/X"), "the URL's secret path is not shown");
/// let pd = WebhookNotifier::new(
///     "https://events.pagerduty.com/v2/enqueue".parse().unwrap(),
///     WebhookFormat::PagerDuty { routing_key: qovery_dr_core::SecretString::new("R0UT1NG") },
/// );
/// assert!(!format!("{pd:?}").contains("R0UT1NG"));
/// ```
#[derive(Clone)]
pub struct WebhookNotifier {
    url: Url,
    format: WebhookFormat,
    client: reqwest::Client,
    attempts: u32,
    backoff: Duration,
    limiter: crate::RateLimiter,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Webhook URLs often embed their secret in the path: show the host only.
        let format = match &self.format {
            WebhookFormat::Generic => "generic",
            WebhookFormat::Slack => "slack",
            WebhookFormat::PagerDuty { .. } => "pagerduty",
        };
        f.debug_struct("WebhookNotifier")
            .field("host", &self.url.host_str().unwrap_or(""))
            .field("format", &format)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// A notifier posting to `url` in `format`, 4 attempts, 1 s initial backoff, 10 s timeout.
    pub fn new(url: Url, format: WebhookFormat) -> Self {
        let timeouts = TimeoutConfig { request: Duration::from_secs(10), ..TimeoutConfig::default() };
        let client = Self::http(timeouts);
        // Slack incoming webhooks take about one message per second; PagerDuty Events v2
        // about 120 per minute per integration key: one per second suits both.
        let limiter = crate::RateLimiter::new(1, Duration::from_secs(1)).burst(5);
        Self { url, format, client, attempts: 4, backoff: Duration::from_secs(1), limiter }
    }

    fn http(timeouts: TimeoutConfig) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(timeouts.request)
            .connect_timeout(timeouts.connect)
            .user_agent(concat!("qovery-dr/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    }

    /// Deadlines of one delivery attempt (default: 10 s per request, 10 s to connect).
    pub fn timeouts(mut self, timeouts: TimeoutConfig) -> Self {
        self.client = Self::http(timeouts);
        self
    }

    /// The client-side request budget (default: one per second, bursts of five).
    pub fn rate_limiter(mut self, limiter: crate::RateLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// Attempts in all (at least 1) and the first backoff (doubling, at most 5 minutes).
    pub fn retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff.min(MAX_WAIT);
        self
    }

    /// The JSON body for a notification.
    pub fn body(&self, n: &Notification) -> Value {
        match &self.format {
            WebhookFormat::Generic => serde_json::to_value(n).unwrap_or(Value::Null),
            WebhookFormat::Slack => {
                let icon = match n.to {
                    CheckStatus::Pass => ":large_green_circle:",
                    CheckStatus::Warn => ":warning:",
                    CheckStatus::Fail => ":red_circle:",
                };
                json!({ "text": format!("{icon} {}", n.summary()) })
            }
            WebhookFormat::PagerDuty { routing_key } => {
                let (action, severity) = match n.to {
                    CheckStatus::Pass => ("resolve", "info"),
                    CheckStatus::Warn => ("trigger", "warning"),
                    CheckStatus::Fail => ("trigger", "critical"),
                };
                json!({
                    "routing_key": routing_key.expose(),
                    "event_action": action,
                    "dedup_key": format!("qovery-dr:{}:{}", n.plan, n.check),
                    "payload": {
                        "summary": n.summary().chars().take(1024).collect::<String>(),
                        "source": format!("qovery-dr/{}", n.plan),
                        "severity": severity,
                        "component": n.check,
                        "group": "disaster-recovery",
                        "custom_details": { "observed": n.observed, "expected": n.expected, "detail": n.detail, "from": n.from, "to": n.to },
                    },
                })
            }
        }
    }

    fn error(&self, message: String) -> NotifyError {
        // The URL can carry a secret (Slack): name only its host.
        NotifyError { target: self.url.host_str().unwrap_or("webhook").to_owned(), message }
    }
}

/// The longest wait between two attempts, whatever the server's Retry-After or the backoff.
const MAX_WAIT: Duration = qovery_dr_core::resilience::DEFAULT_MAX_RETRY_AFTER;

/// The next wait: the backoff or the server's Retry-After, whichever is longer, capped.
fn wait_before_retry(backoff: Duration, retry_after: Option<Duration>) -> Duration {
    backoff.max(retry_after.unwrap_or_default()).min(MAX_WAIT)
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let body = self.body(n);
        let mut delay = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            if let Err(e) = self.limiter.acquire("webhook", "notify").await {
                return Err(self.error(e.to_string()));
            }
            match self.client.post(self.url.clone()).json(&body).send().await {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = crate::http::retry_after(&resp);
                    let text: String =
                        crate::http::text(resp, 64 * 1024).await.unwrap_or_default().chars().take(200).collect();
                    last = format!("HTTP {status}: {text}");
                    if !(status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS) {
                        return Err(self.error(format!("{last} (not retried: the request itself is refused)")));
                    }
                    if let Some(ra) = retry_after {
                        delay = wait_before_retry(delay, Some(ra));
                    }
                }
                Err(e) => last = format!("{}", e.without_url()),
            }
            if attempt < self.attempts {
                tracing::warn!(attempt, error = %last, "webhook notification failed, retrying");
                tokio::time::sleep(delay).await;
                delay = wait_before_retry(delay.saturating_mul(2), None);
            }
        }
        Err(self.error(format!("{last} after {} attempts", self.attempts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_never_overflow_and_stay_capped() {
        let mut d = Duration::from_secs(u64::MAX / 2);
        for _ in 0..70 {
            d = wait_before_retry(d.saturating_mul(2), Some(Duration::MAX));
            assert!(d <= MAX_WAIT);
        }
        assert_eq!(wait_before_retry(Duration::from_secs(1), None), Duration::from_secs(1));
        assert_eq!(wait_before_retry(Duration::from_secs(1), Some(Duration::from_secs(7))), Duration::from_secs(7));
    }
}
