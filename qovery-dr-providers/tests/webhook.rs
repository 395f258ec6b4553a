//! The webhook notifier against a real HTTP server (wiremock).
#![cfg(feature = "webhook")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use qovery_dr_core::monitor::{Notification, Notifier};
use qovery_dr_core::readiness::CheckStatus;
use qovery_dr_core::{SecretString, Timestamp};
use qovery_dr_providers::webhook::{WebhookFormat, WebhookNotifier};
use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn notification(to: CheckStatus) -> Notification {
    Notification {
        plan: "shop".into(),
        check: "replication:shop-db".into(),
        from: CheckStatus::Pass,
        to,
        observed: "streaming, lag 2m".into(),
        expected: "within the RPO (1m)".into(),
        detail: "the standby lags more than the RPO".into(),
        at: Timestamp::from_unix_millis(1_780_000_000_000),
    }
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server.received_requests().await.unwrap().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
}

fn notifier(server: &MockServer, format: WebhookFormat) -> WebhookNotifier {
    WebhookNotifier::new(format!("{}/hook", server.uri()).parse().unwrap(), format)
        .with_retry(qovery_dr_core::resilience::RetryConfig::new(4, Duration::from_millis(10)))
}

#[tokio::test]
async fn generic_json_is_the_notification() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    notifier(&server, WebhookFormat::Generic).notify(&notification(CheckStatus::Fail)).await.unwrap();
    let b = &bodies(&server).await[0];
    assert_eq!(b["check"], "replication:shop-db");
    assert_eq!(b["to"], "fail");
    assert_eq!(b["plan"], "shop");
}

#[tokio::test]
async fn slack_gets_a_text_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    notifier(&server, WebhookFormat::Slack).notify(&notification(CheckStatus::Fail)).await.unwrap();
    let b = &bodies(&server).await[0];
    let text = b["text"].as_str().unwrap();
    assert!(text.starts_with(":red_circle: [shop] replication:shop-db PASS → FAIL"), "{text}");
    assert_eq!(b.as_object().unwrap().len(), 1, "Slack incoming webhooks take {{\"text\"}}");
}

#[tokio::test]
async fn pagerduty_events_v2_trigger_and_resolve_with_one_dedup_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_string(r#"{"status":"success","dedup_key":"x"}"#))
        .expect(2)
        .mount(&server)
        .await;
    let n = notifier(
        &server,
        WebhookFormat::PagerDuty { routing_key: SecretString::new("R0UT1NGKEY0000000000000000000000") },
    );
    n.notify(&notification(CheckStatus::Fail)).await.unwrap();
    let mut back = notification(CheckStatus::Pass);
    back.from = CheckStatus::Fail;
    n.notify(&back).await.unwrap();
    let b = bodies(&server).await;
    assert_eq!(b[0]["routing_key"], "R0UT1NGKEY0000000000000000000000");
    assert_eq!(b[0]["event_action"], "trigger");
    assert_eq!(b[0]["payload"]["severity"], "critical");
    assert_eq!(b[0]["payload"]["source"], "qovery-dr/shop");
    assert!(b[0]["payload"]["summary"].as_str().unwrap().len() <= 1024);
    assert_eq!(b[1]["event_action"], "resolve");
    assert_eq!(b[0]["dedup_key"], b[1]["dedup_key"], "the resolve closes the incident the trigger opened");
    for body in &b {
        for key in ["routing_key", "event_action", "dedup_key", "payload"] {
            assert!(body.get(key).is_some(), "{key} in {body}");
        }
        for key in ["summary", "source", "severity"] {
            assert!(body["payload"].get(key).is_some(), "payload.{key} is required by Events v2");
        }
    }
}

#[tokio::test]
async fn server_errors_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).up_to_n_times(2).mount(&server).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    notifier(&server, WebhookFormat::Generic).notify(&notification(CheckStatus::Fail)).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let t0 = std::time::Instant::now();
    notifier(&server, WebhookFormat::Generic).notify(&notification(CheckStatus::Fail)).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(1), "waited the Retry-After");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_gives_up_after_the_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_payload"))
        .mount(&server)
        .await;
    let e = notifier(&server, WebhookFormat::Slack).notify(&notification(CheckStatus::Fail)).await.unwrap_err();
    assert!(e.to_string().contains("400") && e.to_string().contains("invalid_payload"), "{e}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let e = notifier(&server, WebhookFormat::Generic).notify(&notification(CheckStatus::Fail)).await.unwrap_err();
    assert!(e.to_string().contains("after 4 attempts"), "{e}");
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn an_unreachable_receiver_is_an_error_naming_the_host_only() {
    let n = WebhookNotifier::new("http://127.0.0.1:9/services/SECRET/PATH".parse().unwrap(), WebhookFormat::Slack)
        .with_retry(qovery_dr_core::resilience::RetryConfig::new(2, Duration::from_millis(5)));
    let e = n.notify(&notification(CheckStatus::Fail)).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("127.0.0.1") && !text.contains("SECRET"), "{text}");
}
