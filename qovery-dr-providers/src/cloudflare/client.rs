//! HTTP to Cloudflare: pacing, the 429 block, the envelope, error mapping.

use std::time::Duration;

use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::CloudflareConfig;
use super::models::{ApiMessage, Envelope, ResultInfo};

pub(crate) const PROVIDER: &str = "cloudflare";

/// How long Cloudflare blocks a token after a 429 when it sends no `retry-after`.
const DEFAULT_BLOCK: Duration = Duration::from_secs(300);

/// A paced Cloudflare API client.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    config: CloudflareConfig,
}

impl Client {
    pub(crate) fn new(config: CloudflareConfig) -> ProviderResult<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeouts.request)
            .connect_timeout(config.timeouts.connect)
            .build()
            .map_err(|e| {
                ProviderError::new(ErrorKind::InvalidConfig, PROVIDER, "configure", format!("HTTP client: {e}"))
                    .with_source(e)
            })?;
        Ok(Self { http, config })
    }

    pub(crate) fn zone_id(&self) -> &str {
        &self.config.zone_id
    }

    /// The account of the pools, when load balancers are enabled.
    pub(crate) fn account_id(&self) -> Option<&str> {
        self.config.account_id.as_deref()
    }

    /// Sends a request and unwraps the envelope. `write` marks requests whose lost answer may mean "applied".
    pub(crate) async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        operation: &str,
        write: bool,
    ) -> ProviderResult<(T, Option<ResultInfo>)> {
        self.config.limiter.acquire(PROVIDER, operation).await?;
        let url = format!("{}{path}", self.config.api_base);
        let mut req = self.http.request(method, &url).bearer_auth(self.config.token.expose()).query(query);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            let (kind, hint) = if write {
                (ErrorKind::Indeterminate, "the request may have been applied; read the record before retrying")
            } else if e.is_timeout() {
                (ErrorKind::Timeout, "no answer in time")
            } else {
                (ErrorKind::Transient, "could not reach the Cloudflare API; retry")
            };
            ProviderError::new(kind, PROVIDER, operation, format!("{path}: {e}: {hint}")).with_source(e)
        })?;
        let status = resp.status();
        let retry_after = crate::http::retry_after(&resp);
        let bytes = crate::http::body(resp, self.config.timeouts.max_body_bytes).await.map_err(|e| {
            let kind = if write { ErrorKind::Indeterminate } else { ErrorKind::Transient };
            ProviderError::new(kind, PROVIDER, operation, format!("{path}: HTTP {status}: {e}"))
        })?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let block = retry_after.unwrap_or(DEFAULT_BLOCK);
            self.config.limiter.block_for(block);
            return Err(ProviderError::new(
                ErrorKind::RateLimited,
                PROVIDER,
                operation,
                format!(
                    "429 from Cloudflare: the token is blocked for {}s; all calls wait until then",
                    block.as_secs()
                ),
            )
            .with_retry_after(block));
        }
        let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|e| {
            let kind = if status.is_server_error() { ErrorKind::Transient } else { ErrorKind::InvalidInput };
            ProviderError::new(
                kind,
                PROVIDER,
                operation,
                format!("{path}: HTTP {status}, not a Cloudflare envelope: {e}"),
            )
        })?;
        match (status.is_success() && envelope.success, envelope.result) {
            (true, Some(result)) => Ok((result, envelope.result_info)),
            (true, None) => Err(ProviderError::new(
                ErrorKind::Transient,
                PROVIDER,
                operation,
                format!("{path}: success without a result"),
            )),
            (false, _) => Err(api_error(status, &envelope.errors, path, operation)),
        }
    }
}

/// Maps a failed answer, keeping Cloudflare's error codes in the message.
fn api_error(status: StatusCode, errors: &[ApiMessage], path: &str, operation: &str) -> ProviderError {
    let codes: Vec<String> = errors.iter().map(|e| format!("{} {}", e.code, e.message)).collect();
    let has = |c: i64| errors.iter().any(|e| e.code == c);
    let (kind, hint) = match status.as_u16() {
        _ if has(10000) || has(9109) || has(6003) || status == StatusCode::UNAUTHORIZED => {
            (ErrorKind::Unauthenticated, "the API token is invalid or expired")
        }
        403 => {
            (ErrorKind::PermissionDenied, "the token lacks the permission (DNS edit, or Load Balancing edit for pools)")
        }
        404 => (ErrorKind::NotFound, "check the zone, account, record, load balancer or pool id"),
        409 => (ErrorKind::Conflict, "the record conflicts with another"),
        400 | 422 => (ErrorKind::InvalidInput, "Cloudflare rejected the request"),
        s if s >= 500 => (ErrorKind::Transient, "Cloudflare failed; retry"),
        _ => (ErrorKind::InvalidInput, "unexpected answer"),
    };
    ProviderError::new(kind, PROVIDER, operation, format!("{path}: HTTP {status} [{}]: {hint}", codes.join("; ")))
}
