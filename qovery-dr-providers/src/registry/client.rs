//! One registry: URL, auth (anonymous, basic, bearer token flow), errors.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult, SecretString};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;

/// The provider name in errors.
pub const PROVIDER: &str = "oci";

/// The manifest media types we accept, in order of preference. Without this
/// list docker-registry answers 404 to HEAD; with only the Docker type it
/// refuses OCI manifests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Credentials for a registry (secrets never print).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum RegistryAuth {
    /// No credentials (public or local registries).
    #[default]
    Anonymous,
    /// HTTP basic, also used to obtain bearer tokens (the flow ECR, Scaleway, GHCR and Docker
    /// Hub use; tested against a scripted registry, not those services).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: SecretString,
    },
    /// A static bearer token (a registry access token), sent as `Authorization: Bearer`.
    Bearer {
        /// The token.
        token: SecretString,
    },
    /// Amazon ECR: basic credentials from `GetAuthorizationToken`, refreshed before expiry.
    #[cfg(feature = "ecr")]
    Ecr(super::ecr::EcrCredentials),
}

/// The credential to send when no bearer token was issued for the scope.
enum Credential {
    None,
    Basic(String, SecretString),
    Bearer(SecretString),
}

/// A registry: its base URL (`https://123.dkr.ecr…` or `http://127.0.0.1:5001`) and credentials.
#[derive(Debug)]
pub struct Registry {
    pub(crate) base: url::Url,
    pub(crate) auth: RegistryAuth,
    pub(crate) client: reqwest::Client,
    /// Bearer tokens by scope.
    tokens: Mutex<BTreeMap<String, SecretString>>,
    limiter: crate::RateLimiter,
    /// The deadline of one API call (manifests, tokens, existence checks).
    pub(crate) api_timeout: Duration,
    /// Which side it is, for errors: `source registry`, `DR registry`.
    role: &'static str,
}

