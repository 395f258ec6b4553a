//! `OciRegistrySync`: parity by digest and streaming copies over the OCI
//! distribution API.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use qovery_dr_core::provider::{
    CopyReport, ImageCopy, ImageParity, RegistryCapabilities, RegistryMapping, RegistrySync,
};
use qovery_dr_core::resilience::{RetryConfig, retry};
use qovery_dr_core::{Digest, ErrorKind, ImageRef, ProviderError, ProviderResult, async_trait};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::client::{MANIFEST_ACCEPT, PROVIDER, Registry, err};

fn sha256_digest(bytes: &[u8]) -> Digest {
    Digest::from_sha256(Sha256::digest(bytes).into())
}

/// A manifest as fetched.
#[derive(Debug, Clone)]
struct Manifest {
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
    json: Value,
}

impl Manifest {
    /// A manifest from the bytes a registry served (already checked against `digest`).
    fn parse(bytes: Vec<u8>, media_type: String, digest: Digest) -> Result<Manifest, serde_json::Error> {
        let json: Value = serde_json::from_slice(&bytes)?;
        let media_type = json["mediaType"].as_str().map(str::to_owned).unwrap_or(media_type);
        Ok(Manifest { bytes, media_type, digest, json })
    }

    fn is_index(&self) -> bool {
        self.media_type.contains("index")
            || self.media_type.contains("manifest.list")
            || self.json.get("manifests").is_some()
    }

    fn children(&self) -> Vec<Digest> {
        self.json["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["digest"].as_str()?.parse().ok())
            .collect()
    }

    /// (digest, size) of the config and layers.
    fn blobs(&self) -> Vec<(Digest, u64)> {
        let one = |v: &Value| Some((v["digest"].as_str()?.parse().ok()?, v["size"].as_u64().unwrap_or(0)));
        let mut out: Vec<(Digest, u64)> = one(&self.json["config"]).into_iter().collect();
        out.extend(self.json["layers"].as_array().into_iter().flatten().filter_map(one));
        out
    }
}

/// Blobs copied at once unless [`OciRegistrySync::with_concurrency`] says otherwise.
///
/// From the sweep in `cargo bench -p qovery-dr-benches --bench registry_vs_skopeo`
/// (221 layers of 10–50 KiB over 20 tags, every request to the DR registry held 20 ms
/// as over a cross-region link; medians of 5 runs, two bench runs): 4 at once took
/// 7.8 / 7.3 s, 8 took 5.5 / 4.8 s, 16 took 4.4 / 4.3 s, 32 took 4.4 / 3.6 s. The
/// smallest value within 5 % of the fastest is chosen (less load on the registries
/// and their rate limits for the same speed): 32 by the second run. On loopback
/// the values differ by less than the noise.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncReport {
    /// Images (tags) synced.
    pub images: u32,
    /// Of those, the images the destination already served with the source's digest:
    /// nothing was read or written for them beyond the two manifest digests.
    pub images_in_parity: u32,
    /// Each image: where it went and with which digest, in the order given.
    pub per_image: Vec<ImageSynced>,
    /// Blobs streamed from source to destination.
    pub blobs_copied: u32,
    /// Blobs mounted across repositories instead of copied.
    pub blobs_mounted: u32,
    /// Blobs the destination already had.
    pub blobs_skipped: u32,
    /// Bytes streamed.
    pub bytes_copied: u64,
}

/// One image of a [`SyncReport`]. A blob several images share is counted once, on the
/// first image (in the order given) that needed it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageSynced {
    /// The image in the source registry.
    pub source: ImageRef,
    /// Its reference in the DR registry.
    pub destination: ImageRef,
    /// The digest both serve now.
    pub digest: Digest,
    /// Whether the DR registry already served it (nothing was written for it).
    pub was_in_parity: bool,
    /// Blobs streamed for it.
    pub blobs_copied: u32,
    /// Blobs mounted for it from another repository.
    pub blobs_mounted: u32,
    /// Blobs of it the destination already had.
    pub blobs_skipped: u32,
    /// Bytes streamed for it.
    pub bytes_copied: u64,
}

