//! What a plan says about reaching the real infrastructure: the Qovery API, each
//! DNS record's provider, each registry's authentication, and where the failover
//! lock and journal live. Every secret is a [`SecretRef`], resolved at run time
//! by whoever connects (`qovery_dr_providers::connect`), never stored in the plan.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::model::{DnsTarget, SecretRef};

/// The Qovery API the plan's clusters and environments live in (`[qovery]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QoveryPlan {
    /// The API's base URL (`None`: Qovery's public API).
    pub api_url: Option<String>,
    /// The organization id.
    pub organization: String,
    /// The API token (a `Token …` API token or a JWT).
    pub token: SecretRef,
}

/// Where the failover lock and the journal live (`[state] url = …`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
#[non_exhaustive]
pub enum StateBackend {
    /// `file:///dir`: a lock file and a JSON-lines journal in a directory of this
    /// machine (one orchestrator machine).
    File {
        /// The directory.
        dir: PathBuf,
    },
    /// `etcd://host:port[,host:port…]/prefix`: a lease-backed lock and a journal
    /// fenced by it, shared by every orchestrator machine.
    Etcd {
        /// `http://host:port` for each member.
        endpoints: Vec<String>,
        /// Key prefix.
        prefix: String,
        /// User, when etcd has authentication on.
        user: Option<String>,
        /// The user's password.
        password: Option<SecretRef>,
    },
    /// `postgres://user@host:port/dbname`: a session advisory lock and a journal table
    /// in a PostgreSQL outside both sites.
    Postgres {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Database.
        dbname: String,
        /// User.
        user: String,
        /// The user's password.
        password: Option<SecretRef>,
    },
}

/// The DNS provider serving one record (`[dns.route53]`, `[dns.cloudflare]`, `[dns.rfc2136]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
#[non_exhaustive]
pub enum DnsProviderPlan {
    /// Amazon Route53 (official SDK, standard credential chain).
    Route53 {
        /// The hosted zone id.
        hosted_zone_id: String,
        /// Another endpoint (tests: moto).
        endpoint_url: Option<String>,
        /// The SDK region (Route53 is global; the SDK still needs one).
        region: Option<String>,
        /// Health check id of each target (failover routing needs the primary's).
        health_checks: BTreeMap<DnsTarget, String>,
        /// The zone's authoritative servers (`ip:port`) the engine's DNS step asks until each
        /// answers the new target. Empty: the step relies on the change status
        /// (`GetChange` INSYNC) and says so in its output.
        nameservers: Vec<String>,
    },
    /// Cloudflare (v4 API).
    Cloudflare {
        /// The zone id.
        zone_id: String,
        /// The API token.
        token: SecretRef,
        /// The account id (load-balancer pools).
        account_id: Option<String>,
        /// Another API base (tests).
        api_base: Option<String>,
        /// The zone's authoritative servers (`ip:port`, e.g. the addresses of its two
        /// `*.ns.cloudflare.com` names on port 53) the engine's DNS step asks until each
        /// answers the new target. Empty: Cloudflare publishes no propagation status, so
        /// the step can only rely on the API serving the change, and says so in its output.
        nameservers: Vec<String>,
    },
    /// A self-hosted authoritative server taking TSIG-signed RFC 2136 updates.
    Rfc2136 {
        /// The primary server taking updates, `ip:port`.
        server: String,
        /// The zone, e.g. `example.com.`.
        zone: String,
        /// Every authoritative server to verify propagation on (`ip:port`). Empty: the
        /// engine's DNS step discovers them from the zone's NS records (asked of `server`,
        /// each on `server`'s port), and the switcher's change status asks `server` only.
        nameservers: Vec<String>,
        /// The TSIG key, if updates are signed.
        tsig: Option<TsigPlan>,
    },
}

impl DnsProviderPlan {
    /// `route53`, `cloudflare` or `rfc2136`, as in plan files and cargo features.
    pub fn kind(&self) -> &'static str {
        match self {
            DnsProviderPlan::Route53 { .. } => "route53",
            DnsProviderPlan::Cloudflare { .. } => "cloudflare",
            DnsProviderPlan::Rfc2136 { .. } => "rfc2136",
        }
    }
}

/// A TSIG key for RFC 2136 updates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TsigPlan {
    /// The key's name as the server knows it.
    pub name: String,
    /// `hmac-sha256`, `hmac-sha384` or `hmac-sha512`.
    pub algorithm: String,
    /// The base64 secret.
    pub secret: SecretRef,
}

/// How the orchestrator authenticates to a registry (`auth = { kind = … }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RegistryAuthPlan {
    /// No credentials.
    #[default]
    Anonymous,
    /// HTTP basic (also exchanged for bearer tokens where the registry asks).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: SecretRef,
    },
    /// `user:password` in one secret (the first plan version's `credentials`).
    BasicPair {
        /// The secret holding `user:password`.
        credentials: SecretRef,
    },
    /// A static bearer token sent as `Authorization: Bearer …`.
    Bearer {
        /// The token.
        token: SecretRef,
    },
    /// Amazon ECR: a token from `GetAuthorizationToken`, refreshed before it expires.
    Ecr {
        /// The registry's region (default: from the host name).
        region: Option<String>,
        /// Another ECR API endpoint (tests).
        endpoint_url: Option<String>,
    },
    /// A Docker `config.json` (`auths`, `credHelpers`, `credsStore`).
    DockerConfig {
        /// The file (default: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
        path: Option<PathBuf>,
    },
}

impl RegistryAuthPlan {
    /// The kind as written in plan files.
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryAuthPlan::Anonymous => "anonymous",
            RegistryAuthPlan::Basic { .. } | RegistryAuthPlan::BasicPair { .. } => "basic",
            RegistryAuthPlan::Bearer { .. } => "bearer",
            RegistryAuthPlan::Ecr { .. } => "ecr",
            RegistryAuthPlan::DockerConfig { .. } => "docker-config",
        }
    }
}
