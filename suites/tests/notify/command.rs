//! `harness notify` as the nightly script runs it: a process reading the reports from disk, posting to
//! SLACK_WEBHOOK_URL when set. Its exit code is 0 whatever happens to the post, and the URL is never printed.

use std::path::Path;
use std::process::{Command, Output};

use market::checks::Status;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::scoring::ids::CANDLES_EQUAL_TRUTH;

use super::{check, digest, harness_binary};

const HOOK_PATH: &str = "/services/T0FAKE/B0FAKE/sEcReTtOkEn123";
const TOKEN: &str = "sEcReTtOkEn123";

const JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="0" errors="0" time="75.0">
  <testsuite name="suites::stages" tests="3" failures="0" errors="0">
    <testcase name="a" classname="suites::stages"/><testcase name="b" classname="suites::stages"/>
    <testcase name="c" classname="suites::stages"/>
  </testsuite>
</testsuites>"#;

/// A report directory as `harness run --report-dir` leaves it, plus a JUnit file beside it.
fn reports(dir: &Path, status: Status) {
    let failed = u64::from(status != Status::Pass) * 60;
    let report = digest(vec![check(CANDLES_EQUAL_TRUTH, status, failed, 17_280)]);
    harness::run::write_report(&report, dir).expect("write report");
    std::fs::write(dir.join("junit.xml"), JUNIT).expect("write junit");
}

fn notify(dir: &Path, webhook: Option<&str>, extra: &[&str]) -> Output {
    let mut command = Command::new(harness_binary());
    command
        .arg("notify")
        .arg("--report-dir")
        .arg(dir)
        .arg("--junit")
        .arg(dir.join("junit.xml"))
        .args(["--tests-exit-code", "0", "--duration-secs", "843", "--report-url", "https://ci.example/runs/7"])
        .args(extra)
        .env_remove("SLACK_WEBHOOK_URL")
        .env("RUST_LOG", "trace");
    if let Some(url) = webhook {
        command.env("SLACK_WEBHOOK_URL", url);
    }
    command.output().expect("harness notify runs")
}

fn assert_url_never_printed(out: &Output, url: &str) {
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains(url), "the webhook URL was printed:\n{all}");
    assert!(!all.contains(TOKEN) && !all.contains("/services/"), "part of the webhook URL was printed:\n{all}");
}

#[tokio::test]
async fn without_a_webhook_the_message_is_printed_and_the_exit_code_is_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    reports(dir.path(), Status::Pass);
    let saved = dir.path().join("slack-payload.json");
    let out = notify(dir.path(), None, &["--save-payload", saved.to_str().expect("utf-8 path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("✅ Nightly PASS — 2024-06-05\nTests:    ✅ 0 failed, 3 passed, 0 skipped of 3 in 1m 15s\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Duration: 14m 03s\nReport:   https://ci.example/runs/7\n"), "{stdout}");
    assert!(stderr.contains("SLACK_WEBHOOK_URL is not set; the message was printed, not posted"), "{stderr}");
    let payload: Value = serde_json::from_slice(&std::fs::read(&saved).expect("payload saved")).expect("json");
    assert_eq!(payload["blocks"][0]["text"]["text"], "✅ Nightly PASS — 2024-06-05");
}

#[tokio::test]
async fn json_output_is_the_payload_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    reports(dir.path(), Status::Fail);
    let out = notify(dir.path(), None, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let payload: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(payload["blocks"][0]["text"]["text"], "❌ Nightly FAIL — 2024-06-05");
}

#[tokio::test]
async fn a_500_then_a_200_posts_once_retried_and_never_prints_the_url() {
    let server = MockServer::start().await;
    // Retry-After: 0 keeps the production backoff out of the test's time.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).insert_header("Retry-After", "0").set_body_string("rollup_error"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&server).await;
    let url = format!("{}{HOOK_PATH}", server.uri());
    let dir = tempfile::tempdir().expect("tempdir");
    reports(dir.path(), Status::Fail);
    let out = notify(dir.path(), Some(&url), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("slack: posted (2 attempts)"), "{stderr}");
    assert_url_never_printed(&out, &url);
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 2);
    let posted: Value = requests[1].body_json().expect("json body");
    assert_eq!(posted["blocks"][0]["text"]["text"], "❌ Nightly FAIL — 2024-06-05");
    assert!(posted["text"].as_str().expect("fallback").contains("tests ✅ 0 failed, 3 passed"), "{posted}");
}

#[tokio::test]
async fn a_rejected_post_is_a_redacted_warning_and_the_exit_code_stays_0() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_string("invalid_token"))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("{}{HOOK_PATH}", server.uri());
    let dir = tempfile::tempdir().expect("tempdir");
    reports(dir.path(), Status::Pass);
    let out = notify(dir.path(), Some(&url), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr
            .contains("warning: the Slack message was not posted: slack rejected the message: HTTP 403 invalid_token"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("✅ Nightly PASS"), "the message is still printed");
    assert_url_never_printed(&out, &url);
}

#[tokio::test]
async fn an_unusable_webhook_url_is_a_warning_that_does_not_quote_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    reports(dir.path(), Status::Pass);
    let url = format!("http://hooks.example.com{HOOK_PATH}");
    let out = notify(dir.path(), Some(&url), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("plain http is only allowed to a loopback address"), "{stderr}");
    assert_url_never_printed(&out, &url);
}
