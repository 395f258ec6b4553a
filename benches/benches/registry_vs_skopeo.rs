//! Registry sync against skopeo: 10 tags of 3 layers of 20 MB sharing layers
//! (12 unique layers), from registry A to a fresh registry B, `OciRegistrySync`
//! and `skopeo sync` alternating on the same data. Starts its own registries
//! (Debian's docker-registry) on 127.0.0.1.
//!
//! Prints `registry_ratio_vs_skopeo` (ours / skopeo, median wall time),
//! `registry_bytes_moved_over_missing` (bytes we streamed / bytes B lacked) and
//! `registry_peak_rss_mib` (peak RSS of a process copying one 1 GiB layer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../qovery-dr-providers/tests/common/reaper.rs"]
mod reaper;

#[path = "../../qovery-dr-providers/tests/reg/server.rs"]
#[allow(dead_code)]
mod server;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use qovery_dr_core::ImageRef;
use qovery_dr_core::provider::{RegistryLocation, RegistryMapping};
use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
use server::{RegistryServer, layer, push_image, sha};

const TAGS: usize = 10;
const LAYER: usize = 20 << 20;
const REPETITIONS: usize = 3;

fn sync(a: &RegistryServer, b: &RegistryServer) -> OciRegistrySync {
    let mapping = RegistryMapping::new(
        RegistryLocation { host: a.host(), prefix: None },
        RegistryLocation { host: b.host(), prefix: Some("mirror".into()) },
    );
    OciRegistrySync::new(a.url(), RegistryAuth::Anonymous, b.url(), RegistryAuth::Anonymous, mapping)
}

fn skopeo(a: &RegistryServer, b: &RegistryServer) -> Duration {
    let _ = std::fs::remove_file("/var/lib/containers/cache/blob-info-cache-v1.boltdb");
    let t0 = Instant::now();
    let out = Command::new("skopeo")
        .args(["sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("{}/bench", a.host()))
        .arg(format!("{}/mirror", b.host()))
        .stdout(Stdio::null())
        .output()
        .expect("skopeo is installed (scripts/test installs it)");
    assert!(out.status.success(), "skopeo sync: {}", String::from_utf8_lossy(&out.stderr));
    t0.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
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
    let a = RegistryServer::start();
    let layers: Vec<Vec<u8>> = (0..12).map(|i| layer(i, LAYER)).collect();
    let mut images = Vec::new();
    let mut unique: u64 = layers.iter().map(|l| l.len() as u64).sum();
    for i in 0..TAGS {
        let tag = format!("v{i}");
        push_image(&a.url(), "bench", &tag, &[layers[0].clone(), layers[1].clone(), layers[2 + i].clone()]).await;
        images.push(format!("{}/bench:{tag}", a.host()).parse::<ImageRef>().unwrap());
    }
    // The configs are blobs B lacks too (small, one per tag).
    unique += (0..TAGS).map(|i| format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{}},"created":"2026-01-01T00:00:00Z","tag":"v{i}"}}"#).len() as u64).sum::<u64>();
    let _ = sha(b"");
    let (mut ours, mut theirs, mut ratio_bytes) = (Vec::new(), Vec::new(), 0.0);
    for rep in 0..REPETITIONS {
        let run_ours = |b: RegistryServer| {
            let images = images.clone();
            let a = &a;
            async move {
                let t0 = Instant::now();
                let report = sync(a, &b).sync_all(&images).await.unwrap();
                (t0.elapsed(), report.bytes_copied)
            }
        };
        if rep % 2 == 0 {
            let (t, bytes) = run_ours(RegistryServer::start()).await;
            ours.push(t);
            ratio_bytes = bytes as f64 / unique as f64;
            theirs.push(skopeo(&a, &RegistryServer::start()));
        } else {
            theirs.push(skopeo(&a, &RegistryServer::start()));
            let (t, bytes) = run_ours(RegistryServer::start()).await;
            ours.push(t);
            ratio_bytes = bytes as f64 / unique as f64;
        }
    }
    let (o, s) = (median(ours), median(theirs));
    println!("tags = {TAGS}");
    println!("unique_layers = 12");
    println!("layer_mib = {}", LAYER >> 20);
    println!("repetitions = {REPETITIONS}");
    println!("ours_ms = {:.0}", o.as_secs_f64() * 1e3);
    println!("skopeo_ms = {:.0}", s.as_secs_f64() * 1e3);
    println!("registry_ratio_vs_skopeo = {:.3}", o.as_secs_f64() / s.as_secs_f64());
    println!("registry_bytes_moved_over_missing = {ratio_bytes:.2}");
    let child = Command::new(std::env::current_exe().unwrap()).env("QDR_BENCH_PEAK_RSS", "1").output().unwrap();
    assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stderr));
    print!("{}", String::from_utf8_lossy(&child.stdout));
}
