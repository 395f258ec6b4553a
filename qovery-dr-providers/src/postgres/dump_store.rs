//! Where dumps are kept when they must outlive the orchestrator's machine: an object
//! store (Amazon S3, an S3-compatible store such as Scaleway's, or a local folder)
//! through the `object_store` crate.
//!
//! `pg_dump -Fd -j N` writes a folder and `pg_restore -j N` reads one, so a dump is staged
//! in a scratch folder on the orchestrator and each of its files is streamed to the store
//! (multipart, a few MiB in memory per file), then the scratch copy is removed; a restore
//! streams the files back into a scratch folder first. The records readiness reads (last
//! dump, last verified restore, last failure) are small JSON objects beside the dumps.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path as StorePath;
use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult, SecretString};
use tokio::io::AsyncWriteExt;

use super::endpoint::PROVIDER;

/// Bytes buffered per file before the upload turns multipart (S3's minimum part size):
/// with [`PART_CONCURRENCY`] parts in flight and [`FILE_CONCURRENCY`] files at once, the
/// memory an upload holds is bounded by about 60 MiB.
const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts of one file in flight.
const PART_CONCURRENCY: usize = 2;
/// Files uploaded or downloaded at once.
const FILE_CONCURRENCY: usize = 4;

/// How to reach the store named by a URL.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DumpStoreOptions {
    /// The region (S3), when not the environment's `AWS_REGION`.
    pub region: Option<String>,
    /// The endpoint of an S3-compatible store; `http://` is allowed (a local emulator).
    pub endpoint: Option<String>,
    /// The access key id (S3; redacted in `Debug`: the plan keeps it as a secret); without
    /// it, the `AWS_*` environment or the instance's role.
    pub access_key_id: Option<SecretString>,
    /// The secret access key (redacted in `Debug`).
    pub secret_access_key: Option<SecretString>,
}

