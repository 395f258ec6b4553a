//! Hostile peers for every HTTP provider (Qovery, Cloudflare, OCI registry, webhook):
//! absurd `Retry-After` values, a 429 storm, an answer that never ends, an answer of
//! 100 MiB, malformed JSON. Each gives a typed error or a capped wait, never a panic or
//! an unbounded hang (every call here is bounded by a test deadline that fails loudly).

use std::time::{Duration, Instant};

use qovery_dr_core::provider::{ClusterProvider, DnsSwitcher, RegistrySync};
use qovery_dr_core::resilience::{DEFAULT_MAX_RETRY_AFTER, TimeoutConfig};
use qovery_dr_core::{DnsRecordId, ErrorKind, ImageRef, ProviderError, SecretString};
use qovery_dr_providers::cloudflare::{CloudflareConfig, CloudflareDnsSwitcher};
use qovery_dr_providers::qovery::QoveryClusterProvider;
use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
use qovery_dr_providers::webhook::{WebhookFormat, WebhookNotifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The `Retry-After` values a broken or hostile peer may send.
const RETRY_AFTERS: [&str; 7] = [
    "18446744073709551615", // u64::MAX seconds
    "4611686018427387904",  // 2^62 seconds
    "-1",
    "Wed, 21 Oct 2015 07:28:00 GMT", // in the past
    "Fri, 31 Dec 9999 23:59:59 GMT", // far future
    "soon, maybe",
    "99999999999999999999999999999", // beyond u64
];

/// Fails the test if `call` takes longer than `limit` (an unbounded hang), else its result.
async fn bounded<T>(what: &str, limit: Duration, call: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(limit, call).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within {limit:?}: an unbounded hang"),
    }
}

fn assert_capped(what: &str, e: &ProviderError) {
    if let Some(d) = e.retry_after() {
        assert!(d <= DEFAULT_MAX_RETRY_AFTER, "{what}: retry-after {d:?} is above the cap: {e}");
    }
}

/// Each absurd `Retry-After` on a 429, through `call` (a server URI in, the error out):
/// a `RateLimited` error whose wait is capped.
async fn every_retry_after_is_rate_limited_and_capped<F, Fut>(provider: &str, call: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ProviderError>,
{
    for ra in RETRY_AFTERS {
        let server = answering(ResponseTemplate::new(429).insert_header("retry-after", ra)).await;
        let e = call(server.uri()).await;
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{provider}, Retry-After {ra}: {e}");
        assert_capped(&format!("{provider}, Retry-After {ra}"), &e);
    }
}

async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(template).mount(&server).await;
    server
}