impl ImageSynced {
    fn new(source: ImageRef, destination: ImageRef, digest: Digest, was_in_parity: bool) -> Self {
        Self {
            source,
            destination,
            digest,
            was_in_parity,
            blobs_copied: 0,
            blobs_mounted: 0,
            blobs_skipped: 0,
            bytes_copied: 0,
        }
    }

    fn add(&mut self, blob: &SyncReport) {
        self.blobs_copied += blob.blobs_copied;
        self.blobs_mounted += blob.blobs_mounted;
        self.blobs_skipped += blob.blobs_skipped;
        self.bytes_copied += blob.bytes_copied;
    }
}

/// A batch image by image: what was synced, or why not.
struct Batch {
    totals: SyncReport,
    /// Per image given, in order.
    outcomes: Vec<Result<ImageSynced, ProviderError>>,
}

/// Errors after which no other request of a sync can succeed: every image would be
/// refused the same way, so the sync stops at the first (the trait's batch rule).
fn stops_the_sync(e: &ProviderError) -> bool {
    ImageCopy::fails_the_batch(e.kind())
}

/// The same error again, for a second image that failed for the same reason (a blob
/// they share): a [`ProviderError`] is not `Clone` (it may hold its cause).
fn again(e: &ProviderError) -> ProviderError {
    let copy = ProviderError::new(e.kind(), e.provider().to_owned(), e.operation().to_owned(), e.message().to_owned());
    match e.retry_after() {
        Some(after) => copy.with_retry_after(after),
        None => copy,
    }
}

/// Keeps a DR registry in parity with the primary one, by digest.
///
/// ```
/// use qovery_dr_core::provider::{RegistryLocation, RegistryMapping};
/// use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
/// let mapping = RegistryMapping::new(
///     RegistryLocation { host: "primary.example.com".into(), prefix: None },
///     RegistryLocation { host: "dr.example.com".into(), prefix: Some("mirror".into()) },
/// );
/// let sync = OciRegistrySync::new(
///     "https://primary.example.com".parse().unwrap(), RegistryAuth::Anonymous,
///     "https://dr.example.com".parse().unwrap(), RegistryAuth::Anonymous,
///     mapping,
/// );
/// assert_eq!(sync.concurrency(), 32);
/// ```
#[derive(Debug, Clone)]
pub struct OciRegistrySync {
    source: Arc<Registry>,
    dest: Arc<Registry>,
    mapping: RegistryMapping,
    concurrency: usize,
    retry: RetryConfig,
    list_page: usize,
}

/// A failure of an idempotent registry request made retryable: a blob upload or a
/// manifest PUT repeated writes the same content-addressed bytes, so "the request may
/// have been applied" (a connection cut mid-body) is no reason not to repeat it.
fn repeatable(e: ProviderError) -> ProviderError {
    if e.kind() == ErrorKind::Indeterminate {
        ProviderError::new(ErrorKind::Transient, PROVIDER, e.operation(), e.message().to_owned())
    } else {
        e
    }
}

