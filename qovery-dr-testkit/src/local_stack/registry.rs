//! OCI registries (Debian's `docker-registry`, `$QDR_DOCKER_REGISTRY`) on
//! 127.0.0.1, and synthetic images pushed through the distribution API.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::LocalStackError;
use super::daemon::{Daemon, listening, scratch, tool, write};

/// One registry server.
#[derive(Debug)]
pub struct RegistryServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    root: PathBuf,
    daemon: Daemon,
}

impl RegistryServer {
    /// Starts an anonymous registry (pull and push without credentials).
    pub fn start() -> Result<RegistryServer, LocalStackError> {
        let binary = tool("QDR_DOCKER_REGISTRY", "/usr/bin/docker-registry", "docker-registry")?;
        let root = scratch("registry")?;
        let port = crate::pg_server::free_port().map_err(|e| LocalStackError::failed("finding a free port", &e))?;
        let data = root.join("data");
        std::fs::create_dir_all(&data).map_err(|e| LocalStackError::io(&data, e))?;
        let config = root.join("config.yml");
        write(
            &config,
            &format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                data.display()
            ),
        )?;
        let mut command = Command::new(binary);
        command.arg("serve").arg(&config);
        let mut daemon = Daemon::spawn("docker-registry", command, root.join("registry.log"))?;
        daemon.wait_until(Duration::from_secs(20), |_| listening(port))?;
        Ok(RegistryServer { port, root, daemon })
    }

    /// `127.0.0.1:<port>`, the host part of its image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Access-log lines (one per request), to count what reached the server.
    pub fn access_log(&self) -> Vec<String> {
        self.daemon.log_text().lines().filter(|l| l.starts_with("127.0.0.1")).map(str::to_owned).collect()
    }

    /// The digest it serves for `repo:reference` (a HEAD of the manifest), if any.
    pub async fn digest(&self, repo: &str, reference: &str) -> Result<Option<String>, LocalStackError> {
        let what = format!("HEAD {}/v2/{repo}/manifests/{reference}", self.url());
        let r = reqwest::Client::new()
            .head(format!("{}/v2/{repo}/manifests/{reference}", self.url()))
            .header("accept", MANIFEST_TYPES)
            .send()
            .await
            .map_err(|e| LocalStackError::failed(&what, &e.to_string()))?;
        if !r.status().is_success() {
            return Ok(None);
        }
        Ok(r.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_owned))
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.daemon.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The manifest types a pull accepts.
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (incompressible, like gzip'd layers).
pub fn layer(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

async fn push_blob(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    bytes: Vec<u8>,
) -> Result<String, LocalStackError> {
    let digest = sha(&bytes);
    let what = format!("pushing {digest} to {base}/{repo}");
    let fail = |e: reqwest::Error| LocalStackError::failed(&what, &e.to_string());
    let head = client.head(format!("{base}/v2/{repo}/blobs/{digest}")).send().await.map_err(fail)?;
    if head.status().is_success() {
        return Ok(digest);
    }
    let start = client.post(format!("{base}/v2/{repo}/blobs/uploads/")).send().await.map_err(fail)?;
    let location = start
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| LocalStackError::failed(&what, &format!("no upload location ({})", start.status())))?;
    let url = if location.starts_with("http") { location } else { format!("{base}{location}") };
    let sep = if url.contains('?') { '&' } else { '?' };
    let put = client
        .put(format!("{url}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .map_err(fail)?;
    if put.status().as_u16() != 201 {
        return Err(LocalStackError::failed(
            &what,
            &format!("{}: {}", put.status(), put.text().await.unwrap_or_default()),
        ));
    }
    Ok(digest)
}

/// Pushes an OCI image (a config and the given layers) as `repo:tag` to the registry at
/// `base` (`http://host:port`); returns the manifest digest.
pub async fn push_image(base: &str, repo: &str, tag: &str, layers: &[Vec<u8>]) -> Result<String, LocalStackError> {
    let client = reqwest::Client::new();
    let config = format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{}},"created":"2026-01-01T00:00:00Z","tag":"{tag}"}}"#).into_bytes();
    let config_size = config.len();
    let config_digest = push_blob(&client, base, repo, config).await?;
    let mut layer_json = Vec::new();
    for l in layers {
        let size = l.len();
        let d = push_blob(&client, base, repo, l.clone()).await?;
        layer_json.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{size}}}"#
        ));
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{}]}}"#,
        layer_json.join(",")
    );
    let digest = sha(manifest.as_bytes());
    let what = format!("pushing {repo}:{tag} to {base}");
    let put = client
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await
        .map_err(|e| LocalStackError::failed(&what, &e.to_string()))?;
    if put.status().as_u16() != 201 {
        return Err(LocalStackError::failed(
            &what,
            &format!("{}: {}", put.status(), put.text().await.unwrap_or_default()),
        ));
    }
    Ok(digest)
}
