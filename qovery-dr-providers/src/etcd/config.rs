//! etcd connection settings.

use std::time::Duration;

use qovery_dr_core::SecretString;

/// The cluster's endpoints, the key prefix, the lease TTL and credentials. `Debug`
/// never shows the password.
///
/// ```
/// use std::time::Duration;
/// use qovery_dr_providers::etcd::EtcdConfig;
/// use qovery_dr_providers::core::SecretString;
///
/// let config = EtcdConfig::new(["http://127.0.0.1:2379"])
///     .with_prefix("/dr/shop")
///     .with_lease_ttl(Duration::from_secs(15))
///     .with_credentials("dr-orchestrator", SecretString::new("s3cret"));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    pub(crate) endpoints: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) lease_ttl: Duration,
    pub(crate) timeout: Duration,
    pub(crate) credentials: Option<(String, SecretString)>,
}

impl EtcdConfig {
    /// Every member's client URL (the client fails over between them).
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: "/qovery-dr".to_owned(),
            lease_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            credentials: None,
        }
    }

    /// Connects: the lock, from which the journal comes
    /// ([`EtcdFailoverLock::connect`](super::EtcdFailoverLock::connect)).
    pub async fn build(self) -> Result<super::EtcdFailoverLock, qovery_dr_core::lock::LockError> {
        super::EtcdFailoverLock::connect(self).await
    }

    /// The key prefix (default `/qovery-dr`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_end_matches('/').to_owned();
        self
    }

    /// How long the lock outlives a holder that stopped renewing it (default 10 s, at least
    /// 2 s). A successor waits this long after a crash; a holder stalled this long is fenced.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_secs(2));
        self
    }

    /// Per-request timeout (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a call is retried through elections and a lost member: the lease TTL plus
    /// one request timeout.
    pub(crate) fn retry_budget(&self) -> Duration {
        self.lease_ttl + self.timeout
    }

    /// etcd user and password, when authentication is on.
    pub fn with_credentials(mut self, user: impl Into<String>, password: SecretString) -> Self {
        self.credentials = Some((user.into(), password));
        self
    }
}
