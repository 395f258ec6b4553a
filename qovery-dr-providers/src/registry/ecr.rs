//! Amazon ECR credentials: `GetAuthorizationToken` through the official
//! `aws-sdk-ecr` (standard credential chain), cached and refreshed before the
//! token expires (ECR tokens last 12 hours).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult, SecretString};

use super::client::PROVIDER;

/// Refresh this long before the token expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);
/// A token that arrives already (nearly) expired is still used this long before
/// the next fetch, so a misbehaving endpoint cannot make every request fetch one.
const MIN_REUSE: Duration = Duration::from_secs(60);

/// Credentials for an ECR registry: a basic `AWS:<token>` pair fetched with
/// `GetAuthorizationToken` and refreshed 15 minutes before it expires.
///
/// `Debug` shows how many tokens were fetched, never a token.
#[derive(Clone)]
pub struct EcrCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    client: aws_sdk_ecr::Client,
    refresh_margin: Duration,
    min_reuse: Duration,
    cached: tokio::sync::Mutex<Option<Cached>>,
    fetches: AtomicU64,
}

struct Cached {
    username: String,
    password: SecretString,
    /// When to fetch a new token.
    refresh_at: SystemTime,
}

impl fmt::Debug for EcrCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcrCredentials").field("fetches", &self.fetches()).finish_non_exhaustive()
    }
}

impl EcrCredentials {
    /// Credentials from an AWS configuration you loaded (region, credentials), sent to
    /// `endpoint_url` instead of ECR's when given (tests, VPC endpoints).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, endpoint_url: Option<&str>) -> Self {
        let mut config = aws_sdk_ecr::config::Builder::from(sdk);
        if let Some(url) = endpoint_url {
            config = config.endpoint_url(url);
        }
        Self {
            inner: Arc::new(Inner {
                client: aws_sdk_ecr::Client::from_conf(config.build()),
                refresh_margin: REFRESH_MARGIN,
                min_reuse: MIN_REUSE,
                cached: tokio::sync::Mutex::new(None),
                fetches: AtomicU64::new(0),
            }),
        }
    }

    /// Loads the AWS configuration from the standard chain for `region`.
    pub async fn from_env(region: impl Into<String>) -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.into()))
            .load()
            .await;
        Self::from_sdk_config(&sdk, None)
    }

    /// Refresh `margin` before expiry (default 15 minutes), and reuse a token that came
    /// (nearly) expired for `min_reuse` (default 60 s) before fetching again.
    pub fn with_refresh(self, margin: Duration, min_reuse: Duration) -> Self {
        let inner = Inner {
            client: self.inner.client.clone(),
            refresh_margin: margin,
            min_reuse,
            cached: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        };
        Self { inner: Arc::new(inner) }
    }

    /// How many tokens were fetched so far (each refresh is one).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The `AWS` / token pair to send as HTTP basic credentials, fetching or
    /// refreshing the token when needed.
    pub async fn credentials(&self) -> ProviderResult<(String, SecretString)> {
        self.basic("ecr_token").await
    }

    pub(crate) async fn basic(&self, op: &str) -> ProviderResult<(String, SecretString)> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| SystemTime::now() < c.refresh_at) {
            return Ok((c.username.clone(), c.password.clone()));
        }
        let fresh = self.fetch(op).await?;
        let pair = (fresh.username.clone(), fresh.password.clone());
        *cached = Some(fresh);
        Ok(pair)
    }

    async fn fetch(&self, op: &str) -> ProviderResult<Cached> {
        let err =
            |kind, msg: String| ProviderError::new(kind, PROVIDER, op, format!("ECR GetAuthorizationToken: {msg}"));
        let out = self.inner.client.get_authorization_token().send().await.map_err(|e| {
            use aws_sdk_ecr::error::ProvideErrorMetadata as _;
            let code = e.code().unwrap_or("").to_owned();
            let kind = match code.as_str() {
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException" => ErrorKind::Unauthenticated,
                "InvalidParameterException" => ErrorKind::InvalidConfig,
                "ThrottlingException" => ErrorKind::RateLimited,
                _ => ErrorKind::Transient,
            };
            let message = e.message().map(str::to_owned).unwrap_or_else(|| e.to_string());
            err(kind, format!("{code} {message}; check the AWS credentials and region of the orchestrator"))
        })?;
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| err(ErrorKind::Unauthenticated, "the answer holds no authorization data".into()))?;
        let token = data
            .authorization_token()
            .ok_or_else(|| err(ErrorKind::Unauthenticated, "the answer holds no token".into()))?;
        let decoded =
            data_encoding::BASE64.decode(token.as_bytes()).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(
                || err(ErrorKind::Unauthenticated, "the token is not base64 user:password (not shown)".into()),
            )?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err(err(ErrorKind::Unauthenticated, "the token is not user:password (not shown)".into()));
        };
        let now = SystemTime::now();
        let expires = data
            .expires_at()
            .and_then(|t| SystemTime::try_from(*t).ok())
            .unwrap_or(now + Duration::from_secs(12 * 3600));
        let (margin, min_reuse) = (self.inner.refresh_margin, self.inner.min_reuse);
        let refresh_at = expires.checked_sub(margin).filter(|t| *t > now + min_reuse).unwrap_or_else(|| {
            tracing::warn!(
                "ECR returned a token expiring within {} s; it will be fetched again in {} ms",
                margin.as_secs(),
                min_reuse.as_millis()
            );
            now + min_reuse
        });
        Ok(Cached { username: username.to_owned(), password: SecretString::new(password), refresh_at })
    }
}