/// A raw HTTP/1.1 server on 127.0.0.1 that answers every request with `200` and a body of
/// `total` bytes (`None`: never ends, a chunk every 100 ms), chunked, with no length.
async fn raw_server(total: Option<u64>, content_type: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = sock.read(&mut buf).await;
                let head =
                    format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n");
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0u64;
                loop {
                    if total.is_some_and(|t| sent >= t) {
                        let _ = sock.write_all(b"0\r\n\r\n").await;
                        return;
                    }
                    let frame = format!("{:x}\r\n", chunk.len());
                    let ok = sock.write_all(frame.as_bytes()).await.is_ok()
                        && sock.write_all(&chunk).await.is_ok()
                        && sock.write_all(b"\r\n").await.is_ok();
                    if !ok {
                        return;
                    }
                    sent += chunk.len() as u64;
                    if total.is_none() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

// ---- Qovery -----------------------------------------------------------------------------

fn qovery(uri: &str, attempts: u32) -> QoveryClusterProvider {
    QoveryClusterProvider::builder("org-1")
        .with_token(qovery_dr_core::SecretString::new("t"))
        .with_endpoint(uri)
        .with_timeouts(TimeoutConfig {
            request: Duration::from_secs(2),
            connect: Duration::from_secs(1),
            ..Default::default()
        })
        .with_retry(qovery_dr_core::resilience::RetryConfig::new(attempts, Duration::from_millis(10)))
        .build()
        .unwrap()
}

async fn qovery_call(uri: &str, attempts: u32) -> ProviderError {
    bounded("qovery list_services", Duration::from_secs(20), qovery(uri, attempts).list_services(&"env-1".into()))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn qovery_survives_hostile_answers() {
    every_retry_after_is_rate_limited_and_capped("qovery", |uri| async move { qovery_call(&uri, 1).await }).await;
    // A 429 storm: retried here, then marked so that the engine does not retry on top.
    let storm = answering(ResponseTemplate::new(429).insert_header("retry-after", "0")).await;
    let e = qovery_call(&storm.uri(), 3).await;
    assert_eq!((e.kind(), e.retries_exhausted()), (ErrorKind::RateLimited, Some(3)), "{e}");
    assert_eq!(storm.received_requests().await.unwrap().len(), 3);
    // Malformed JSON.
    let garbage = answering(ResponseTemplate::new(200).set_body_string("{\"results\": [")).await;
    let e = qovery_call(&garbage.uri(), 1).await;
    assert!(e.message().contains("unexpected response body"), "{e}");
    // An answer that never ends: the request's deadline ends it.
    let endless = raw_server(None, "application/json").await;
    let t = Instant::now();
    let e = qovery_call(&endless, 1).await;
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(e.is_retryable(), "{e}");
    // 100 MiB: refused past the size limit, not buffered.
    let huge = raw_server(Some(100 * 1024 * 1024), "application/json").await;
    let e = qovery_call(&huge, 1).await;
    assert!(e.message().contains("longer than"), "{e}");
}

// ---- Cloudflare -------------------------------------------------------------------------

async fn cloudflare_call(base: &str) -> ProviderError {
    let config = CloudflareConfig::new("zone-1", SecretString::new("t"))
        .with_api_base(base)
        .with_timeouts(TimeoutConfig { request: Duration::from_secs(2), ..Default::default() });
    let dns = CloudflareDnsSwitcher::new(config).unwrap();
    bounded("cloudflare current", Duration::from_secs(20), dns.current(&DnsRecordId::new("app.example.com")))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn cloudflare_survives_hostile_answers() {
    every_retry_after_is_rate_limited_and_capped("cloudflare", |uri| async move { cloudflare_call(&uri).await }).await;
    let garbage = answering(ResponseTemplate::new(200).set_body_string("<html>not json</html>")).await;
    let e = cloudflare_call(&garbage.uri()).await;
    assert!(e.message().contains("not a Cloudflare envelope"), "{e}");
    let endless = raw_server(None, "application/json").await;
    let t = Instant::now();
    let e = cloudflare_call(&endless).await;
    assert!(t.elapsed() < Duration::from_secs(10) && e.is_retryable(), "{e} after {:?}", t.elapsed());
    let huge = raw_server(Some(100 * 1024 * 1024), "application/json").await;
    let e = cloudflare_call(&huge).await;
    assert!(e.message().contains("longer than"), "{e}");
}

// ---- OCI registry -----------------------------------------------------------------------

async fn registry_call(uri: &str) -> ProviderError {
    let url: url::Url = uri.parse().unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    use qovery_dr_core::provider::{RegistryLocation, RegistryMapping};
    let mapping = RegistryMapping::new(
        RegistryLocation { host: host.clone(), prefix: None },
        RegistryLocation { host: host.clone(), prefix: Some("dr".into()) },
    );
    let sync = OciRegistrySync::new(url.clone(), RegistryAuth::Anonymous, url, RegistryAuth::Anonymous, mapping)
        .with_timeouts(TimeoutConfig { request: Duration::from_secs(2), ..TimeoutConfig::default() });
    let image: ImageRef = format!("{host}/shop/api:v1").parse().unwrap();
    bounded("registry parity", Duration::from_secs(20), sync.parity(&image)).await.unwrap_err()
}

#[tokio::test]
async fn the_registry_client_survives_hostile_answers() {
    every_retry_after_is_rate_limited_and_capped("registry", |uri| async move { registry_call(&uri).await }).await;
    let endless = raw_server(None, "application/vnd.oci.image.manifest.v1+json").await;
    let t = Instant::now();
    let e = registry_call(&endless).await;
    assert!(t.elapsed() < Duration::from_secs(10), "{e} after {:?}", t.elapsed());
    let huge = raw_server(Some(100 * 1024 * 1024), "application/vnd.oci.image.manifest.v1+json").await;
    let e = registry_call(&huge).await;
    assert!(e.message().contains("longer than"), "{e}");
}

// ---- Webhook ----------------------------------------------------------------------------

#[tokio::test]
async fn the_webhook_notifier_survives_hostile_answers() {
    let note = crate::notification("shop");
    for ra in RETRY_AFTERS {
        let server = answering(ResponseTemplate::new(429).insert_header("retry-after", ra)).await;
        let hook = WebhookNotifier::new(format!("{}/hook", server.uri()).parse().unwrap(), WebhookFormat::Generic)
            .with_retry(qovery_dr_core::resilience::RetryConfig::new(1, Duration::from_millis(1)));
        let e =
            bounded("webhook notify", Duration::from_secs(20), qovery_dr_core::monitor::Notifier::notify(&hook, &note))
                .await
                .unwrap_err();
        assert!(e.to_string().contains("429"), "Retry-After {ra}: {e}");
    }
    // A backoff configured absurdly long is capped too: the notifier waits what the
    // shared RetryConfig computes, at most its max_backoff (the loop is tested in core).
    let absurd = qovery_dr_core::resilience::RetryConfig::new(2, Duration::from_secs(u64::MAX / 4));
    assert_eq!(absurd.backoff(1, None, 1.0), absurd.max_backoff);
    assert_eq!(absurd.backoff(60, Some(Duration::MAX), 1.0), absurd.max_retry_after);
    // A body that never ends, on an error answer: the notifier's deadline ends it.
    let endless = raw_server(None, "text/plain").await;
    let hook = WebhookNotifier::new(format!("{endless}/hook").parse().unwrap(), WebhookFormat::Generic)
        .with_retry(qovery_dr_core::resilience::RetryConfig::new(1, Duration::ZERO));
    let r = bounded(
        "webhook notify (endless)",
        Duration::from_secs(30),
        qovery_dr_core::monitor::Notifier::notify(&hook, &note),
    )
    .await;
    let _ = r; // 200 then an endless body: delivered or a transport error, but bounded.
}
