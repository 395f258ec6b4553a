//! Registry sync against skopeo: 10 tags of 3 layers of 20 MB sharing layers
//! (12 unique layers), from registry A to a fresh registry B, `OciRegistrySync`
//! and `skopeo sync` alternating on the same data. Starts its own registries
//! (Debian's docker-registry) on 127.0.0.1.
//!
//! Every fresh destination B sits behind a byte-counting TCP proxy (for both
//! tools alike), so what B received is counted on B's side of the wire, not by
//! the SDK; what B lacked is what B stores once the sync is done (the sizes of
//! the blob files in its storage: it started empty).
//!
//! A second data shape, many small layers: 20 tags of one shared base layer and 11
//! layers of their own (221 unique layers of 10–50 KiB), synced by both tools into a
//! fresh registry (ours through `Arc<dyn RegistrySync>::copy_all`, the trait's batch),
//! then synced again into the same, now in-parity registry (the no-op re-sync), each
//! tool's requests counted in both registries' access logs. The same shape is then
//! synced by ours alone at 4, 8, 16 and 32 blobs at once (order rotated per
//! repetition), which is where the default concurrency comes from.
//!
//! Prints `registry_ratio_vs_skopeo` (ours / skopeo wall time, per repetition),
//! `registry_bytes_moved_over_missing` (request bytes B received from us / bytes B
//! stores afterwards, summed over all repetitions; headers and HEAD requests
//! included, so 1.00 is the floor), the same for skopeo, and
//! `registry_peak_rss_mib` (peak RSS of a process copying one 1 GiB layer),
//! `registry_ratio_vs_skopeo_small_layers` (ours / skopeo wall time on the small
//! layers, per repetition), `registry_noop_requests_over_skopeo` (requests of our no-op
//! re-sync / skopeo's, both registries counted, per repetition),
//! `registry_small_layers_ms_concurrency_N` for each N of the sweep,
//! `registry_concurrency_best_in_sweep` (the N of the lowest median),
//! `registry_concurrency_chosen` (the smallest N within 5 % of it: the rule the default
//! follows; each also with `_rtt20ms`, the DR registry 20 ms away) and
//! `registry_concurrency_default` (what `OciRegistrySync::new` uses).
//! `QDR_BENCH_SMALL_LAYERS_ONLY=1` runs the small-layers part alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../qovery-dr-providers/tests/common/reaper.rs"]
mod reaper;

#[path = "../../qovery-dr-providers/tests/reg/server.rs"]
#[allow(dead_code)]
mod server;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use qovery_dr_benches::{a_first, figure, note, setting};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use futures_util::StreamExt;
use qovery_dr_core::ImageRef;
use qovery_dr_core::provider::{RegistryLocation, RegistryMapping, RegistrySync};
use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
use server::{RegistryServer, access_log, layer, push_image};

const TAGS: usize = 10;
const LAYER: usize = 20 << 20;
const REPETITIONS: usize = 3;
const SMALL_TAGS: usize = 20;
const SMALL_OWN_LAYERS: usize = 11;
const SMALL_REPETITIONS: usize = 5;
const SWEEP: [usize; 4] = [4, 8, 16, 32];

/// A TCP proxy in front of a registry that counts the bytes clients send it.
struct CountingProxy {
    port: u16,
    received: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    async fn start(target_port: u16) -> CountingProxy {
        Self::start_with_delay(target_port, Duration::ZERO).await
    }

    /// A proxy that also holds what each client sends for `delay` before passing it on:
    /// every request then takes `delay` longer, as over a link with that much more
    /// round-trip time.
    async fn start_with_delay(target_port: u16, delay: Duration) -> CountingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&received);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await else {
                        return;
                    };
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let upstream = async {
                        let mut buf = vec![0u8; 256 << 10];
                        loop {
                            let n = match in_read.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // Counted as it arrives: the registry answers a request only after its body.
                            counter.fetch_add(n as u64, Ordering::SeqCst);
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            if out_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = out_write.shutdown().await;
                    };
                    let downstream = async {
                        let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
                        let _ = in_write.shutdown().await;
                    };
                    tokio::join!(upstream, downstream);
                });
            }
        });
        CountingProxy { port, received, accept }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> url::Url {
        format!("http://127.0.0.1:{}", self.port).parse().unwrap()
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What a registry stores: the sizes of its blob files (layers, configs, manifests).
fn stored_bytes(root: &Path) -> u64 {
    fn walk(dir: &Path, total: &mut u64) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, total);
            } else if path.file_name().is_some_and(|n| n == "data") {
                *total += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    let mut total = 0;
    walk(&root.join("data/docker/registry/v2/blobs"), &mut total);
    total
}