/// The deadline of one blob transfer request (a layer of gigabytes streams through it).
pub(crate) const BLOB_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Deserialize)]
struct TokenBody {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

pub(crate) fn err(kind: ErrorKind, op: &str, msg: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

/// Parses `Bearer realm="…",service="…",scope="…"`.
pub(crate) fn parse_challenge(header: &str) -> Option<BTreeMap<String, String>> {
    let rest = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "))?;
    let mut out = BTreeMap::new();
    let mut s = rest;
    while !s.is_empty() {
        let (k, after) = s.split_once('=')?;
        let after = after.trim_start();
        let (v, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        out.insert(k.trim().to_owned(), v.to_owned());
        s = tail.trim_start_matches(',').trim_start();
    }
    Some(out)
}

impl Registry {
    /// A registry at `base` with `auth`, using `client`.
    pub fn new(base: url::Url, auth: RegistryAuth, client: reqwest::Client) -> Self {
        Self {
            base,
            auth,
            client,
            tokens: Mutex::new(BTreeMap::new()),
            limiter: crate::RateLimiter::unlimited(),
            api_timeout: BLOB_TIMEOUT,
            role: "registry",
        }
    }

    /// The same registry named `role` in errors (`source registry`, `DR registry`).
    pub(crate) fn with_role(mut self, role: &'static str) -> Self {
        self.role = role;
        self
    }

    /// Whether `host` (as images name it) is served at this registry's URL. Docker Hub's
    /// images say `docker.io`, its API is `registry-1.docker.io`.
    pub(crate) fn serves(&self, host: &str) -> bool {
        let url_host = self.host();
        url_host == host || (host == "docker.io" && url_host == "registry-1.docker.io")
    }

    /// `host[:port]`.
    pub(crate) fn host(&self) -> String {
        match (self.base.host_str(), self.base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => self.base.to_string(),
        }
    }

    /// `e` naming this registry (side and host), what `path` designates (repository,
    /// blob, manifest), and for a refused authentication whether credentials were sent.
    pub(crate) fn name(&self, e: ProviderError, path: Option<&str>) -> ProviderError {
        let credentials = match (e.kind(), &self.auth) {
            (ErrorKind::Unauthenticated, RegistryAuth::Anonymous) => {
                " (no credentials are configured for it: set this registry's `auth` in the plan)"
            }
            (ErrorKind::Unauthenticated, _) => " (it refused the credentials configured for it)",
            _ => "",
        };
        let subject = path.and_then(subject_of).map(|s| format!(", {s}")).unwrap_or_default();
        e.with_context(format!("{} {}{credentials}{subject}", self.role, self.host()))
    }

    /// The error for a refusing answer, naming this registry and what was asked.
    pub(crate) async fn refused(&self, op: &str, resp: Response) -> ProviderError {
        let path = resp.url().path().to_owned();
        self.name(status_error(op, resp).await, Some(&path))
    }

    /// The error for a request that got no answer, naming this registry and what was asked.
    pub(crate) fn unreachable(&self, op: &str, e: reqwest::Error) -> ProviderError {
        let path = e.url().map(|u| u.path().to_owned());
        self.name(transport(op, e), path.as_deref())
    }

    /// Its client-side request budget.
    /// Takes a request slot from this registry's limiter: every request to it goes
    /// through here, the token endpoint's and the upload's included.
    pub(crate) async fn pace(&self, op: &str) -> ProviderResult<()> {
        self.limiter.acquire(PROVIDER, op).await
    }

    pub(crate) fn limiter_clone(&self) -> crate::RateLimiter {
        self.limiter.clone()
    }

    /// The same registry with a client-side request budget.
    pub(crate) fn with_limiter(&self, limiter: crate::RateLimiter) -> Self {
        Self {
            limiter,
            api_timeout: self.api_timeout,
            role: self.role,
            ..Self::new(self.base.clone(), self.auth.clone(), self.client.clone())
        }
    }

    pub(crate) fn url(&self, path: &str) -> ProviderResult<url::Url> {
        self.base.join(path).map_err(|e| err(ErrorKind::InvalidInput, "url", format!("{path}: {e}")))
    }

    /// The credential of this registry's auth, fetching an ECR token when needed.
    async fn credential(&self, op: &str) -> ProviderResult<Credential> {
        let _ = op; // used by the ECR arm only
        Ok(match &self.auth {
            RegistryAuth::Anonymous => Credential::None,
            RegistryAuth::Basic { username, password } => Credential::Basic(username.clone(), password.clone()),
            RegistryAuth::Bearer { token } => Credential::Bearer(token.clone()),
            #[cfg(feature = "ecr")]
            RegistryAuth::Ecr(ecr) => {
                let (u, p) = ecr.basic(op).await?;
                Credential::Basic(u, p)
            }
        })
    }

    /// The Authorization header value for `scope`, if any.
    pub(crate) async fn auth_header(&self, scope: &str, op: &str) -> ProviderResult<Option<String>> {
        let token = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(scope).cloned();
        if let Some(t) = token {
            return Ok(Some(format!("Bearer {}", t.expose())));
        }
        Ok(match self.credential(op).await? {
            Credential::None => None,
            Credential::Basic(username, password) => {
                Some(format!("Basic {}", base64(&format!("{username}:{}", password.expose()))))
            }
            Credential::Bearer(t) => Some(format!("Bearer {}", t.expose())),
        })
    }

    async fn authorize(&self, req: RequestBuilder, scope: &str, op: &str) -> ProviderResult<RequestBuilder> {
        Ok(match self.auth_header(scope, op).await? {
            Some(v) => req.header(reqwest::header::AUTHORIZATION, v),
            None => req,
        })
    }

    /// Sends a request built by `make`, answering a bearer challenge once.
    pub(crate) async fn send(
        &self,
        op: &str,
        scope: &str,
        make: impl Fn() -> RequestBuilder,
    ) -> ProviderResult<Response> {
        for round in 0..2 {
            self.pace(op).await?;
            let resp = self.authorize(make(), scope, op).await?.send().await.map_err(|e| self.unreachable(op, e))?;
            if resp.status() == StatusCode::UNAUTHORIZED && round == 0 {
                let challenge = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if let Some(c) = challenge.as_deref().and_then(parse_challenge) {
                    self.fetch_token(op, scope, &c).await?;
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(self.name(err(ErrorKind::Unauthenticated, op, "the registry refused the token it issued"), None))
    }

    async fn fetch_token(&self, op: &str, scope: &str, challenge: &BTreeMap<String, String>) -> ProviderResult<()> {
        let realm = challenge
            .get("realm")
            .ok_or_else(|| err(ErrorKind::Unauthenticated, op, "bearer challenge without realm"))?;
        let mut url = url::Url::parse(realm)
            .map_err(|e| err(ErrorKind::InvalidConfig, op, format!("bad token realm {realm}: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = challenge.get("service") {
                q.append_pair("service", s);
            }
            q.append_pair("scope", challenge.get("scope").map_or(scope, String::as_str));
        }
        let mut req = self.client.get(url);
        if let Credential::Basic(username, password) = self.credential(op).await? {
            req = req.basic_auth(username, Some(password.expose()));
        }
        self.pace(op).await?;
        let resp = req.send().await.map_err(|e| self.unreachable(op, e))?;
        if !resp.status().is_success() {
            return Err(self.refused(op, resp).await);
        }
        let bytes = crate::http::body(resp, 1024 * 1024)
            .await
            .map_err(|e| err(ErrorKind::Transient, op, format!("token response: {e}")))?;
        let body: TokenBody = serde_json::from_slice(&bytes)
            .map_err(|e| err(ErrorKind::Transient, op, format!("token response: {e}")))?;
        let token = body
            .token
            .or(body.access_token)
            .ok_or_else(|| err(ErrorKind::Unauthenticated, op, "the token endpoint returned no token"))?;
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(scope.to_owned(), SecretString::new(token));
        Ok(())
    }

    /// A plain request builder for `method path`, an API call (bounded by the API timeout).
    pub(crate) fn request(&self, method: Method, path: &str) -> ProviderResult<impl Fn() -> RequestBuilder + '_> {
        let url = self.url(path)?;
        Ok(move || self.client.request(method.clone(), url.clone()).timeout(self.api_timeout))
    }

    /// A request builder for a blob transfer (bounded by [`BLOB_TIMEOUT`]).
    pub(crate) fn blob_request(&self, method: Method, path: &str) -> ProviderResult<impl Fn() -> RequestBuilder + '_> {
        let url = self.url(path)?;
        Ok(move || self.client.request(method.clone(), url.clone()).timeout(BLOB_TIMEOUT))
    }
}

/// Standard base64 (for the Basic header on requests built by hand).
fn base64(input: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = input.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What a registry API path designates: `repository shop/api, blob sha256:…`.
fn subject_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    for (marker, what) in
        [("/blobs/uploads", "upload"), ("/blobs/", "blob"), ("/manifests/", "manifest"), ("/tags/", "tags")]
    {
        if let Some((repo, tail)) = rest.split_once(marker) {
            let item = tail.trim_start_matches('/').split('/').next().unwrap_or_default();
            return Some(if item.is_empty() || what == "upload" || what == "tags" {
                format!("repository {repo}, {what}")
            } else {
                format!("repository {repo}, {what} {item}")
            });
        }
    }
    None
}

pub(crate) fn transport(op: &str, e: reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() {
        ErrorKind::Transient
    } else {
        ErrorKind::Indeterminate
    };
    let e = e.without_url();
    err(kind, op, e.to_string()).with_source(e)
}

#[derive(Debug, Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Maps a registry error answer (`{"errors":[{"code":…}]}`) to a kind.
pub(crate) async fn status_error(op: &str, resp: Response) -> ProviderError {
    let status = resp.status();
    let retry_after = crate::http::retry_after(&resp);
    let text = crate::http::text(resp, 64 * 1024).await.unwrap_or_default();
    let first = serde_json::from_str::<ErrorsBody>(&text).ok().and_then(|b| b.errors.into_iter().next());
    let code = first.as_ref().map(|e| e.code.as_str()).unwrap_or("");
    let kind = match (status, code) {
        (_, "NAME_UNKNOWN" | "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN") => ErrorKind::NotFound,
        (_, "DIGEST_INVALID" | "MANIFEST_INVALID" | "MANIFEST_BLOB_UNKNOWN" | "SIZE_INVALID" | "NAME_INVALID") => {
            ErrorKind::InvalidInput
        }
        (StatusCode::UNAUTHORIZED, _) => ErrorKind::Unauthenticated,
        (StatusCode::FORBIDDEN, _) => ErrorKind::PermissionDenied,
        (StatusCode::NOT_FOUND, _) => ErrorKind::NotFound,
        (StatusCode::TOO_MANY_REQUESTS, _) => ErrorKind::RateLimited,
        (s, _) if s.is_server_error() => ErrorKind::Transient,
        _ => ErrorKind::InvalidInput,
    };
    let detail =
        first.map(|e| format!("{}: {}", e.code, e.message)).unwrap_or_else(|| text.chars().take(200).collect());
    let e = err(kind, op, format!("HTTP {status}: {detail}"));
    match retry_after {
        Some(d) => e.with_retry_after(d),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_path_names_its_repository_and_object() {
        assert_eq!(subject_of("/v2/shop/api/blobs/sha256:ab").as_deref(), Some("repository shop/api, blob sha256:ab"));
        assert_eq!(subject_of("/v2/shop/api/manifests/v1").as_deref(), Some("repository shop/api, manifest v1"));
        assert_eq!(subject_of("/v2/shop/api/blobs/uploads/").as_deref(), Some("repository shop/api, upload"));
        assert_eq!(subject_of("/v2/shop/api/blobs/uploads/9f1c").as_deref(), Some("repository shop/api, upload"));
        assert_eq!(subject_of("/v2/shop/tags/list").as_deref(), Some("repository shop, tags"));
        assert_eq!(subject_of("/token"), None);
    }

    #[test]
    fn parses_bearer_challenges() {
        let c = parse_challenge(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#).unwrap();
        assert_eq!(c["realm"], "https://auth.docker.io/token");
        assert_eq!(c["service"], "registry.docker.io");
        assert_eq!(c["scope"], "repository:library/nginx:pull");
        assert!(parse_challenge("Basic realm=x").is_none());
    }
}
