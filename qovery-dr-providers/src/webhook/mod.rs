//! Monitor notifications by HTTP webhook: a JSON POST with retries, in the
//! shape the receiver accepts (generic, Slack incoming webhook, PagerDuty
//! Events API v2).

use qovery_dr_core::resilience::{RetryConfig, TimeoutConfig};
use std::time::Duration;

use qovery_dr_core::monitor::{Notification, Notifier, NotifyError};
use qovery_dr_core::readiness::CheckStatus;
use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult, SecretString, async_trait};
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
    retry: RetryConfig,
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
            .field("retry", &self.retry)
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
        let limiter = crate::RateLimiter::new(1, Duration::from_secs(1)).with_burst(5);
        Self { url, format, client, retry: RetryConfig::new(4, Duration::from_secs(1)), limiter }
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
    pub fn with_timeouts(mut self, timeouts: TimeoutConfig) -> Self {
        self.client = Self::http(timeouts);
        self
    }

    /// The client-side request budget (default: one per second, bursts of five).
    pub fn with_rate_limiter(mut self, limiter: crate::RateLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// How deliveries are retried on 429, 5xx and connection failures (default: 4
    /// attempts, the first retry after about 1 s; a server's `Retry-After` is honoured up
    /// to [`RetryConfig::max_retry_after`]).
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
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

impl WebhookNotifier {
    /// One delivery attempt.
    async fn deliver(&self, body: &Value) -> ProviderResult<()> {
        const OP: &str = "notify";
        self.limiter.acquire("webhook", OP).await?;
        let resp = match self.client.post(self.url.clone()).json(body).send().await {
            Ok(resp) => resp,
            Err(e) => return Err(ProviderError::new(ErrorKind::Transient, "webhook", OP, e.without_url().to_string())),
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = crate::http::retry_after(&resp);
        let text: String = crate::http::text(resp, 64 * 1024).await.unwrap_or_default().chars().take(200).collect();
        let message = format!("HTTP {status}: {text}");
        Err(if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let e = ProviderError::new(ErrorKind::RateLimited, "webhook", OP, message);
            match retry_after {
                Some(ra) => e.with_retry_after(ra),
                None => e,
            }
        } else if status.is_server_error() {
            ProviderError::new(ErrorKind::Transient, "webhook", OP, message)
        } else {
            ProviderError::new(
                ErrorKind::InvalidInput,
                "webhook",
                OP,
                format!("{message} (not retried: the request itself is refused)"),
            )
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let body = self.body(n);
        // A repeated notification is harmless: every retryable failure is repeated.
        qovery_dr_core::resilience::retry(&self.retry, |_| true, |_| self.deliver(&body)).await.map_err(|e| {
            self.error(match e.retries_exhausted() {
                Some(n) => format!("{} after {n} attempts", e.message()),
                None => e.message().to_owned(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_of_a_notifier_shows_its_host_and_retries_only() {
        let n = WebhookNotifier::new(
            Url::parse("https://hooks.example.com/services/T0/B0/S3CR3T").unwrap(),
            WebhookFormat::Slack,
        );
        let text = format!("{n:?}");
        assert!(text.contains("hooks.example.com") && text.contains("max_attempts: 4"), "{text}");
        assert!(!text.contains("S3CR3T"), "{text}");
    }
}