impl DumpStoreOptions {
    /// The region.
    #[must_use]
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The endpoint of an S3-compatible store.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Static credentials (an S3-compatible store's keys); `Debug` shows neither.
    ///
    /// ```
    /// use qovery_dr_core::SecretString;
    /// use qovery_dr_providers::postgres::DumpStoreOptions;
    /// let o = DumpStoreOptions::default().with_credentials("SCWKEYID123", SecretString::new("s3cret"));
    /// let shown = format!("{o:?}");
    /// assert!(!shown.contains("SCWKEYID123") && !shown.contains("s3cret"), "{shown}");
    /// ```
    #[must_use]
    pub fn with_credentials(mut self, access_key_id: impl Into<String>, secret_access_key: SecretString) -> Self {
        self.access_key_id = Some(SecretString::new(access_key_id));
        self.secret_access_key = Some(secret_access_key);
        self
    }
}

/// An object store and the prefix the dumps of one database live under.
///
/// ```
/// use qovery_dr_providers::postgres::{DumpStore, DumpStoreOptions};
/// let dir = std::env::temp_dir().join(format!("qdr-doc-store-{}", std::process::id()));
/// let store = DumpStore::from_url(&format!("file://{}", dir.display()), &DumpStoreOptions::default()).unwrap();
/// assert!(store.url().starts_with("file://"));
/// let err = DumpStore::from_url("ftp://example.com/dumps", &DumpStoreOptions::default()).unwrap_err();
/// assert!(err.to_string().contains("s3:// or file://"), "{err}");
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
#[derive(Debug, Clone)]
pub struct DumpStore {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
    url: String,
    /// For a folder store, the folder (object_store leaves empty folders behind).
    folder: Option<std::path::PathBuf>,
}

fn err(kind: ErrorKind, op: &str, msg: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

/// An `object_store` error as an [`ErrorKind`], with the store's URL in the message.
fn store_error(op: &str, url: &str, e: &object_store::Error) -> ProviderError {
    use object_store::Error as E;
    let kind = match e {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::AlreadyExists { .. } => ErrorKind::AlreadyExists,
        E::Precondition { .. } | E::NotModified { .. } => ErrorKind::Conflict,
        E::PermissionDenied { .. } => ErrorKind::PermissionDenied,
        E::Unauthenticated { .. } => ErrorKind::Unauthenticated,
        E::NotSupported { .. } | E::NotImplemented => ErrorKind::NotSupported,
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => ErrorKind::InvalidConfig,
        // Network failures and server errors, after object_store's own retries.
        _ => ErrorKind::Transient,
    };
    err(kind, op, format!("{url}: {e}"))
}

impl DumpStore {
    /// The store named by `url`: `s3://bucket/prefix` (credentials from the standard `AWS_*`
    /// environment variables or the instance's role) or `file:///absolute/folder` (created
    /// when missing).
    pub fn from_url(url: &str, options: &DumpStoreOptions) -> ProviderResult<Self> {
        const OP: &str = "dump_store";
        let parsed = url::Url::parse(url).map_err(|e| {
            err(
                ErrorKind::InvalidConfig,
                OP,
                format!("{url:?} is not a URL ({e}); expected s3://bucket/prefix or file:///folder"),
            )
        })?;
        match parsed.scheme() {
            "s3" => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url);
                if let Some(region) = &options.region {
                    builder = builder.with_region(region);
                }
                if let Some(endpoint) = &options.endpoint {
                    builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                if let (Some(id), Some(key)) = (&options.access_key_id, &options.secret_access_key) {
                    builder = builder.with_access_key_id(id.expose()).with_secret_access_key(key.expose());
                }
                let store = builder.build().map_err(|e| store_error(OP, url, &e))?;
                let prefix = StorePath::from_url_path(parsed.path())
                    .map_err(|e| err(ErrorKind::InvalidConfig, OP, format!("{url}: {e}")))?;
                Ok(Self { store: Arc::new(store), prefix, url: url.to_owned(), folder: None })
            }
            "file" => {
                let folder = parsed.to_file_path().map_err(|()| {
                    err(
                        ErrorKind::InvalidConfig,
                        OP,
                        format!("{url}: expected an absolute path, e.g. file:///var/lib/qdr/dumps"),
                    )
                })?;
                std::fs::create_dir_all(&folder)
                    .map_err(|e| err(ErrorKind::InvalidConfig, OP, format!("{}: {e}", folder.display())))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&folder)
                    .map_err(|e| store_error(OP, url, &e))?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: StorePath::default(),
                    url: url.to_owned(),
                    folder: Some(folder),
                })
            }
            other => Err(err(
                ErrorKind::InvalidConfig,
                OP,
                format!(
                    "{url}: scheme {other:?} is not supported; expected s3:// or file:// (S3-compatible stores: s3:// with an endpoint)"
                ),
            )),
        }
    }

    /// A store built elsewhere (any `object_store` backend), dumps under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, url: impl Into<String>) -> Self {
        Self { store, prefix: StorePath::from(prefix), url: url.into(), folder: None }
    }

    /// The location as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, name: &str) -> StorePath {
        name.split('/').filter(|p| !p.is_empty()).fold(self.prefix.clone(), |p, part| p.child(part))
    }

    /// Where `name` is, as a URL-like string for messages and records.
    pub fn location(&self, name: &str) -> String {
        format!("{}/{name}", self.url.trim_end_matches('/'))
    }

    /// A small object (a record), whole.
    pub(crate) async fn read(&self, name: &str) -> ProviderResult<Option<Vec<u8>>> {
        match self.store.get(&self.path(name)).await {
            Ok(got) => {
                got.bytes().await.map(|b| Some(b.to_vec())).map_err(|e| store_error("read_record", &self.url, &e))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error("read_record", &self.url, &e)),
        }
    }

    /// Writes a small object (a record) in one request: readers see the old or the new one.
    pub(crate) async fn write(&self, name: &str, bytes: Vec<u8>) -> ProviderResult<()> {
        self.store
            .put(&self.path(name), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| store_error("write_record", &self.url, &e))
    }

    /// Streams every file of the local folder `dir` to `name/…`; returns the bytes sent.
    pub(crate) async fn upload_dir(&self, dir: &Path, name: &str) -> ProviderResult<u64> {
        const OP: &str = "upload_dump";
        let files =
            list_files(dir).await.map_err(|e| err(ErrorKind::Transient, OP, format!("{}: {e}", dir.display())))?;
        let uploads = files.into_iter().map(|file| async move {
            let relative = file.strip_prefix(dir).unwrap_or(&file).to_string_lossy().replace('\\', "/");
            let path = self.path(&format!("{name}/{relative}"));
            let mut source = tokio::fs::File::open(&file)
                .await
                .map_err(|e| err(ErrorKind::Transient, OP, format!("{}: {e}", file.display())))?;
            let mut sink = object_store::buffered::BufWriter::with_capacity(Arc::clone(&self.store), path, PART_SIZE)
                .with_max_concurrency(PART_CONCURRENCY);
            let copied = tokio::io::copy(&mut source, &mut sink).await;
            let done = match copied {
                Ok(n) => sink.shutdown().await.map(|()| n),
                Err(e) => {
                    let _ = sink.abort().await;
                    Err(e)
                }
            };
            done.map_err(|e| {
                err(ErrorKind::Transient, OP, format!("{} → {}: {e}", file.display(), self.location(name)))
            })
        });
        let sent: Vec<ProviderResult<u64>> =
            futures_util::stream::iter(uploads).buffer_unordered(FILE_CONCURRENCY).collect().await;
        sent.into_iter().sum()
    }

    /// Streams every object under `name/` into the local folder `dir` (created).
    pub(crate) async fn download_dir(&self, name: &str, dir: &Path) -> ProviderResult<u64> {
        const OP: &str = "download_dump";
        let prefix = self.path(name);
        let listed: Vec<_> = self.store.list(Some(&prefix)).collect().await;
        let mut objects = Vec::with_capacity(listed.len());
        for meta in listed {
            objects.push(meta.map_err(|e| store_error(OP, &self.url, &e))?);
        }
        if objects.is_empty() {
            return Err(err(ErrorKind::NotFound, OP, format!("no dump at {}", self.location(name))));
        }
        let downloads = objects.into_iter().map(|meta| {
            let prefix = prefix.clone();
            async move {
                let relative: Vec<String> = meta
                    .location
                    .prefix_match(&prefix)
                    .map(|parts| parts.map(|p| p.as_ref().to_owned()).collect())
                    .unwrap_or_default();
                let target = relative.iter().fold(dir.to_path_buf(), |p, part| p.join(part));
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(|e| err(ErrorKind::Transient, OP, format!("{}: {e}", parent.display())))?;
                }
                let mut file = tokio::fs::File::create(&target)
                    .await
                    .map_err(|e| err(ErrorKind::Transient, OP, format!("{}: {e}", target.display())))?;
                let got = self.store.get(&meta.location).await.map_err(|e| store_error(OP, &self.url, &e))?;
                let mut stream = got.into_stream();
                let mut n = 0u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| store_error(OP, &self.url, &e))?;
                    n += chunk.len() as u64;
                    file.write_all(&chunk)
                        .await
                        .map_err(|e| err(ErrorKind::Transient, OP, format!("{}: {e}", target.display())))?;
                }
                file.flush().await.map_err(|e| err(ErrorKind::Transient, OP, format!("{}: {e}", target.display())))?;
                Ok(n)
            }
        });
        let got: Vec<ProviderResult<u64>> =
            futures_util::stream::iter(downloads).buffer_unordered(FILE_CONCURRENCY).collect().await;
        got.into_iter().sum()
    }

    /// The names of the dumps in the store (`dump-<unix millis>`).
    pub(crate) async fn dump_names(&self) -> ProviderResult<Vec<String>> {
        // An empty prefix (a folder store's root) is "no prefix" to object_store.
        let prefix = Some(&self.prefix).filter(|p| !p.as_ref().is_empty());
        let listed =
            self.store.list_with_delimiter(prefix).await.map_err(|e| store_error("list_dumps", &self.url, &e))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .filter(|n| n.starts_with("dump-"))
            .collect())
    }

    /// Deletes every object under `name/` (an old dump).
    pub(crate) async fn delete_dir(&self, name: &str) -> ProviderResult<()> {
        const OP: &str = "delete_dump";
        if let Some(folder) = &self.folder {
            let dir = name.split('/').filter(|p| !p.is_empty()).fold(folder.clone(), |p, part| p.join(part));
            return match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(err(ErrorKind::Transient, OP, format!("{}: {e}", dir.display()))),
            };
        }
        let listed: Vec<_> = self.store.list(Some(&self.path(name))).collect().await;
        for meta in listed {
            let meta = meta.map_err(|e| store_error(OP, &self.url, &e))?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error(OP, &self.url, &e)),
            }
        }
        Ok(())
    }
}

/// Every regular file under `dir`, recursively.
async fn list_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries = tokio::fs::read_dir(&d).await?;
        while let Some(e) = entries.next_entry().await? {
            let kind = e.file_type().await?;
            if kind.is_dir() {
                stack.push(e.path());
            } else if kind.is_file() {
                files.push(e.path());
            }
        }
    }
    Ok(files)
}
