//! Configuration of the RFC 2136 switcher: the primary server, the zone, the TSIG key.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm as HickoryTsigAlgorithm;
use hickory_proto::dnssec::tsig::TSigner;
use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult, SecretString};

use super::wire::{PROVIDER, fqdn};

/// The TSIG MAC algorithms accepted (RFC 8945 recommends HMAC-SHA256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TsigAlgorithm {
    /// `hmac-sha256`.
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

impl TsigAlgorithm {
    fn hickory(self) -> HickoryTsigAlgorithm {
        match self {
            TsigAlgorithm::HmacSha256 => HickoryTsigAlgorithm::HmacSha256,
            TsigAlgorithm::HmacSha384 => HickoryTsigAlgorithm::HmacSha384,
            TsigAlgorithm::HmacSha512 => HickoryTsigAlgorithm::HmacSha512,
        }
    }
}

/// A TSIG key: its name as the server knows it, the algorithm, and the base64 secret.
///
/// `Debug` shows the name and algorithm, never the secret.
#[derive(Clone)]
pub struct TsigKey {
    name: String,
    algorithm: TsigAlgorithm,
    secret: SecretString,
}

impl TsigKey {
    /// A key; `secret_base64` is the secret as written in `named.conf`/`knot.conf` (base64).
    pub fn new(name: impl Into<String>, algorithm: TsigAlgorithm, secret_base64: SecretString) -> Self {
        Self { name: name.into(), algorithm, secret: secret_base64 }
    }

    pub(crate) fn signer(&self) -> ProviderResult<TSigner> {
        let invalid = |why: String| ProviderError::new(ErrorKind::InvalidConfig, PROVIDER, "tsig", why);
        let secret = data_encoding::BASE64
            .decode(self.secret.expose().trim().as_bytes())
            .map_err(|e| invalid(format!("the secret of TSIG key {:?} is not base64 ({e})", self.name)))?;
        let name = fqdn(&self.name, "tsig")?;
        TSigner::new(secret, self.algorithm.hickory(), name, 300)
            .map_err(|e| invalid(format!("TSIG key {:?}: {e}", self.name)))
    }
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Where and how to send updates.
#[derive(Debug, Clone)]
pub struct Rfc2136Config {
    pub(crate) primary: SocketAddr,
    pub(crate) zone: String,
    pub(crate) tsig: Option<TsigKey>,
    pub(crate) nameservers: Vec<SocketAddr>,
    pub(crate) timeout: Duration,
    pub(crate) ttl: Option<u32>,
}

impl Rfc2136Config {
    /// Updates go to `primary` (the zone's primary server, which accepts updates) for `zone`.
    /// Unsigned until [`with_tsig`](Self::with_tsig) is set; propagation is checked at the primary
    /// until [`nameservers`](Self::nameservers) lists every authoritative server.
    pub fn new(primary: SocketAddr, zone: impl Into<String>) -> Self {
        Self {
            primary,
            zone: zone.into(),
            tsig: None,
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
            ttl: None,
        }
    }

    /// The switcher ([`Rfc2136DnsSwitcher::new`](super::Rfc2136DnsSwitcher::new)).
    pub fn build(self) -> qovery_dr_core::ProviderResult<super::Rfc2136DnsSwitcher> {
        super::Rfc2136DnsSwitcher::new(self)
    }

    /// Signs every request with this TSIG key.
    pub fn with_tsig(mut self, key: TsigKey) -> Self {
        self.tsig = Some(key);
        self
    }

    /// The authoritative servers whose SOA serial `change_status` checks (default: the primary).
    pub fn nameservers(mut self, servers: Vec<SocketAddr>) -> Self {
        self.nameservers = servers;
        self
    }

    /// Time to wait for each answer (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The TTL to give the new record (default: keep the old record's TTL).
    pub fn with_ttl(mut self, seconds: u32) -> Self {
        self.ttl = Some(seconds);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret_and_bad_secrets_are_config_errors() {
        let key = TsigKey::new("k", TsigAlgorithm::HmacSha256, SecretString::new("c2VjcmV0LXZhbHVl"));
        let shown =
            format!("{:?}", Rfc2136Config::new("127.0.0.1:53".parse().unwrap(), "z.test").with_tsig(key.clone()));
        assert!(!shown.contains("c2VjcmV0LXZhbHVl") && shown.contains("<redacted>"), "{shown}");
        assert!(key.signer().is_ok());
        let bad = TsigKey::new("k", TsigAlgorithm::HmacSha256, SecretString::new("not base64!"));
        let Err(err) = bad.signer() else { panic!("a non-base64 secret is refused") };
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(!err.to_string().contains("not base64!"), "the secret is not echoed: {err}");
    }
}