fn sync_to(a: &RegistryServer, dest_host: String, dest_url: url::Url) -> OciRegistrySync {
    let mapping = RegistryMapping::new(
        RegistryLocation { host: a.host(), prefix: None },
        RegistryLocation { host: dest_host, prefix: Some("mirror".into()) },
    );
    OciRegistrySync::new(a.url(), RegistryAuth::Anonymous, dest_url, RegistryAuth::Anonymous, mapping)
}

fn sync(a: &RegistryServer, b: &RegistryServer) -> OciRegistrySync {
    sync_to(a, b.host(), b.url())
}

/// Where skopeo keeps what it learnt of blobs (the first path when root, else the second).
fn forget_skopeo_cache() {
    let _ = std::fs::remove_file("/var/lib/containers/cache/blob-info-cache-v1.boltdb");
    if let Some(home) = std::env::var_os("HOME") {
        let _ = std::fs::remove_file(Path::new(&home).join(".local/share/containers/cache/blob-info-cache-v1.boltdb"));
    }
}

async fn skopeo(a: &RegistryServer, dest_host: &str) -> Duration {
    forget_skopeo_cache();
    skopeo_sync(a, "bench", dest_host).await
}

/// `skopeo sync` of repository `repo` of `a` into `dest_host/mirror` (its cache as it is).
async fn skopeo_sync(a: &RegistryServer, repo: &str, dest_host: &str) -> Duration {
    let t0 = Instant::now();
    let out = tokio::process::Command::new("skopeo")
        .args(["sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("{}/{repo}", a.host()))
        .arg(format!("{dest_host}/mirror"))
        .stdout(Stdio::null())
        .output()
        .await
        .expect("skopeo is installed (scripts/test installs it)");
    assert!(out.status.success(), "skopeo sync: {}", String::from_utf8_lossy(&out.stderr));
    t0.elapsed()
}

/// One tool's run into a fresh registry behind a counting proxy.
struct Side {
    wall: Duration,
    received: u64,
    stored: u64,
}

async fn ours(a: &RegistryServer, images: &[ImageRef]) -> Side {
    let b = RegistryServer::start();
    let proxy = CountingProxy::start(b.port).await;
    let t0 = Instant::now();
    let report = sync_to(a, proxy.host(), proxy.url()).sync_all(images).await.unwrap();
    let wall = t0.elapsed();
    assert!(report.bytes_copied > 0, "the sync copied something");
    Side { wall, received: proxy.received(), stored: stored_bytes(&b.root) }
}

async fn theirs(a: &RegistryServer) -> Side {
    let b = RegistryServer::start();
    let proxy = CountingProxy::start(b.port).await;
    let wall = skopeo(a, &proxy.host()).await;
    Side { wall, received: proxy.received(), stored: stored_bytes(&b.root) }
}

/// One tool on the small layers: the first sync into a fresh registry, then the no-op
/// re-sync into the same registry, its requests counted at both registries.
struct SmallSide {
    wall: Duration,
    noop_requests: usize,
    noop_received: u64,
}

async fn ours_small(a: &RegistryServer, images: &[ImageRef]) -> SmallSide {
    let b = RegistryServer::start();
    let proxy = CountingProxy::start(b.port).await;
    let trait_object = |s: OciRegistrySync| -> Arc<dyn RegistrySync> { Arc::new(s) };
    let t0 = Instant::now();
    let out = trait_object(sync_to(a, proxy.host(), proxy.url())).copy_all(images).await.unwrap();
    let wall = t0.elapsed();
    assert!(out.iter().all(|c| c.result.as_ref().is_ok_and(|r| r.bytes_copied > 0 || r.blobs_skipped > 0)));
    let (before_a, before_b, before_bytes) = (access_log(a).len(), access_log(&b).len(), proxy.received());
    let again = trait_object(sync_to(a, proxy.host(), proxy.url())).copy_all(images).await.unwrap();
    assert!(again.iter().all(|c| c.result.as_ref().is_ok_and(|r| r.bytes_copied == 0)), "the re-sync moves nothing");
    let noop_requests = access_log(a).len() - before_a + access_log(&b).len() - before_b;
    SmallSide { wall, noop_requests, noop_received: proxy.received() - before_bytes }
}

async fn theirs_small(a: &RegistryServer) -> SmallSide {
    let b = RegistryServer::start();
    let proxy = CountingProxy::start(b.port).await;
    forget_skopeo_cache();
    let wall = skopeo_sync(a, "small", &proxy.host()).await;
    let (before_a, before_b, before_bytes) = (access_log(a).len(), access_log(&b).len(), proxy.received());
    // The re-sync keeps the cache the first sync left: skopeo at its best.
    skopeo_sync(a, "small", &proxy.host()).await;
    let noop_requests = access_log(a).len() - before_a + access_log(&b).len() - before_b;
    SmallSide { wall, noop_requests, noop_received: proxy.received() - before_bytes }
}

/// Our first sync of the small layers into a fresh registry `rtt` away, `concurrency` blobs at once.
async fn ours_small_at(a: &RegistryServer, images: &[ImageRef], concurrency: usize, rtt: Duration) -> Duration {
    let b = RegistryServer::start();
    let proxy = CountingProxy::start_with_delay(b.port, rtt).await;
    let s = sync_to(a, proxy.host(), proxy.url()).with_concurrency(concurrency);
    let t0 = Instant::now();
    let r = s.sync_all(images).await.unwrap();
    let wall = t0.elapsed();
    // A config per tag, the shared base, and the layers of their own.
    assert_eq!(r.blobs_copied as usize, SMALL_TAGS + 1 + SMALL_TAGS * SMALL_OWN_LAYERS, "{r:?}");
    wall
}

/// The small-layers shape in repository `small` of `a`: 20 tags, one shared base layer
/// and 11 layers of their own each, 10–50 KiB.
async fn push_small_layers(a: &RegistryServer) -> Vec<ImageRef> {
    let base = layer(5000, 30 << 10);
    let mut images = Vec::new();
    for t in 0..SMALL_TAGS {
        let mut layers = vec![base.clone()];
        for l in 0..SMALL_OWN_LAYERS {
            let seed = 6000 + (t * SMALL_OWN_LAYERS + l) as u64;
            layers.push(layer(seed, (10 + (seed as usize * 7) % 41) << 10));
        }
        let tag = format!("s{t}");
        push_image(&a.url(), "small", &tag, &layers).await;
        images.push(format!("{}/small:{tag}", a.host()).parse::<ImageRef>().unwrap());
    }
    images
}

async fn small_layers(a: &RegistryServer) {
    let images = push_small_layers(a).await;
    let (mut ratio, mut noop_ratio, mut ours_ms, mut skopeo_ms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ours_noop, mut skopeo_noop, mut ours_noop_bytes) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..SMALL_REPETITIONS {
        let (o, t) = if a_first(rep) {
            let o = ours_small(a, &images).await;
            (o, theirs_small(a).await)
        } else {
            let t = theirs_small(a).await;
            (ours_small(a, &images).await, t)
        };
        ours_ms.push(o.wall.as_secs_f64() * 1e3);
        skopeo_ms.push(t.wall.as_secs_f64() * 1e3);
        ratio.push(o.wall.as_secs_f64() / t.wall.as_secs_f64());
        ours_noop.push(o.noop_requests as f64);
        skopeo_noop.push(t.noop_requests as f64);
        ours_noop_bytes.push(o.noop_received as f64);
        noop_ratio.push(o.noop_requests as f64 / t.noop_requests as f64);
    }
    note("small layers: each repetition syncs into fresh registries; ours through Arc<dyn RegistrySync>::copy_all");
    note(
        "no-op re-sync: the same tool again into the same, in-parity registry; requests = access-log lines of source + destination; skopeo keeps its blob cache",
    );
    setting("small_tags", SMALL_TAGS);
    setting("small_unique_layers", 1 + SMALL_TAGS * SMALL_OWN_LAYERS);
    setting("small_repetitions", SMALL_REPETITIONS);
    figure("ours_small_layers_ms", &ours_ms, 0);
    figure("skopeo_small_layers_ms", &skopeo_ms, 0);
    figure("registry_ratio_vs_skopeo_small_layers", &ratio, 3);
    figure("ours_noop_requests", &ours_noop, 0);
    figure("skopeo_noop_requests", &skopeo_noop, 0);
    figure("ours_noop_request_bytes", &ours_noop_bytes, 0);
    figure("registry_noop_requests_over_skopeo", &noop_ratio, 3);

    note("concurrency sweep: our first sync of the small layers into a fresh registry, N blobs at once;");
    note(
        "  _rtt20ms: every request to the DR registry held 20 ms at its proxy (a cross-region link); the default follows that sweep",
    );
    // The concurrency sweep: ours alone, the values rotated so that none always runs first;
    // on loopback, then with the DR registry 20 ms further away (a cross-region link).
    for (label, rtt) in [("", Duration::ZERO), ("_rtt20ms", Duration::from_millis(20))] {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); SWEEP.len()];
        for rep in 0..SMALL_REPETITIONS {
            for k in 0..SWEEP.len() {
                let i = (k + rep) % SWEEP.len();
                samples[i].push(ours_small_at(a, &images, SWEEP[i], rtt).await.as_secs_f64() * 1e3);
            }
        }
        let mut fastest = (f64::INFINITY, 0);
        for (i, n) in SWEEP.iter().enumerate() {
            figure(&format!("registry_small_layers{label}_ms_concurrency_{n}"), &samples[i], 0);
            let median = qovery_dr_benches::Spread::of(&samples[i]).unwrap().median;
            if median < fastest.0 {
                fastest = (median, *n);
            }
        }
        setting(&format!("registry_concurrency_best_in_sweep{label}"), fastest.1);
        // The rule the default follows: the smallest N within 5 % of the fastest median.
        let chosen = SWEEP
            .iter()
            .enumerate()
            .find(|(i, _)| qovery_dr_benches::Spread::of(&samples[*i]).unwrap().median <= fastest.0 * 1.05)
            .map_or(fastest.1, |(_, n)| *n);
        setting(&format!("registry_concurrency_chosen{label}"), chosen);
    }
    setting("registry_concurrency_default", sync(a, a).concurrency());
}

