//! Real registries (Debian's `docker-registry`) on 127.0.0.1 for the tests,
//! and synthetic OCI images pushed through the API.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct RegistryServer {
    pub port: u16,
    pub root: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

fn binary() -> PathBuf {
    let p = std::env::var_os("QDR_DOCKER_REGISTRY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"));
    assert!(
        p.exists(),
        "docker-registry is missing at {}: run ./scripts/test (it installs Debian's docker-registry) or set QDR_DOCKER_REGISTRY",
        p.display()
    );
    p
}

impl RegistryServer {
    pub fn start() -> RegistryServer {
        Self::start_with("")
    }

    #[allow(dead_code)] // not used by every test binary that includes this file
    /// A registry that requires HTTP basic authentication (htpasswd; `bcrypt` is the
    /// password's bcrypt hash): anonymous requests get 401 with a Basic challenge.
    pub fn start_with_basic_auth(user: &str, bcrypt: &str) -> RegistryServer {
        let file = std::env::temp_dir().join(format!(
            "qdr-htpasswd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&file, format!("{user}:{bcrypt}\n")).unwrap();
        Self::start_with(&format!("auth:\n  htpasswd:\n    realm: qdr\n    path: {}\n", file.display()))
    }

    fn start_with(extra_config: &str) -> RegistryServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let root = std::env::temp_dir().join(format!(
            "qdr-registry-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("data")).unwrap();
        let config = root.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra_config}",
                root.join("data").display()
            ),
        )
        .unwrap();
        let log = root.join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary())
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap();
        crate::reaper::kill_when_tests_exit(child.id());
        let s = RegistryServer { port, root, log, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {}",
                std::fs::read_to_string(&s.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> url::Url {
        format!("http://127.0.0.1:{}", self.port).parse().unwrap()
    }

    /// Stops the registry and starts it again on the same port and data.
    #[allow(dead_code)] // not used by every test binary that includes this file
    pub fn restart(&mut self) {
        self.stop();
        let out = std::fs::OpenOptions::new().append(true).open(&self.log).unwrap();
        let child = Command::new(binary())
            .arg("serve")
            .arg(self.root.join("config.yml"))
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap();
        crate::reaper::kill_when_tests_exit(child.id());
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not restart");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The file holding a blob (to corrupt it on purpose).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.root.join("data/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (incompressible, like gzip'd layers).
pub fn layer(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

pub async fn push_blob(client: &reqwest::Client, base: &url::Url, repo: &str, bytes: Vec<u8>) -> String {
    let digest = sha(&bytes);
    let head = client.head(base.join(&format!("/v2/{repo}/blobs/{digest}")).unwrap()).send().await.unwrap();
    if head.status().is_success() {
        return digest;
    }
    let start = client.post(base.join(&format!("/v2/{repo}/blobs/uploads/")).unwrap()).send().await.unwrap();
    assert_eq!(start.status(), 202, "start upload");
    let loc = start.headers()["location"].to_str().unwrap().to_owned();
    let mut url = base.join(&loc).unwrap();
    url.query_pairs_mut().append_pair("digest", &digest);
    let put = client.put(url).header("content-type", "application/octet-stream").body(bytes).send().await.unwrap();
    assert_eq!(put.status(), 201, "push blob: {}", put.text().await.unwrap_or_default());
    digest
}

/// Pushes an OCI image (a config and the given layers) as `repo:tag`; returns the manifest digest.
pub async fn push_image(base: &url::Url, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
    let client = reqwest::Client::new();
    let config = format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{}},"created":"2026-01-01T00:00:00Z","tag":"{tag}"}}"#).into_bytes();
    let config_size = config.len();
    let config_digest = push_blob(&client, base, repo, config).await;
    let mut layer_json = Vec::new();
    for l in layers {
        let size = l.len();
        let d = push_blob(&client, base, repo, l.clone()).await;
        layer_json.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{size}}}"#
        ));
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{}]}}"#,
        layer_json.join(",")
    );
    let digest = sha(manifest.as_bytes());
    let put = client
        .put(base.join(&format!("/v2/{repo}/manifests/{tag}")).unwrap())
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "push manifest: {}", put.text().await.unwrap_or_default());
    digest
}

/// Pushes a multi-arch index of two images; returns its digest.
pub async fn push_index(base: &url::Url, repo: &str, tag: &str, seed: u64) -> String {
    let amd = push_image(base, repo, &format!("{tag}-amd64"), &[layer(seed, 4096)]).await;
    let arm = push_image(base, repo, &format!("{tag}-arm64"), &[layer(seed + 1, 4096)]).await;
    let client = reqwest::Client::new();
    let (sa, sb) = (client_head(base, repo, &amd).await, client_head(base, repo, &arm).await);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{amd}","size":{sa},"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{arm}","size":{sb},"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#
    );
    let digest = sha(index.as_bytes());
    let put = client
        .put(base.join(&format!("/v2/{repo}/manifests/{tag}")).unwrap())
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(index)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "push index: {}", put.text().await.unwrap_or_default());
    digest
}

async fn client_head(base: &url::Url, repo: &str, digest: &str) -> u64 {
    let r = reqwest::Client::new()
        .get(base.join(&format!("/v2/{repo}/manifests/{digest}")).unwrap())
        .header("accept", qovery_dr_providers::registry::MANIFEST_ACCEPT)
        .send()
        .await
        .unwrap();
    r.bytes().await.unwrap().len() as u64
}

/// Access-log lines of a registry (one per request).
pub fn access_log(s: &RegistryServer) -> Vec<String> {
    std::fs::read_to_string(&s.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("127.0.0.1"))
        .map(str::to_owned)
        .collect()
}
