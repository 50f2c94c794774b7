//! Posting to a fake incoming webhook (wiremock): transient errors are retried, a rejection is not, and the
//! URL stays out of every error. Backoff is a millisecond, so no test waits.

use std::time::Duration;

use harness::slack::{Poster, SlackError, Webhook};
use pipeline::retry::RetryPolicy;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The secret part of a webhook URL, as Slack's look.
const HOOK_PATH: &str = "/services/T0FAKE/B0FAKE/sEcReTtOkEn123";

const TINY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_millis(1),
    max_delay: Duration::from_millis(2),
    max_retry_after: Duration::from_secs(1),
};

fn poster() -> Poster {
    Poster::new(TINY).expect("client")
}

fn hook(server: &MockServer) -> Webhook {
    Webhook::parse(&format!("{}{HOOK_PATH}", server.uri())).expect("loopback http is allowed")
}

fn message() -> serde_json::Value {
    json!({"text": "✅ Nightly PASS — 2024-06-05", "blocks": []})
}

#[tokio::test]
async fn an_accepted_post_takes_one_request_carrying_the_payload_as_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(poster().post(&hook(&server), &message()).await.expect("posted"), 1);
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests[0].body_json::<serde_json::Value>().expect("json body"), message());
}

#[tokio::test]
async fn a_500_then_a_200_is_retried_and_succeeds_in_two_requests() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("rollup_error"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&server).await;
    assert_eq!(poster().post(&hook(&server), &message()).await.expect("posted on the retry"), 2);
    assert_eq!(server.received_requests().await.expect("recorded").len(), 2);
}

#[tokio::test]
async fn a_400_is_not_retried_and_is_reported_with_slacks_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_payload"))
        .expect(1)
        .mount(&server)
        .await;
    let error = poster().post(&hook(&server), &message()).await.expect_err("rejected");
    assert!(matches!(&error, SlackError::Rejected { status: 400, body } if body == "invalid_payload"), "{error:?}");
    assert_eq!(error.to_string(), "slack rejected the message: HTTP 400 invalid_payload");
}

#[tokio::test]
async fn a_429_waits_as_asked_then_posts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0").set_body_string("rate_limited"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&server).await;
    assert_eq!(poster().post(&hook(&server), &message()).await.expect("posted"), 3);
}

#[tokio::test]
async fn a_429_asking_for_longer_than_the_cap_gives_up_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let error = poster().post(&hook(&server), &message()).await.expect_err("gave up");
    assert!(matches!(error, SlackError::RateLimited { retry_after_s: 3600, cap_s: 1 }), "{error:?}");
}

#[tokio::test]
async fn a_server_error_that_persists_gives_up_after_the_policys_attempts_with_the_last_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("service_unavailable"))
        .expect(4)
        .mount(&server)
        .await;
    let error = poster().post(&hook(&server), &message()).await.expect_err("gave up");
    assert_eq!(
        error.to_string(),
        "slack did not accept the message after 4 attempts; the last: HTTP 503 service_unavailable"
    );
}

#[tokio::test]
async fn network_errors_are_retried_and_the_error_never_contains_the_url() {
    // A port that was just free: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}{HOOK_PATH}");
    let error = poster().post(&Webhook::parse(&url).expect("valid"), &message()).await.expect_err("refused");
    let text = format!("{error} {error:?}");
    assert!(matches!(error, SlackError::GaveUp { attempts: 4, .. }), "{text}");
    assert!(!text.contains(&url) && !text.contains("sEcReTtOkEn123") && !text.contains("/services/"), "{text}");
    assert!(text.contains("onnect"), "the cause is kept: {text}");
}

#[tokio::test]
async fn an_error_body_echoing_the_url_is_scrubbed() {
    let server = MockServer::start().await;
    let echoed = format!("no_service for {}{HOOK_PATH}", server.uri());
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(404).set_body_string(echoed)).mount(&server).await;
    let error = poster().post(&hook(&server), &message()).await.expect_err("rejected").to_string();
    assert_eq!(error, "slack rejected the message: HTTP 404 no_service for [webhook]");
}
