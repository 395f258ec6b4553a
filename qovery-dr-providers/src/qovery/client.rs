//! The HTTP client: auth, retries with backoff and jitter, error mapping.

use std::time::Duration;

use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult, SecretString};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The provider name in errors.
pub const PROVIDER: &str = "qovery";

/// A Qovery credential: an API token (`Authorization: Token …`) or a JWT
/// (`Authorization: Bearer …`). Debug and Display redact it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum QoveryToken {
    /// A Qovery API token (machine to machine, no TTL).
    Api(SecretString),
    /// A JWT (OIDC, with a TTL).
    Jwt(SecretString),
}

impl QoveryToken {
    /// Guesses the kind: three base64url segments are a JWT, anything else an API token.
    pub fn from_secret(secret: SecretString) -> Self {
        let t = secret.expose();
        let jwt = t.split('.').count() == 3 && t.starts_with("ey");
        if jwt { QoveryToken::Jwt(secret) } else { QoveryToken::Api(secret) }
    }

    pub(crate) fn header(&self) -> String {
        match self {
            QoveryToken::Api(s) => format!("Token {}", s.expose()),
            QoveryToken::Jwt(s) => format!("Bearer {}", s.expose()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Http {
    pub base: url::Url,
    pub token: QoveryToken,
    pub client: reqwest::Client,
    /// Retries of this client's requests (the engine does not retry what these exhausted).
    pub retry: qovery_dr_core::resilience::RetryConfig,
    /// The largest answer read.
    pub max_body: u64,
    pub limiter: crate::RateLimiter,
}

pub(crate) fn err(kind: ErrorKind, op: &str, msg: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

impl Http {
    fn url(&self, path: &str) -> ProviderResult<url::Url> {
        let base = self.base.as_str().trim_end_matches('/');
        url::Url::parse(&format!("{base}{path}"))
            .map_err(|e| err(ErrorKind::InvalidInput, "url", format!("{path}: {e}")))
    }

    /// One request with retries through the shared loop
    /// ([`resilience::retry`](qovery_dr_core::resilience::retry)): reads on 429, 5xx and
    /// connection failures; writes only on 429 (a refused request was not applied).
    /// Returns the status and the body.
    pub async fn send(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> ProviderResult<(StatusCode, String)> {
        let url = self.url(path)?;
        let read = method == Method::GET;
        qovery_dr_core::resilience::retry(
            &self.retry,
            |e| read || e.kind() == ErrorKind::RateLimited,
            |attempt| self.attempt(op, &method, &url, path, body, attempt),
        )
        .await
    }

    /// One attempt. A write whose answer was lost or was a 5xx fails `Indeterminate`
    /// ("may have been applied"): the caller reconciles before repeating it.
    async fn attempt(
        &self,
        op: &str,
        method: &Method,
        url: &url::Url,
        path: &str,
        body: Option<&Value>,
        attempt: u32,
    ) -> ProviderResult<(StatusCode, String)> {
        let mut req = self
            .client
            .request(method.clone(), url.clone())
            .header(reqwest::header::AUTHORIZATION, self.token.header());
        if let Some(b) = body {
            req = req.json(b);
        }
        self.limiter.acquire(PROVIDER, op).await?;
        tracing::debug!(op, %method, path, attempt, "qovery request");
        let error = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let retry_after = crate::http::retry_after(&resp);
                let text = match crate::http::text(resp, self.max_body).await {
                    Ok(t) => t,
                    // A mutation answered 2xx was applied, whatever happened to its body.
                    Err(e) if status.is_success() && method != Method::GET => {
                        return Err(err(
                            ErrorKind::Indeterminate,
                            op,
                            format!("{path}: HTTP {status}, then {e} (the request was applied)"),
                        ));
                    }
                    Err(e) => {
                        return Err(err(ErrorKind::Transient, op, format!("{path}: HTTP {status}, then {e}")));
                    }
                };
                if status.is_success() {
                    return Ok((status, text));
                }
                map_status(op, status, &text, retry_after)
            }
            Err(e) if e.is_timeout() => {
                err(ErrorKind::Timeout, op, format!("{path}: no answer in time")).with_source(e.without_url())
            }
            Err(e) if e.is_connect() => {
                err(ErrorKind::Transient, op, format!("{path}: cannot connect")).with_source(e.without_url())
            }
            // The request may have left: the caller reconciles before retrying.
            Err(e) => err(ErrorKind::Indeterminate, op, format!("{path}: {e}")).with_source(e.without_url()),
        };
        // Mutations are not retried blindly: a 5xx on POST may have been applied.
        if method != Method::GET && error.kind() == ErrorKind::Transient {
            return Err(err(
                ErrorKind::Indeterminate,
                op,
                format!("{} (the request may have been applied)", error.message()),
            ));
        }
        Err(error)
    }

    /// A GET decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, op: &str, path: &str) -> ProviderResult<T> {
        let (_, text) = self.send(op, Method::GET, path, None).await?;
        decode(op, path, &text)
    }
}

pub(crate) fn decode<T: DeserializeOwned>(op: &str, path: &str, text: &str) -> ProviderResult<T> {
    serde_json::from_str(text)
        .map_err(|e| err(ErrorKind::Transient, op, format!("{path}: unexpected response body ({e})")))
}

/// Maps an HTTP error answer (`{"status", "detail"}` bodies) to a kind.
pub(crate) fn map_status(op: &str, status: StatusCode, body: &str, retry_after: Option<Duration>) -> ProviderError {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail").or_else(|| v.get("message")).and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect());
    let kind = match status {
        StatusCode::UNAUTHORIZED => ErrorKind::Unauthenticated,
        StatusCode::FORBIDDEN => ErrorKind::PermissionDenied,
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        StatusCode::CONFLICT => ErrorKind::Conflict,
        StatusCode::TOO_MANY_REQUESTS => ErrorKind::RateLimited,
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ErrorKind::InvalidInput,
        s if s.is_server_error() => ErrorKind::Transient,
        _ => ErrorKind::InvalidInput,
    };
    let e = err(kind, op, format!("HTTP {status}: {detail}"));
    match retry_after {
        Some(ra) => e.with_retry_after(ra),
        None if kind == ErrorKind::RateLimited => e.with_retry_after(Duration::from_secs(1)),
        None => e,
    }
}
