//! Error paths, each mapped to the kind the engine acts on.

use std::time::Duration;

use qovery_dr_core::provider::{ClusterProvider, VariableScope, VariableValue};
use qovery_dr_core::{EnvironmentId, ErrorKind};
use qovery_dr_providers::qovery::QoveryClusterProvider;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn provider(server: &MockServer) -> QoveryClusterProvider {
    QoveryClusterProvider::builder("org-1")
        .with_token(qovery_dr_core::SecretString::new("qov_errors"))
        .with_endpoint(server.uri())
        .with_retry(qovery_dr_core::resilience::RetryConfig::new(3, Duration::from_millis(10)))
        .with_timeouts(qovery_dr_core::resilience::TimeoutConfig {
            request: Duration::from_millis(500),
            connect: Duration::from_millis(500),
            ..Default::default()
        })
        .build()
        .unwrap()
}

fn env() -> EnvironmentId {
    EnvironmentId::new("e1")
}

async fn kind_for(status: u16) -> ErrorKind {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/environment/e1"))
        .respond_with(
            ResponseTemplate::new(status).set_body_json(serde_json::json!({"status": status, "detail": "scripted"})),
        )
        .mount(&server)
        .await;
    provider(&server).environment_status(&env()).await.unwrap_err().kind()
}

#[tokio::test]
async fn statuses_map_to_kinds() {
    assert_eq!(kind_for(401).await, ErrorKind::Unauthenticated);
    assert_eq!(kind_for(403).await, ErrorKind::PermissionDenied);
    assert_eq!(kind_for(404).await, ErrorKind::NotFound);
    assert_eq!(kind_for(400).await, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn the_detail_of_an_error_body_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(serde_json::json!({"status": 403, "detail": "token lacks ENVIRONMENT_READ"})),
        )
        .mount(&server)
        .await;
    let e = provider(&server).environment_status(&env()).await.unwrap_err();
    assert!(e.to_string().contains("token lacks ENVIRONMENT_READ"), "{e}");
}

#[tokio::test]
async fn a_deployment_in_progress_is_a_conflict() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/environment/e1/deploy"))
        .respond_with(ResponseTemplate::new(409).set_body_json(serde_json::json!({"status": 409, "detail": "busy"})))
        .mount(&server)
        .await;
    assert_eq!(provider(&server).deploy_environment(&env()).await.unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "a 409 is not retried");
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_given_delay() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount_empty_service_lists(&server).await;
    let t0 = std::time::Instant::now();
    provider(&server).list_services(&env()).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(1), "honoured Retry-After");
    // Exhausted: the error carries the retry-after.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .mount(&server)
        .await;
    let e = provider(&server).list_services(&env()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn server_errors_retry_reads_and_never_replay_writes() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(500)).up_to_n_times(2).mount(&server).await;
    mount_empty_service_lists(&server).await;
    provider(&server).list_services(&env()).await.unwrap();

    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(502)).mount(&server).await;
    let e = provider(&server).deploy_environment(&env()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Indeterminate, "{e}");
    assert!(e.to_string().contains("may have been applied"), "{e}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "a deploy is never sent twice blindly");
}

#[tokio::test]
async fn malformed_json_is_a_transient_error_naming_the_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .mount(&server)
        .await;
    let e = provider(&server).environment_status(&env()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains("/environment/e1") && e.to_string().contains("unexpected response body"), "{e}");
}

#[tokio::test]
async fn a_slow_server_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let e = provider(&server).environment_status(&env()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
}

#[tokio::test]
async fn tokens_and_jwts_use_their_scheme() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", "Token qov_errors"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"results": []})))
        .mount(&server)
        .await;
    provider(&server).list_variables(&VariableScope::Environment(env())).await.unwrap();
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl";
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", format!("Bearer {jwt}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"results": []})))
        .mount(&server)
        .await;
    let p = QoveryClusterProvider::builder("org-1")
        .with_token(qovery_dr_core::SecretString::new(jwt))
        .with_endpoint(server.uri())
        .build()
        .unwrap();
    p.list_variables(&VariableScope::Environment(env())).await.unwrap();
    let _ = VariableValue::Plain(String::new());
}

#[tokio::test]
async fn a_missing_token_is_a_configuration_error() {
    let e = QoveryClusterProvider::builder("org-1").build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("QOVERY_API_TOKEN"), "{e}");
}

/// Environment e1 lists no containers and no applications.
async fn mount_empty_service_lists(server: &MockServer) {
    for kind in ["container", "application", "job", "database"] {
        Mock::given(method("GET"))
            .and(path(format!("/environment/e1/{kind}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"results": []})))
            .mount(server)
            .await;
    }
}