impl OciRegistrySync {
    /// A sync from the registry at `source` to the one at `dest`, remapping with `mapping`.
    pub fn new(
        source: url::Url,
        source_auth: super::RegistryAuth,
        dest: url::Url,
        dest_auth: super::RegistryAuth,
        mapping: RegistryMapping,
    ) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .user_agent(concat!("qovery-dr/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(DEFAULT_CONCURRENCY)
            .build()
            .unwrap_or_default();
        Self {
            source: Arc::new(Registry::new(source, source_auth, client.clone()).with_role("source registry")),
            dest: Arc::new(Registry::new(dest, dest_auth, client).with_role("DR registry")),
            mapping,
            concurrency: DEFAULT_CONCURRENCY,
            retry: RetryConfig::new(4, std::time::Duration::from_millis(500)),
            list_page: 100,
        }
    }

    /// Entries asked per page when listing repositories and tags (default 100; the
    /// registry may answer fewer, and pages on through `Link` headers).
    pub fn with_list_page_size(mut self, n: usize) -> Self {
        self.list_page = n.max(1);
        self
    }

    pub(crate) fn list_page_size(&self) -> usize {
        self.list_page
    }

    /// How each blob copy and each manifest read or write is retried when it fails
    /// transiently (default: 4 attempts, the first retry after about 500 ms): a registry
    /// restarted mid-sync costs the copies in flight a retry, not the whole sync. Errors
    /// that repeat (a refused credential, a corrupt blob) are not retried.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Deadlines of the registry API calls (manifests, tokens, existence checks) and the
    /// largest manifest read; blob transfers keep their own, longer deadline. Default: 300 s.
    pub fn with_timeouts(mut self, timeouts: qovery_dr_core::resilience::TimeoutConfig) -> Self {
        for reg in [&mut self.source, &mut self.dest] {
            let mut r = reg.with_limiter(reg.limiter_clone());
            r.api_timeout = timeouts.request;
            *reg = Arc::new(r);
        }
        self
    }

    /// Client-side request budgets for the source and destination registries (default: none).
    /// Docker Hub limits pulls per account and period; ECR and Artifact Registry limit API
    /// calls per second: give each registry its limit, and share a limiter between syncs
    /// that use the same registry.
    pub fn with_rate_limits(mut self, source: crate::RateLimiter, dest: crate::RateLimiter) -> Self {
        self.source = Arc::new(self.source.with_limiter(source));
        self.dest = Arc::new(self.dest.with_limiter(dest));
        self
    }

    /// Blobs copied at once (default [`DEFAULT_CONCURRENCY`], 32).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The source registry (listing).
    pub(crate) fn source_registry(&self) -> &Registry {
        &self.source
    }

    /// The host the mapping names the source images with.
    pub(crate) fn source_host(&self) -> &str {
        &self.mapping.from.host
    }

    /// Blobs copied at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn same_registry(&self) -> bool {
        self.source.base == self.dest.base
    }

    async fn head_manifest(reg: &Registry, repo: &str, reference: &str, op: &str) -> ProviderResult<Option<Digest>> {
        let scope = format!("repository:{repo}:pull");
        let make = reg.request(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = reg.send(op, &scope, || make().header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)).await?;
        match resp.status() {
            s if s.is_success() => {
                let d = resp
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                match d {
                    Some(d) => Ok(Some(d)),
                    // No digest header: fetch the bytes and hash them.
                    None => Ok(Some(Self::get_manifest(reg, repo, reference, op).await?.digest)),
                }
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(reg.refused(op, resp).await),
        }
    }

    async fn get_manifest(reg: &Registry, repo: &str, reference: &str, op: &str) -> ProviderResult<Manifest> {
        let scope = format!("repository:{repo}:pull");
        let make = reg.request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = reg.send(op, &scope, || make().header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)).await?;
        if !resp.status().is_success() {
            return Err(reg.refused(op, resp).await);
        }
        let media_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let header: Option<Digest> =
            resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        // The distribution spec lets registries refuse manifests over 4 MiB: 16 is generous.
        let bytes = crate::http::body(resp, 16 * 1024 * 1024)
            .await
            .map_err(|e| err(ErrorKind::Transient, op, format!("manifest {repo}@{reference}: {e}")))?;
        let digest = sha256_digest(&bytes);
        for expected in header.iter().chain(reference.parse::<Digest>().ok().iter()) {
            if expected != &digest {
                return Err(err(
                    ErrorKind::InvalidInput,
                    op,
                    format!("manifest {repo}@{reference}: DIGEST_INVALID: the bytes hash to {digest}, not {expected}"),
                ));
            }
        }
        Manifest::parse(bytes, media_type, digest)
            .map_err(|e| err(ErrorKind::InvalidInput, op, format!("manifest {repo}@{reference} is not JSON: {e}")))
    }

