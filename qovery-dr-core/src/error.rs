//! The one error type every provider returns, and the kinds the engine acts on.

use std::fmt;
use std::time::Duration;

/// What went wrong, in terms the engine can act on.
///
/// The kind, not the message, decides whether the engine retries, reconciles,
/// or stops: see [`ErrorKind::is_retryable`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The addressed object does not exist.
    NotFound,
    /// The object to create exists already.
    AlreadyExists,
    /// The object is not in a state that allows the operation (e.g. an
    /// operation is already in progress, or an ownership guard did not match).
    Conflict,
    /// The credentials are missing, malformed or expired.
    Unauthenticated,
    /// The credentials are valid but not allowed to do this.
    PermissionDenied,
    /// The API refused because of a rate limit; retry after the given delay
    /// (see [`ProviderError::retry_after`]).
    RateLimited,
    /// A failure that is expected to pass (5xx, connection reset).
    Transient,
    /// The operation did not finish within its deadline.
    Timeout,
    /// The request may or may not have been applied (e.g. the connection
    /// dropped after the request was sent). Read the state to reconcile before
    /// retrying.
    Indeterminate,
    /// An argument was rejected by the provider.
    InvalidInput,
    /// The provider's configuration is wrong (endpoint, region, credentials source).
    InvalidConfig,
    /// The provider cannot do this at all (see its capabilities).
    NotSupported,
}

impl ErrorKind {
    /// Whether an operation failing with this kind may succeed if tried again.
    ///
    /// `Indeterminate` is retryable only after reconciling: read the state first
    /// (see [`ErrorKind::needs_reconcile`]).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Transient | Self::Timeout | Self::Indeterminate)
    }

    /// Whether the operation may have been applied even though it failed.
    pub fn needs_reconcile(self) -> bool {
        matches!(self, Self::Indeterminate | Self::Timeout)
    }

    /// A stable snake_case name, as used in JSON and journals.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Conflict => "conflict",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::RateLimited => "rate_limited",
            Self::Transient => "transient",
            Self::Timeout => "timeout",
            Self::Indeterminate => "indeterminate",
            Self::InvalidInput => "invalid_input",
            Self::InvalidConfig => "invalid_config",
            Self::NotSupported => "not_supported",
        }
    }

    /// All kinds, for exhaustive tests and fault injection (a slice: a new kind does not
    /// change its type).
    pub const ALL: &'static [ErrorKind] = &[
        Self::NotFound,
        Self::AlreadyExists,
        Self::Conflict,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::RateLimited,
        Self::Transient,
        Self::Timeout,
        Self::Indeterminate,
        Self::InvalidInput,
        Self::InvalidConfig,
        Self::NotSupported,
    ];

    fn advice(self) -> &'static str {
        match self {
            Self::NotFound => "check the identifier in the plan",
            Self::AlreadyExists => "the object exists; reuse it or pick another name",
            Self::Conflict => "another operation holds the object or the state changed; re-read it",
            Self::Unauthenticated => "check the credentials the plan references",
            Self::PermissionDenied => "grant the credentials the needed permission",
            Self::RateLimited => "retry after the given delay",
            Self::Transient => "retry",
            Self::Timeout => "re-read the state, then retry",
            Self::Indeterminate => "re-read the state before retrying: the request may have been applied",
            Self::InvalidInput => "fix the argument",
            Self::InvalidConfig => "fix the provider configuration",
            Self::NotSupported => "use a provider or strategy that supports it",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error every provider trait method returns.
///
/// It says what failed (`operation`), where (`provider`), why (`message`,
/// `source`) and, through its [`ErrorKind`], what to do.
///
/// ```
/// use qovery_dr_core::{ErrorKind, ProviderError};
/// use std::time::Duration;
///
/// let err = ProviderError::new(ErrorKind::RateLimited, "qovery", "deploy_environment", "429 Too Many Requests")
///     .with_retry_after(Duration::from_secs(3));
/// assert!(err.is_retryable());
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
/// assert!(err.to_string().contains("qovery"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("{provider}: {operation} failed ({kind}): {message}; {advice}", advice = kind.advice())]
pub struct ProviderError {
    kind: ErrorKind,
    provider: String,
    operation: String,
    message: String,
    retry_after: Option<Duration>,
    retries_exhausted: Option<u32>,
    #[source]
    source: Option<BoxError>,
}

impl ProviderError {
    /// A new error of `kind` raised by `provider` while doing `operation`.
    pub fn new(
        kind: ErrorKind,
        provider: impl Into<String>,
        operation: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            provider: provider.into(),
            operation: operation.into(),
            message: message.into(),
            retry_after: None,
            retries_exhausted: None,
            source: None,
        }
    }

    /// The same error with `context` (what was being done, on which resource) before its
    /// message: `"{context}: {message}"`. Kind, retry-after and source are kept.
    ///
    /// ```
    /// use qovery_dr_core::{ErrorKind, ProviderError};
    /// let e = ProviderError::new(ErrorKind::Unauthenticated, "oci", "sync", "HTTP 401")
    ///     .with_context("DR registry 10.0.0.5:5000, repository shop/api");
    /// assert_eq!(e.message(), "DR registry 10.0.0.5:5000, repository shop/api: HTTP 401");
    /// assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    /// ```
    pub fn with_context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets how long the caller should wait before retrying (rate limits).
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Marks the error as the last of `attempts` made by a layer that retries (a
    /// provider's own retry loop): the layers above do not retry it again, so attempts
    /// never multiply across layers.
    pub fn with_retries_exhausted(mut self, attempts: u32) -> Self {
        self.retries_exhausted = Some(attempts);
        self
    }

    /// The attempts already made, if a layer retried this to exhaustion.
    pub fn retries_exhausted(&self) -> Option<u32> {
        self.retries_exhausted
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The provider that failed (e.g. `qovery`, `route53`, `in-memory`).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The operation that failed (e.g. `deploy_environment`).
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The human-readable detail.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The delay the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether retrying may succeed (answered from the kind).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// The result type of provider operations.
pub type ProviderResult<T> = Result<T, ProviderError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds_are_exactly_the_transient_ones() {
        let retryable: Vec<_> = ErrorKind::ALL.iter().copied().filter(|k| k.is_retryable()).collect();
        assert_eq!(
            retryable,
            vec![ErrorKind::RateLimited, ErrorKind::Transient, ErrorKind::Timeout, ErrorKind::Indeterminate]
        );
    }

    #[test]
    fn display_names_provider_operation_kind_and_advice() {
        let err = ProviderError::new(ErrorKind::NotFound, "qovery", "environment_status", "env-1 does not exist");
        let text = err.to_string();
        assert!(text.contains("qovery: environment_status failed (not_found): env-1 does not exist"));
        assert!(text.contains("check the identifier"));
    }

    #[test]
    fn source_is_kept() {
        let io = std::io::Error::other("reset");
        let err = ProviderError::new(ErrorKind::Transient, "x", "op", "m").with_source(io);
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn kind_serializes_snake_case() {
        assert_eq!(serde_json::to_string(&ErrorKind::RateLimited).unwrap(), "\"rate_limited\"");
        for &k in ErrorKind::ALL {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
        }
    }
}