/// Child mode: push one 1 GiB layer (streamed) and sync it, then report peak RSS.
async fn peak_rss_child() {
    let (a, b) = (RegistryServer::start(), RegistryServer::start());
    let client = reqwest::Client::new();
    let size: u64 = 1 << 30;
    // The layer is generated chunk by chunk twice: once to hash it, once to upload it.
    let chunk = |i: u64| layer(1000 + i, 1 << 20);
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    for i in 0..(size >> 20) {
        sha2::Digest::update(&mut hasher, chunk(i));
    }
    let digest = format!("sha256:{:x}", sha2::Digest::finalize(hasher));
    let start = client.post(a.url().join("/v2/big/blobs/uploads/").unwrap()).send().await.unwrap();
    let loc = start.headers()["location"].to_str().unwrap().to_owned();
    let mut url = a.url().join(&loc).unwrap();
    url.query_pairs_mut().append_pair("digest", &digest);
    let body = reqwest::Body::wrap_stream(
        futures_util::stream::iter(0..(size >> 20)).map(move |i| Ok::<_, std::io::Error>(chunk(i))),
    );
    let put = client.put(url).body(body).send().await.unwrap();
    assert_eq!(put.status(), 201);
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}".to_vec();
    let config_digest = server::push_blob(&client, &a.url(), "big", config.clone()).await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{digest}","size":{size}}}]}}"#,
        config.len()
    );
    let r = client
        .put(a.url().join("/v2/big/manifests/v1").unwrap())
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let report = sync(&a, &b).sync_all(&[format!("{}/big:v1", a.host()).parse::<ImageRef>().unwrap()]).await.unwrap();
    assert!(report.bytes_copied >= size);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap();
    println!("registry_peak_rss_mib = {:.1}", hwm as f64 / 1024.0);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var("QDR_BENCH_PEAK_RSS").is_ok() {
        peak_rss_child().await;
        return;
    }
    if std::env::var("QDR_BENCH_SMALL_LAYERS_ONLY").is_ok() {
        note("QDR_BENCH_SMALL_LAYERS_ONLY is set: the large-layer shape and the peak RSS are skipped");
        small_layers(&RegistryServer::start()).await;
        return;
    }
    let a = RegistryServer::start();
    let layers: Vec<Vec<u8>> = (0..12).map(|i| layer(i, LAYER)).collect();
    let mut images = Vec::new();
    for i in 0..TAGS {
        let tag = format!("v{i}");
        push_image(&a.url(), "bench", &tag, &[layers[0].clone(), layers[1].clone(), layers[2 + i].clone()]).await;
        images.push(format!("{}/bench:{tag}", a.host()).parse::<ImageRef>().unwrap());
    }
    let (mut ours_ms, mut skopeo_ms, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ours_moved, mut ours_missing, mut skopeo_moved, mut skopeo_missing) = (0u64, 0u64, 0u64, 0u64);
    let (mut ours_per_rep, mut skopeo_per_rep) = (Vec::new(), Vec::new());
    for rep in 0..REPETITIONS {
        let (o, t) = if a_first(rep) {
            let o = ours(&a, &images).await;
            (o, theirs(&a).await)
        } else {
            let t = theirs(&a).await;
            (ours(&a, &images).await, t)
        };
        assert!(o.stored > 0 && t.stored > 0, "both destinations hold the images");
        ours_ms.push(o.wall.as_secs_f64() * 1e3);
        skopeo_ms.push(t.wall.as_secs_f64() * 1e3);
        ratio.push(o.wall.as_secs_f64() / t.wall.as_secs_f64());
        ours_moved += o.received;
        ours_missing += o.stored;
        skopeo_moved += t.received;
        skopeo_missing += t.stored;
        ours_per_rep.push(o.received as f64 / o.stored as f64);
        skopeo_per_rep.push(t.received as f64 / t.stored as f64);
    }
    note(
        "real docker-registry servers on 127.0.0.1; each destination is fresh and behind a byte-counting proxy (both tools)",
    );
    note(
        "bytes moved = request bytes the destination received (counted at its proxy); missing = bytes it stores afterwards",
    );
    note("registry_bytes_moved_over_missing is over all repetitions; its _min/_max are the per-repetition values");
    setting("tags", TAGS);
    setting("unique_layers", 12);
    setting("layer_mib", LAYER >> 20);
    setting("repetitions", REPETITIONS);
    figure("ours_ms", &ours_ms, 0);
    figure("skopeo_ms", &skopeo_ms, 0);
    figure("registry_ratio_vs_skopeo", &ratio, 3);
    let spread = |v: &[f64]| qovery_dr_benches::Spread::of(v).unwrap();
    let (so, ss) = (spread(&ours_per_rep), spread(&skopeo_per_rep));
    println!("registry_bytes_moved_over_missing = {:.4}", ours_moved as f64 / ours_missing as f64);
    println!("registry_bytes_moved_over_missing_min = {:.4}", so.min);
    println!("registry_bytes_moved_over_missing_max = {:.4}", so.max);
    println!("skopeo_bytes_moved_over_missing = {:.4}", skopeo_moved as f64 / skopeo_missing as f64);
    println!("skopeo_bytes_moved_over_missing_min = {:.4}", ss.min);
    println!("skopeo_bytes_moved_over_missing_max = {:.4}", ss.max);
    setting("destination_stored_bytes_per_repetition", ours_missing / REPETITIONS as u64);
    // Peak RSS: each in a child process of its own, so this process's buffers do not count.
    let mut rss = Vec::new();
    for _ in 0..REPETITIONS {
        let child = Command::new(std::env::current_exe().unwrap()).env("QDR_BENCH_PEAK_RSS", "1").output().unwrap();
        assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stderr));
        let out = String::from_utf8_lossy(&child.stdout);
        let value = out.lines().find_map(|l| l.strip_prefix("registry_peak_rss_mib = ")).and_then(|v| v.parse().ok());
        rss.push(value.unwrap_or_else(|| panic!("the child printed no figure: {out}")));
    }
    figure("registry_peak_rss_mib", &rss, 1);
    small_layers(&a).await;
}