    async fn blob_exists(reg: &Registry, repo: &str, digest: &Digest, op: &str) -> ProviderResult<bool> {
        let make = reg.request(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))?;
        let resp = reg.send(op, &format!("repository:{repo}:pull"), make).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(reg.refused(op, resp).await),
        }
    }

    /// Cross-repository mount within `reg`: true when it was mounted.
    async fn mount(reg: &Registry, repo: &str, from: &str, digest: &Digest, op: &str) -> ProviderResult<bool> {
        let make = reg.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"))?;
        let resp = reg.send(op, &format!("repository:{repo}:pull,push repository:{from}:pull"), make).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            s if s.is_success() => Ok(false), // an upload session instead: fall back to streaming
            _ => Err(reg.refused(op, resp).await),
        }
    }

    /// Streams one blob from the source into the destination, verifying its digest on the way.
    async fn stream_blob(&self, src_repo: &str, dst_repo: &str, digest: &Digest, op: &str) -> ProviderResult<u64> {
        let get = self.source.blob_request(Method::GET, &format!("/v2/{src_repo}/blobs/{digest}"))?;
        let resp = self.source.send(op, &format!("repository:{src_repo}:pull"), get).await?;
        if !resp.status().is_success() {
            return Err(self.source.refused(op, resp).await);
        }
        let start = self.dest.request(Method::POST, &format!("/v2/{dst_repo}/blobs/uploads/"))?;
        let scope = format!("repository:{dst_repo}:pull,push");
        let session = self.dest.send(op, &scope, start).await?;
        if session.status() != StatusCode::ACCEPTED {
            return Err(self.dest.refused(op, session).await);
        }
        let upload = location(&self.dest, &session, op)?;
        match self.upload_blob(resp, upload.clone(), &scope, src_repo, digest, op).await {
            Ok(bytes) => Ok(bytes),
            Err(e) => {
                self.cancel_upload(upload, &scope, op).await;
                Err(e)
            }
        }
    }

    /// Cancels an upload session this sync started and could not finish, so that a
    /// failed copy leaves no open session in the DR registry (best effort: the error
    /// that made it fail is what the caller reports).
    async fn cancel_upload(&self, upload: url::Url, scope: &str, op: &str) {
        let delete = self.dest.client.delete(upload);
        let delete = match self.dest.auth_header(scope, op).await {
            Ok(Some(v)) => delete.header(reqwest::header::AUTHORIZATION, v),
            _ => delete,
        };
        if let Err(e) = self.dest.pace(op).await {
            tracing::debug!(error = %e, "not cancelling an upload session: the DR registry's rate limit blocks it");
            return;
        }
        if let Err(e) = delete.send().await {
            tracing::debug!(error = %e.without_url(), "cancelling an upload session failed");
        }
    }

    /// Streams the source's answer `resp` into the upload session `upload` in one
    /// monolithic `PUT …?digest=` (the distribution spec's first upload method, one
    /// request instead of a `PATCH` and a `PUT`), hashing the bytes on the way. The
    /// registry commits the blob only if its bytes hash to the digest; a corrupt source
    /// blob is reported as such whatever the registry answered.
    async fn upload_blob(
        &self,
        resp: reqwest::Response,
        upload: url::Url,
        scope: &str,
        src_repo: &str,
        digest: &Digest,
        op: &str,
    ) -> ProviderResult<u64> {
        // The body streams: no layer is held in memory; the digest is computed on the way.
        let length = resp.content_length();
        let hasher = Arc::new(Mutex::new(Sha256::new()));
        let size = Arc::new(Mutex::new(0u64));
        let (h, n) = (Arc::clone(&hasher), Arc::clone(&size));
        let stream = resp.bytes_stream().map(move |chunk| {
            if let Ok(c) = &chunk {
                h.lock().unwrap_or_else(std::sync::PoisonError::into_inner).update(c);
                *n.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += c.len() as u64;
            }
            chunk
        });
        let mut put_url = upload;
        put_url.query_pairs_mut().append_pair("digest", &digest.to_string());
        let put = self
            .dest
            .client
            .put(put_url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream));
        // Registries that refuse a chunked body (ECR among them) get the length the source announced.
        let put = match length {
            Some(len) => put.header(reqwest::header::CONTENT_LENGTH, len),
            None => put,
        };
        let put = match self.dest.auth_header(scope, op).await? {
            Some(v) => put.header(reqwest::header::AUTHORIZATION, v),
            None => put,
        };
        self.dest.pace(op).await?;
        let done = put.send().await.map_err(|e| self.dest.unreachable(op, e))?;
        let got = Digest::from_sha256(
            hasher.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().finalize().into(),
        );
        if &got != digest {
            let verdict = if done.status() == StatusCode::CREATED {
                "the DR registry accepted it anyway (it does not verify digests): delete that blob there"
            } else {
                "the DR registry refused to commit it"
            };
            return Err(err(
                ErrorKind::InvalidInput,
                op,
                format!("blob {digest} of {src_repo} is corrupt: its bytes hash to {got} (DIGEST_INVALID); {verdict}"),
            ));
        }
        if done.status() != StatusCode::CREATED {
            return Err(self.dest.refused(op, done).await);
        }
        let bytes = *size.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(bytes)
    }

    async fn put_manifest(&self, repo: &str, reference: &str, m: &Manifest, op: &str) -> ProviderResult<()> {
        let make = self.dest.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .dest
            .send(op, &format!("repository:{repo}:pull,push"), || {
                make().header(reqwest::header::CONTENT_TYPE, m.media_type.clone()).body(m.bytes.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.dest.refused(op, resp).await);
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
            && d != m.digest
        {
            return Err(err(
                ErrorKind::Transient,
                op,
                format!("{repo}:{reference}: the DR registry stored digest {d}, the source has {}", m.digest),
            ));
        }
        Ok(())
    }

    /// The mapping's hosts are the registries this sync talks to: a plan states each
    /// registry's host in the mapping and again in its URL, and a mismatch would check
    /// (or fill) one registry while the engine points services at another.
    fn check_hosts(&self, op: &str) -> ProviderResult<()> {
        for (side, reg, host) in
            [("source", &self.source, &self.mapping.from.host), ("DR", &self.dest, &self.mapping.to.host)]
        {
            if !reg.serves(host) {
                return Err(err(
                    ErrorKind::InvalidConfig,
                    op,
                    format!(
                        "the {side} registry's images are named {host}, but its URL is {}: make the registry's host and url name the same server",
                        reg.host()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// One blob into every destination repository that needs it: present → skipped;
    /// in the same registry → mounted; else streamed once and mounted into the others.
    async fn sync_blob(&self, digest: &Digest, src_repo: &str, repos: &BTreeSet<String>) -> ProviderResult<SyncReport> {
        const OP: &str = "sync";
        let mut r = SyncReport::default();
        let mut have: Option<String> = None;
        let mut missing = Vec::new();
        for repo in repos {
            if Self::blob_exists(&self.dest, repo, digest, OP).await? {
                r.blobs_skipped += 1;
                have.get_or_insert(repo.clone());
            } else {
                missing.push(repo.clone());
            }
        }
        for repo in missing {
            if let Some(from) = have.clone() {
                if Self::mount(&self.dest, &repo, &from, digest, OP).await? {
                    r.blobs_mounted += 1;
                    continue;
                }
            } else if self.same_registry() && Self::mount(&self.dest, &repo, src_repo, digest, OP).await? {
                r.blobs_mounted += 1;
                have = Some(repo);
                continue;
            }
            let bytes = self.stream_blob(src_repo, &repo, digest, OP).await?;
            r.blobs_copied += 1;
            r.bytes_copied += bytes;
            have = Some(repo);
        }
        Ok(r)
    }

    /// A manifest of the source, retried when it fails transiently.
    async fn read_manifest(&self, repo: &str, reference: &str, op: &str) -> ProviderResult<Manifest> {
        retry(&self.retry, |_| true, |_| Self::get_manifest(&self.source, repo, reference, op)).await
    }

    /// Syncs many images at once: blobs deduplicated across all of them and
    /// copied concurrently (bounded), manifests pushed last, digests checked.
    ///
    /// All or nothing in what it returns: when any image could not be synced, the error
    /// names each one that failed and why (the others are synced all the same). For each
    /// image's own outcome, use [`RegistrySync::copy_all`].
    pub async fn sync_all(&self, images: &[ImageRef]) -> ProviderResult<SyncReport> {
        let batch = self.sync_batch(images).await?;
        let mut report = batch.totals;
        let mut failed = Vec::new();
        for (image, outcome) in images.iter().zip(batch.outcomes) {
            match outcome {
                Ok(synced) => report.per_image.push(synced),
                Err(e) => failed.push((image, e)),
            }
        }
        let Some((_, first)) = failed.first() else { return Ok(report) };
        let list = failed.iter().map(|(i, e)| format!("{i}: {} ({})", e.message(), e.kind())).collect::<Vec<_>>();
        let e = ProviderError::new(
            first.kind(),
            PROVIDER,
            "sync",
            format!(
                "{} of {} images could not be synced ({} were): {}",
                failed.len(),
                images.len(),
                images.len() - failed.len(),
                list.join("; ")
            ),
        );
        Err(match first.retry_after() {
            Some(after) => e.with_retry_after(after),
            None => e,
        })
    }

    /// The batch behind [`sync_all`](Self::sync_all) and [`copy_all`](RegistrySync::copy_all):
    /// `Err` only when the whole sync stops (a refused credential, a wrong configuration).
    async fn sync_batch(&self, images: &[ImageRef]) -> ProviderResult<Batch> {
        const OP: &str = "sync";
        self.check_hosts(OP)?;
        let mut totals = SyncReport::default();
        let mut outcomes: Vec<Result<ImageSynced, ProviderError>> = Vec::with_capacity(images.len());
        // 1. Manifests (children of indexes first), and the blobs each destination repository needs.
        let mut pushes: Vec<(usize, String, String, Manifest)> = Vec::new();
        let mut needs: BTreeMap<Digest, (String, BTreeSet<String>, Vec<usize>)> = BTreeMap::new();
        for (index, image) in images.iter().enumerate() {
            match self.plan_image(index, image, &mut pushes, &mut needs).await {
                Ok(synced) => {
                    if synced.was_in_parity {
                        totals.images_in_parity += 1;
                    }
                    outcomes.push(Ok(synced));
                }
                Err(e) if stops_the_sync(&e) => return Err(e),
                Err(e) => outcomes.push(Err(e)),
            }
        }
        // 2. Blobs: present → skip; same registry → mount; else stream once and mount into the other repositories.
        let permits = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut set = tokio::task::JoinSet::new();
        for (digest, (src_repo, repos, owners)) in needs {
            let this = self.clone();
            let permits = Arc::clone(&permits);
            set.spawn(async move {
                let _p = permits.acquire_owned().await;
                let r = retry(
                    &this.retry,
                    |_| true,
                    |_| async { this.sync_blob(&digest, &src_repo, &repos).await.map_err(repeatable) },
                )
                .await;
                (owners, r)
            });
        }
        while let Some(joined) = set.join_next().await {
            let (owners, result) = joined.unwrap_or_else(|e| {
                (Vec::new(), Err(err(ErrorKind::Transient, OP, format!("a copy task ended abnormally: {e}"))))
            });
            match result {
                Ok(r) => {
                    totals.blobs_copied += r.blobs_copied;
                    totals.blobs_mounted += r.blobs_mounted;
                    totals.blobs_skipped += r.blobs_skipped;
                    totals.bytes_copied += r.bytes_copied;
                    if let Some(Ok(first)) = owners.first().and_then(|&i| outcomes.get_mut(i)) {
                        first.add(&r);
                    }
                }
                Err(e) if stops_the_sync(&e) => {
                    // Every other copy would be refused the same way: stop them now.
                    set.abort_all();
                    return Err(e);
                }
                Err(e) if owners.is_empty() => {
                    // A task that panicked: which images it served is lost, so none is trusted.
                    for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
                        *o = Err(again(&e));
                    }
                }
                Err(e) => fail(&mut outcomes, &owners, e),
            }
        }
        // 3. Manifests last (children before their index), each verified; none for an image
        //    whose blobs did not all arrive.
        for (index, repo, reference, m) in &pushes {
            if !matches!(outcomes.get(*index), Some(Ok(_))) {
                continue;
            }
            let pushed = retry(
                &self.retry,
                |_| true,
                |_| async { self.put_manifest(repo, reference, m, OP).await.map_err(repeatable) },
            )
            .await;
            match pushed {
                Ok(()) => {}
                Err(e) if stops_the_sync(&e) => return Err(e),
                Err(e) => fail(&mut outcomes, &[*index], e),
            }
        }
        totals.images = u32::try_from(outcomes.iter().filter(|o| o.is_ok()).count()).unwrap_or(u32::MAX);
        Ok(Batch { totals, outcomes })
    }

    /// Reads one image's manifests and records what the destination needs for it; an
    /// image the destination already serves with the source's digest needs nothing.
    async fn plan_image(
        &self,
        index: usize,
        image: &ImageRef,
        pushes: &mut Vec<(usize, String, String, Manifest)>,
        needs: &mut BTreeMap<Digest, (String, BTreeSet<String>, Vec<usize>)>,
    ) -> ProviderResult<ImageSynced> {
        const OP: &str = "sync";
        let dr = self.mapping.remap(image)?;
        let (src_repo, dst_repo) = (image.repository().to_owned(), dr.repository().to_owned());
        let top = self.read_manifest(&src_repo, &image.reference(), OP).await?;
        // In parity already: no blob is checked and the tag is not written again
        // (registries with immutable tags refuse a re-PUT, even of the same bytes).
        let reference = image.reference();
        let present =
            retry(&self.retry, |_| true, |_| Self::head_manifest(&self.dest, &dst_repo, &reference, OP)).await?;
        let was_in_parity = present.as_ref() == Some(&top.digest);
        let synced = ImageSynced::new(image.clone(), dr.clone(), top.digest.clone(), was_in_parity);
        if was_in_parity {
            return Ok(synced);
        }
        let mut leaves = Vec::new();
        let mut children = Vec::new();
        if top.is_index() {
            for child in top.children() {
                let m = self.read_manifest(&src_repo, &child.to_string(), OP).await?;
                children.push((index, dst_repo.clone(), child.to_string(), m.clone()));
                leaves.push(m);
            }
        } else {
            leaves.push(top.clone());
        }
        for leaf in &leaves {
            for (d, _size) in leaf.blobs() {
                let e = needs.entry(d).or_insert_with(|| (src_repo.clone(), BTreeSet::new(), Vec::new()));
                e.1.insert(dst_repo.clone());
                if !e.2.contains(&index) {
                    e.2.push(index);
                }
            }
        }
        pushes.extend(children);
        pushes.push((index, dst_repo, image.reference(), top));
        Ok(synced)
    }
}

/// Marks each image of `owners` not failed yet as failed with `e` (the last keeps the
/// error itself, the others a copy).
fn fail(outcomes: &mut [Result<ImageSynced, ProviderError>], owners: &[usize], e: ProviderError) {
    let targets: Vec<usize> = owners.iter().copied().filter(|&i| matches!(outcomes.get(i), Some(Ok(_)))).collect();
    let Some((&last, rest)) = targets.split_last() else { return };
    for &i in rest {
        if let Some(slot) = outcomes.get_mut(i) {
            *slot = Err(again(&e));
        }
    }
    if let Some(slot) = outcomes.get_mut(last) {
        *slot = Err(e);
    }
}

fn location(reg: &Registry, resp: &reqwest::Response, op: &str) -> ProviderResult<url::Url> {
    let loc = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| err(ErrorKind::Transient, op, "upload session without Location"))?;
    reg.url(loc)
}

#[async_trait]
impl RegistrySync for OciRegistrySync {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> RegistryCapabilities {
        RegistryCapabilities::default().with_copy(true).with_multi_arch(true).with_cross_repository_mount(true)
    }

    fn planes(&self) -> qovery_dr_core::stability::Planes {
        qovery_dr_core::stability::catalogue::registries(&self.mapping.from.host, &self.mapping.to.host)
    }

    async fn parity(&self, image: &ImageRef) -> ProviderResult<ImageParity> {
        const OP: &str = "parity";
        self.check_hosts(OP)?;
        let dr = self.mapping.remap(image)?;
        let primary =
            Self::head_manifest(&self.source, image.repository(), &image.reference(), OP).await?.ok_or_else(|| {
                err(ErrorKind::NotFound, OP, format!("{image} is not in the primary registry (MANIFEST_UNKNOWN)"))
            })?;
        let Some(dr_digest) = Self::head_manifest(&self.dest, dr.repository(), &dr.reference(), OP).await? else {
            return Ok(ImageParity::Missing { primary });
        };
        if dr_digest != primary {
            return Ok(ImageParity::DigestMismatch { primary, dr: dr_digest });
        }
        // Multi-arch: every child must be there too.
        let top = Self::get_manifest(&self.source, image.repository(), &primary.to_string(), OP).await?;
        if top.is_index() {
            for child in top.children() {
                if Self::head_manifest(&self.dest, dr.repository(), &child.to_string(), OP).await?.is_none() {
                    return Ok(ImageParity::Missing { primary });
                }
            }
        }
        Ok(ImageParity::Present { digest: primary })
    }

    async fn copy(&self, image: &ImageRef) -> ProviderResult<CopyReport> {
        const OP: &str = "copy";
        let mut batch = self.sync_batch(std::slice::from_ref(image)).await?;
        let r =
            batch.outcomes.pop().unwrap_or_else(|| Err(err(ErrorKind::Transient, OP, "the sync answered nothing")))?;
        let digest = match self.parity(image).await? {
            ImageParity::Present { digest } => digest,
            other => {
                return Err(err(
                    ErrorKind::Transient,
                    OP,
                    format!("after the copy, {image} is {other:?} in the DR registry"),
                ));
            }
        };
        Ok(CopyReport::new(digest)
            .with_blobs_copied(r.blobs_copied)
            .with_blobs_skipped(r.blobs_skipped + r.blobs_mounted)
            .with_bytes_copied(r.bytes_copied))
    }

    /// One batch ([`sync_all`](OciRegistrySync::sync_all)'s path: blobs shared across the
    /// images move once), answered image by image.
    async fn copy_all(&self, images: &[ImageRef]) -> ProviderResult<Vec<ImageCopy>> {
        let batch = self.sync_batch(images).await?;
        Ok(images
            .iter()
            .zip(batch.outcomes)
            .map(|(image, outcome)| {
                let result = outcome.map(|r| {
                    CopyReport::new(r.digest)
                        .with_blobs_copied(r.blobs_copied)
                        .with_blobs_skipped(r.blobs_skipped + r.blobs_mounted)
                        .with_bytes_copied(r.bytes_copied)
                });
                ImageCopy::new(image.clone(), result)
            })
            .collect())
    }

    fn remap(&self, image: &ImageRef) -> ProviderResult<ImageRef> {
        self.mapping.remap(image)
    }
}

/// Fuzzing entry: a manifest from arbitrary bytes, walked as a sync walks it.
#[cfg(fuzzing)]
pub(crate) fn fuzz_manifest(bytes: &[u8]) {
    let digest = sha256_digest(bytes);
    if let Ok(m) = Manifest::parse(bytes.to_vec(), "application/vnd.oci.image.manifest.v1+json".into(), digest) {
        let _ = (m.is_index(), m.children(), m.blobs(), m.bytes.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qovery_dr_core::provider::RegistryLocation;

    fn sync(mapping_to: &str, dest_url: &str) -> OciRegistrySync {
        let mapping = RegistryMapping::new(
            RegistryLocation { host: "docker.io".into(), prefix: None },
            RegistryLocation { host: mapping_to.into(), prefix: None },
        );
        let (src, dst) = ("https://registry-1.docker.io".parse().unwrap(), dest_url.parse().unwrap());
        OciRegistrySync::new(
            src,
            super::super::RegistryAuth::Anonymous,
            dst,
            super::super::RegistryAuth::Anonymous,
            mapping,
        )
    }

    #[tokio::test]
    async fn a_mapping_naming_another_registry_than_the_url_is_refused_before_any_request() {
        let image: ImageRef = "nginx:1.27".parse().unwrap();
        // 127.0.0.1:9 refuses connections: an answer other than InvalidConfig would mean a request left.
        let e = sync("dr.example.com", "http://127.0.0.1:9").parity(&image).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        assert!(
            e.message().contains("DR registry's images are named dr.example.com, but its URL is 127.0.0.1:9"),
            "{e}"
        );
        let matching = sync("127.0.0.1:9", "http://127.0.0.1:9");
        assert!(matching.check_hosts("parity").is_ok(), "docker.io is served at registry-1.docker.io");
        assert!(matching.dest.serves("127.0.0.1:9") && !matching.dest.serves("127.0.0.1:10"));
    }
}
