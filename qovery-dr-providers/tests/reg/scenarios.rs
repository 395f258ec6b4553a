//! Sync scenarios on real registries.

use qovery_dr_core::provider::{ImageParity, RegistrySync};
use qovery_dr_core::{ErrorKind, ImageRef};

use super::conformance::sync;
use super::server::{RegistryServer, access_log, layer, push_image, push_index};

fn image(s: &RegistryServer, repo_tag: &str) -> ImageRef {
    format!("{}/{repo_tag}", s.host()).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_copies_everything_then_nothing_then_only_the_new_layer() {
    let (a, b) = (RegistryServer::start(), RegistryServer::start());
    let (l1, l2, l3, l4) = (layer(11, 300_000), layer(12, 200_000), layer(13, 100_000), layer(14, 150_000));
    push_image(&a.url(), "shop/api", "v1", &[l1.clone(), l2.clone(), l3.clone()]).await;
    let s = sync(&a, &b, None, None);
    let v1 = image(&a, "shop/api:v1");
    let r = s.sync_all(std::slice::from_ref(&v1)).await.unwrap();
    assert_eq!(r.blobs_copied, 4, "3 layers and the config: {r:?}");
    assert!(r.bytes_copied >= 600_000, "{r:?}");
    assert!(s.parity(&v1).await.unwrap().is_present());
    // A second sync moves nothing.
    let again = s.sync_all(std::slice::from_ref(&v1)).await.unwrap();
    assert_eq!((again.blobs_copied, again.bytes_copied), (0, 0), "{again:?}");
    // A second tag sharing 2 of 3 layers moves only the new layer (and its small config).
    push_image(&a.url(), "shop/api", "v2", &[l1, l2, l4]).await;
    let v2 = image(&a, "shop/api:v2");
    let before = access_log(&b).len();
    let r = s.sync_all(std::slice::from_ref(&v2)).await.unwrap();
    assert_eq!(r.blobs_copied, 2, "the new layer and the new config: {r:?}");
    assert!(r.bytes_copied >= 150_000 && r.bytes_copied < 151_000, "only the new layer's bytes: {r:?}");
    assert!(access_log(&b).len() > before, "the registry's access log records the requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_tag_is_a_mismatch_until_the_next_sync() {
    let (a, b) = (RegistryServer::start(), RegistryServer::start());
    push_image(&a.url(), "shop/web", "stable", &[layer(21, 10_000)]).await;
    let s = sync(&a, &b, None, None);
    let img = image(&a, "shop/web:stable");
    s.copy(&img).await.unwrap();
    let moved = push_image(&a.url(), "shop/web", "stable", &[layer(22, 10_000)]).await;
    match s.parity(&img).await.unwrap() {
        ImageParity::DigestMismatch { primary, .. } => assert_eq!(primary.to_string(), moved),
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let report = s.copy(&img).await.unwrap();
    assert_eq!(report.digest.to_string(), moved, "the DR copy has the source digest (never re-compressed)");
    assert!(s.parity(&img).await.unwrap().is_present());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_indexes_are_copied_child_by_child() {
    let (a, b) = (RegistryServer::start(), RegistryServer::start());
    let digest = push_index(&a.url(), "shop/multi", "v1", 31).await;
    let s = sync(&a, &b, None, None);
    let img = image(&a, "shop/multi:v1");
    assert!(matches!(s.parity(&img).await.unwrap(), ImageParity::Missing { .. }));
    let r = s.copy(&img).await.unwrap();
    assert_eq!(r.digest.to_string(), digest);
    assert_eq!(r.blobs_copied, 4, "two configs and two layers: {r:?}");
    assert!(s.parity(&img).await.unwrap().is_present());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_one_registry_blobs_are_mounted_not_copied() {
    let a = RegistryServer::start();
    push_image(&a.url(), "prod/api", "v1", &[layer(41, 500_000)]).await;
    let s = sync(&a, &a, Some("prod"), Some("dr"));
    let r = s.sync_all(&[image(&a, "prod/api:v1")]).await.unwrap();
    assert_eq!(r.bytes_copied, 0, "{r:?}");
    assert_eq!(r.blobs_mounted, 2, "{r:?}");
    assert!(access_log(&a).iter().any(|l| l.contains("mount=")), "the registry saw the mounts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_blob_is_refused_before_anything_is_committed() {
    let (a, b) = (RegistryServer::start(), RegistryServer::start());
    let l = layer(51, 64_000);
    let d = super::server::sha(&l);
    push_image(&a.url(), "shop/db", "v1", &[l]).await;
    // Flip bytes in the stored blob: the registry serves them as they are.
    let file = a.blob_file(&d);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let s = sync(&a, &b, None, None);
    let e = s.copy(&image(&a, "shop/db:v1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("corrupt") && e.to_string().contains("DIGEST_INVALID"), "{e}");
    let blob = reqwest::get(b.url().join(&format!("/v2/shop/db/blobs/{d}")).unwrap()).await.unwrap();
    assert_eq!(blob.status(), 404, "nothing was committed in the DR registry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_through_the_trait_answers_each_image_and_a_corrupt_blob_fails_only_its_image() {
    let (a, b) = (RegistryServer::start(), RegistryServer::start());
    let (shared, own_api, bad, own_worker) =
        (layer(81, 120_000), layer(82, 40_000), layer(83, 30_000), layer(84, 20_000));
    push_image(&a.url(), "shop/api", "v1", &[shared.clone(), own_api.clone()]).await;
    push_image(&a.url(), "shop/web", "v1", &[shared.clone(), bad.clone()]).await;
    push_image(&a.url(), "shop/worker", "v1", &[shared.clone(), own_worker.clone()]).await;
    let file = a.blob_file(&super::server::sha(&bad));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let given: Vec<ImageRef> =
        ["shop/api:v1", "shop/web:v1", "shop/nope:v1", "shop/worker:v1"].iter().map(|r| image(&a, r)).collect();
    // Through the trait object the README suggests: the batch path, not image by image.
    let s: std::sync::Arc<dyn RegistrySync> = std::sync::Arc::new(sync(&a, &b, None, None));
    let out = s.copy_all(&given).await.unwrap_or_else(|e| panic!("{e}"));
    let order: Vec<&ImageRef> = out.iter().map(|c| &c.image).collect();
    assert_eq!(order, given.iter().collect::<Vec<_>>());
    let (api, web, nope, worker) = (&out[0].result, &out[1].result, &out[2].result, &out[3].result);
    let web = web.as_ref().unwrap_err();
    assert_eq!(web.kind(), ErrorKind::InvalidInput, "{web}");
    assert!(web.message().contains("DIGEST_INVALID"), "{web}");
    assert_eq!(nope.as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    let (api, worker) = (api.as_ref().unwrap(), worker.as_ref().unwrap());
    // The shared layer and the shared config move once, counted on the first image that needs them.
    assert!(api.bytes_copied >= (shared.len() + own_api.len()) as u64, "{api:?}");
    assert_eq!((worker.blobs_copied, worker.bytes_copied), (1, own_worker.len() as u64), "{worker:?}");
    for (i, present) in [(0, true), (1, false), (3, true)] {
        assert_eq!(s.parity(&given[i]).await.unwrap().is_present(), present, "{}", given[i]);
    }
    // sync_all is all or nothing in what it returns: its error names each image that failed.
    let oci = sync(&a, &b, None, None);
    let e = oci.sync_all(&given).await.unwrap_err();
    assert!(e.message().starts_with("2 of 4 images could not be synced (2 were): "), "{e}");
    assert!(e.message().contains(&format!("{}: ", given[1])) && e.message().contains("DIGEST_INVALID"), "{e}");
    assert!(e.message().contains(&format!("{}: ", given[2])), "{e}");
    assert!(!e.message().contains(&format!("{}: ", given[0])), "only what failed is named: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_registry_is_a_typed_error_not_a_hang() {
    let (a, mut b) = (RegistryServer::start(), RegistryServer::start());
    push_image(&a.url(), "shop/api", "v1", &[layer(61, 1000)]).await;
    b.stop();
    let s = sync(&a, &b, None, None);
    let t0 = std::time::Instant::now();
    let e = s.parity(&image(&a, "shop/api:v1")).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(15));
    let e = s.parity(&image(&a, "shop/nope:v1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

mod auth {
    //! The bearer token flow and basic auth, against a scripted registry (wiremock).

    use qovery_dr_core::provider::{RegistryLocation, RegistryMapping, RegistrySync};
    use qovery_dr_core::{ErrorKind, SecretString};
    use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn sync(src: &MockServer, dst: &MockServer, auth: RegistryAuth) -> OciRegistrySync {
        let host = |s: &MockServer| s.uri().trim_start_matches("http://").to_owned();
        let mapping = RegistryMapping::new(
            RegistryLocation { host: host(src), prefix: None },
            RegistryLocation { host: host(dst), prefix: None },
        );
        OciRegistrySync::new(
            src.uri().parse().unwrap(),
            auth,
            dst.uri().parse().unwrap(),
            RegistryAuth::Anonymous,
            mapping,
        )
    }

    #[tokio::test]
    async fn the_bearer_token_flow_with_basic_credentials() {
        let (src, dst) = (MockServer::start().await, MockServer::start().await);
        let realm = format!("{}/token", src.uri());
        Mock::given(method("HEAD"))
            .and(path("/v2/app/manifests/v1"))
            .and(header("authorization", "Bearer T0K3N"))
            .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", DIGEST))
            .mount(&src)
            .await;
        Mock::given(method("HEAD"))
            .and(path("/v2/app/manifests/v1"))
            .respond_with(
                ResponseTemplate::new(401).insert_header(
                    "www-authenticate",
                    format!(r#"Bearer realm="{realm}",service="registry.example.com",scope="repository:app:pull""#)
                        .as_str(),
                ),
            )
            .mount(&src)
            .await;
        // The token endpoint wants basic credentials (user:s3cret) and the challenge's service and scope.
        Mock::given(method("GET"))
            .and(path("/token"))
            .and(query_param("service", "registry.example.com"))
            .and(query_param("scope", "repository:app:pull"))
            .and(header("authorization", "Basic dXNlcjpzM2NyZXQ="))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "token": "T0K3N" })))
            .expect(1)
            .mount(&src)
            .await;
        Mock::given(method("HEAD")).respond_with(ResponseTemplate::new(404)).mount(&dst).await;
        let (src_limit, dst_limit) = (
            qovery_dr_providers::RateLimiter::new(100, std::time::Duration::from_secs(1)),
            qovery_dr_providers::RateLimiter::new(100, std::time::Duration::from_secs(1)),
        );
        let s =
            sync(&src, &dst, RegistryAuth::Basic { username: "user".into(), password: SecretString::new("s3cret") })
                .with_rate_limits(src_limit.clone(), dst_limit.clone());
        let image = format!("{}/app:v1", src.uri().trim_start_matches("http://")).parse().unwrap();
        let parity = s.parity(&image).await.unwrap();
        assert!(matches!(parity, qovery_dr_core::provider::ImageParity::Missing { .. }), "{parity:?}");
        assert!(!format!("{s:?}").contains("s3cret"), "credentials never print");
        // Every request sent took a slot of its registry's limiter, the token endpoint's too.
        let sent: Vec<String> =
            src.received_requests().await.unwrap().iter().map(|r| format!("{} {}", r.method, r.url.path())).collect();
        assert!(sent.iter().any(|r| r == "GET /token"), "{sent:?}");
        assert_eq!(src_limit.granted(), sent.len() as u64, "{sent:?}");
        assert_eq!(dst_limit.granted(), dst.received_requests().await.unwrap().len() as u64);
    }

    #[tokio::test]
    async fn registry_error_codes_map_to_kinds() {
        let (src, dst) = (MockServer::start().await, MockServer::start().await);
        Mock::given(method("HEAD")).respond_with(ResponseTemplate::new(403)).mount(&src).await;
        let s = sync(&src, &dst, RegistryAuth::Anonymous);
        let image = format!("{}/app:v1", src.uri().trim_start_matches("http://")).parse().unwrap();
        assert_eq!(s.parity(&image).await.unwrap_err().kind(), ErrorKind::PermissionDenied);
        let (src, dst) = (MockServer::start().await, MockServer::start().await);
        Mock::given(method("HEAD"))
            .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", DIGEST))
            .mount(&src)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_json(
                serde_json::json!({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}),
            ))
            .mount(&src)
            .await;
        Mock::given(method("HEAD"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3"))
            .mount(&dst)
            .await;
        let s = sync(&src, &dst, RegistryAuth::Anonymous);
        let image = format!("{}/app:v1", src.uri().trim_start_matches("http://")).parse().unwrap();
        let e = s.parity(&image).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(3)));
        let e = s.copy(&image).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
    }
}

mod refused_credentials {
    //! A wrong or missing password stops a sync at the first refusal, and the error says
    //! which side, which host, which repository, and whether credentials were sent.

    use qovery_dr_core::ErrorKind;
    use qovery_dr_core::provider::{RegistryLocation, RegistryMapping};
    use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};

    use super::super::server::{RegistryServer, access_log, layer, push_image};
    use super::image;

    /// htpasswd for user dr, password qdr-registry-pw-42.
    const BCRYPT: &str = "$2b$12$YR0paBaq/FZn5JsjbYyPm.lw8K6WpaHHnnaFZ/mN/kCBTALpy0/Dy";
    const LAYERS: usize = 40;

    fn sync_to(a: &RegistryServer, b: &RegistryServer, dest_auth: RegistryAuth) -> OciRegistrySync {
        let mapping = RegistryMapping::new(
            RegistryLocation { host: a.host(), prefix: None },
            RegistryLocation { host: b.host(), prefix: None },
        );
        OciRegistrySync::new(a.url(), RegistryAuth::Anonymous, b.url(), dest_auth, mapping)
    }

    async fn source_with_many_layers() -> RegistryServer {
        let a = RegistryServer::start();
        let layers: Vec<Vec<u8>> = (0..LAYERS as u64).map(|i| layer(500 + i, 2_000)).collect();
        push_image(&a.url(), "shop/api", "v1", &layers).await;
        a
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_dr_password_stops_at_the_first_refusal_and_names_the_dr_registry() {
        let a = source_with_many_layers().await;
        let b = RegistryServer::start_with_basic_auth("dr", BCRYPT);
        let wrong = RegistryAuth::Basic {
            username: "dr".into(),
            password: qovery_dr_core::SecretString::new("not-the-password"),
        };
        let s = sync_to(&a, &b, wrong).with_concurrency(8);
        let e = s.sync_all(&[image(&a, "shop/api:v1")]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
        let m = e.message();
        assert!(m.starts_with(&format!("DR registry {}", b.host())), "names the side and host: {m}");
        assert!(m.contains("refused the credentials configured for it"), "{m}");
        assert!(m.contains("repository shop/api"), "names the repository: {m}");
        assert!(!m.contains("not-the-password"), "{m}");
        // Before: one refused request per blob and more (277 for a 27-image data set).
        // Now the copies in flight when the first refusal comes back, and no more.
        let refused = access_log(&b).len();
        assert!(refused <= 8 + 2, "{refused} requests reached the DR registry for {} blobs", LAYERS + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_dr_password_says_no_credentials_are_configured() {
        let a = source_with_many_layers().await;
        let b = RegistryServer::start_with_basic_auth("dr", BCRYPT);
        let e = sync_to(&a, &b, RegistryAuth::Anonymous).sync_all(&[image(&a, "shop/api:v1")]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
        assert!(
            e.message().contains(&format!("DR registry {} (no credentials are configured for it", b.host())),
            "{e}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refusing_source_is_named_as_the_source() {
        let a = RegistryServer::start_with_basic_auth("dr", BCRYPT);
        let b = RegistryServer::start();
        let s = sync_to(&a, &b, RegistryAuth::Anonymous);
        let e = s.sync_all(&[image(&a, "shop/api:v1")]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
        assert!(e.message().starts_with(&format!("source registry {}", a.host())), "{e}");
        assert!(e.message().contains("repository shop/api, manifest v1"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dr_registry_restarted_mid_sync_costs_a_retry_not_the_sync() {
    let a = RegistryServer::start();
    let mut b = RegistryServer::start();
    let layers: Vec<Vec<u8>> = (0..30u64).map(|i| layer(700 + i, 400_000)).collect();
    push_image(&a.url(), "shop/api", "v1", &layers).await;
    let s = sync(&a, &b, None, None).with_concurrency(2);
    let v1 = image(&a, "shop/api:v1");
    let running = tokio::spawn({
        let (s, v1) = (s.clone(), v1.clone());
        async move { s.sync_all(std::slice::from_ref(&v1)).await }
    });
    // Once some blobs are in, the DR registry goes down for a moment and comes back.
    let start = std::time::Instant::now();
    while access_log(&b).len() < 12 {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the sync never got going");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!running.is_finished(), "the restart happens mid-sync");
    b.restart();
    let report = running.await.unwrap().unwrap_or_else(|e| panic!("the sync failed on a restart: {e}"));
    assert_eq!(report.blobs_copied + report.blobs_skipped, 31, "every layer and the config: {report:?}");
    assert!(s.parity(&v1).await.unwrap().is_present(), "in digest parity after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_of_a_destination_in_parity_asks_one_digest_per_image_and_writes_nothing() {
    let (a, b) = (RegistryServer::start(), RegistryServer::start());
    let images: Vec<_> = (0..5u64)
        .map(|i| (format!("shop/svc{i}"), (0..6u64).map(|l| layer(900 + 10 * i + l, 5_000)).collect::<Vec<_>>()))
        .collect();
    for (repo, layers) in &images {
        push_image(&a.url(), repo, "v1", layers).await;
    }
    let refs: Vec<_> = images.iter().map(|(repo, _)| image(&a, &format!("{repo}:v1"))).collect();
    let s = sync(&a, &b, None, None);
    let first = s.sync_all(&refs).await.unwrap();
    // 30 layers and one config (the same bytes for all five: copied once, mounted four times).
    assert_eq!(
        (first.images, first.images_in_parity, first.blobs_copied + first.blobs_mounted),
        (5, 0, 35),
        "{first:?}"
    );
    let (before_a, before_b) = (access_log(&a).len(), access_log(&b).len());
    let again = s.sync_all(&refs).await.unwrap();
    assert_eq!((again.images, again.images_in_parity, again.blobs_copied, again.blobs_skipped), (5, 5, 0, 0));
    assert!(again.per_image.iter().all(|i| i.was_in_parity && first.per_image.iter().any(|f| f.digest == i.digest)));
    let (to_a, to_b): (Vec<String>, Vec<String>) =
        (access_log(&a)[before_a..].to_vec(), access_log(&b)[before_b..].to_vec());
    // One manifest read per image at the source, one digest question per image at the
    // destination (before: a HEAD per blob and a PUT per manifest).
    assert_eq!((to_a.len(), to_b.len()), (5, 5), "source {to_a:#?}\ndestination {to_b:#?}");
    assert!(to_b.iter().all(|l| l.contains("\"HEAD /v2/")), "{to_b:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_with_immutable_tags_in_parity_is_never_written() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let a = RegistryServer::start();
    let digest = push_image(&a.url(), "shop/api", "v1", &[layer(950, 3_000)]).await;
    // Like ECR with tag immutability: the tag exists, and any PUT of it is refused.
    let dst = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path("/v2/shop/api/manifests/v1"))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", digest.as_str()))
        .mount(&dst)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"errors":[{"code":"TAG_INVALID","message":"tag v1 is immutable: ImageTagAlreadyExistsException"}]}"#,
        ))
        .mount(&dst)
        .await;
    let s = sync_to_scripted(&a, &dst);
    let r = s.sync_all(&[image(&a, "shop/api:v1")]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.images_in_parity, 1);
    let requests = dst.received_requests().await.unwrap();
    assert_eq!(requests.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["HEAD"], "{requests:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_copy_cancels_every_upload_session_it_started() {
    use qovery_dr_core::resilience::RetryConfig;
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let a = RegistryServer::start();
    push_image(&a.url(), "shop/api", "v1", &[layer(960, 3_000)]).await;
    // A DR registry that opens upload sessions but fails every upload.
    let dst = MockServer::start().await;
    Mock::given(method("HEAD")).respond_with(ResponseTemplate::new(404)).mount(&dst).await;
    Mock::given(method("POST"))
        .and(path_regex("^/v2/shop/api/blobs/uploads/$"))
        .respond_with(ResponseTemplate::new(202).insert_header("location", "/v2/shop/api/blobs/uploads/session-1"))
        .mount(&dst)
        .await;
    Mock::given(method("PUT")).respond_with(ResponseTemplate::new(500)).mount(&dst).await;
    Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(204)).mount(&dst).await;
    let dst_limit = qovery_dr_providers::RateLimiter::new(1000, std::time::Duration::from_secs(1));
    let s = sync_to_scripted(&a, &dst)
        .with_retry(RetryConfig::new(2, std::time::Duration::from_millis(10)))
        .with_rate_limits(qovery_dr_providers::RateLimiter::unlimited(), dst_limit.clone());
    let e = s.sync_all(&[image(&a, "shop/api:v1")]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    let requests = dst.received_requests().await.unwrap();
    // The uploads' PUTs and the cancelling DELETEs took a slot of the DR registry's limiter
    // like every other request.
    let sent: Vec<String> = requests.iter().map(|r| format!("{} {}", r.method, r.url.path())).collect();
    assert_eq!(dst_limit.granted(), requests.len() as u64, "{sent:?}");
    let count = |m: &str| requests.iter().filter(|r| r.method.as_str() == m).count();
    assert!(count("POST") >= 2, "sessions were opened (and retried): {requests:?}");
    assert_eq!(count("DELETE"), count("POST"), "every session opened was cancelled");
    // Each upload is one monolithic PUT of the body, its length stated (ECR refuses chunked bodies).
    assert_eq!(count("PATCH"), 0, "{requests:?}");
    // (The config and the layer upload side by side, in either order.)
    let puts: Vec<_> = requests.iter().filter(|r| r.method.as_str() == "PUT").collect();
    for put in &puts {
        let length = put.headers.get("content-length").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(length, Some(put.body.len().to_string()), "the length is stated: {put:?}");
        assert!(put.url.query().unwrap_or_default().starts_with("digest=sha256%3A"), "{}", put.url);
    }
    assert!(puts.iter().any(|p| p.body.len() == 3000), "the layer went up in one PUT");
    assert!(
        requests
            .iter()
            .filter(|r| r.method.as_str() == "DELETE")
            .all(|r| r.url.path() == "/v2/shop/api/blobs/uploads/session-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_under_a_prefix_is_listed_page_by_page_and_synced() {
    let (a, b) = (RegistryServer::start(), RegistryServer::start());
    for (repo, tags) in [("team/api", 3u64), ("team/web", 2), ("team/worker", 1), ("other/tool", 1)] {
        for t in 0..tags {
            push_image(&a.url(), repo, &format!("v{t}"), &[layer(1000 + t, 2_000)]).await;
        }
    }
    // Two entries per page: the catalog takes two pages, team/api's tags two.
    let s = sync(&a, &b, None, None).with_list_page_size(2);
    assert_eq!(s.list_repositories("team/").await.unwrap(), ["team/api", "team/web", "team/worker"]);
    let mut tags = s.list_tags("team/api").await.unwrap();
    tags.sort();
    assert_eq!(tags, ["v0", "v1", "v2"]);
    let pages = access_log(&a).iter().filter(|l| l.contains("GET /v2/_catalog")).count();
    assert_eq!(pages, 2, "four repositories, two per page: the Link header was followed");
    let report = s.sync_prefix("team/").await.unwrap();
    assert_eq!((report.images, report.images_in_parity), (6, 0), "{report:?}");
    for (repo, tag) in [("team/api", "v2"), ("team/web", "v1"), ("team/worker", "v0")] {
        assert!(s.parity(&image(&a, &format!("{repo}:{tag}"))).await.unwrap().is_present(), "{repo}:{tag}");
    }
    assert!(!s.parity(&image(&a, "other/tool:v0")).await.unwrap().is_present(), "outside the prefix");
}

/// A sync from the real registry `a` to the scripted (wiremock) DR registry `dst`.
fn sync_to_scripted(a: &RegistryServer, dst: &wiremock::MockServer) -> qovery_dr_providers::registry::OciRegistrySync {
    use qovery_dr_core::provider::{RegistryLocation, RegistryMapping};
    use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
    let mapping = RegistryMapping::new(
        RegistryLocation { host: a.host(), prefix: None },
        RegistryLocation { host: dst.uri().trim_start_matches("http://").to_owned(), prefix: None },
    );
    OciRegistrySync::new(a.url(), RegistryAuth::Anonymous, dst.uri().parse().unwrap(), RegistryAuth::Anonymous, mapping)
}
