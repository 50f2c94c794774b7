//! `scripts/nightly.sh` end to end with `NIGHTLY_SKIP_TESTS=1` (the harness runs, the defect self-check and the
//! message; the test suite itself is what is running this test) against a fake Slack webhook. A night takes
//! about two seconds at activity 0.05.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{harness_binary, root};

const HOOK_PATH: &str = "/services/T0FAKE/B0FAKE/nIgHtLySeCrEt";

/// Runs the script for 2024-06-05 into `dir`, with no terminal and no standard input.
fn nightly(dir: &Path, webhook: Option<&str>, envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new("bash");
    command
        .arg(root().join("scripts/nightly.sh"))
        .env("NIGHTLY_SKIP_TESTS", "1")
        .env("NIGHTLY_DATE", "2024-06-05")
        .env("NIGHTLY_ACTIVITY", "0.05")
        .env("NIGHTLY_REPORT_DIR", dir)
        .env("NIGHTLY_DEFECTS", "dropped-hour")
        .env("NIGHTLY_CRASH_KILLS", "1")
        .env("NIGHTLY_SCENARIOS", "tardis-reset-mid-body bigquery-job-invalid")
        // Mutation testing takes tens of minutes: its step is the nightly's own; its parts are tested apart.
        .env("NIGHTLY_MUTANTS", "")
        // So does the performance comparison (a release build and a polars venv).
        .env("NIGHTLY_PERF", "0")
        .env("HARNESS_BIN", harness_binary())
        .env("RUST_LOG", "info")
        .env_remove("SLACK_WEBHOOK_URL")
        .env_remove("NIGHTLY_REPORT_URL")
        .env_remove("GITHUB_RUN_ID")
        .stdin(Stdio::null());
    assert!(std::env::var("HARNESS_DATABASE_URL").is_ok(), "the nextest setup script provides Postgres");
    for (key, value) in envs {
        command.env(key, value);
    }
    if let Some(url) = webhook {
        command.env("SLACK_WEBHOOK_URL", url);
    }
    command.output().expect("bash runs")
}

fn text(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn slack_answering(first: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(first).insert_header("Retry-After", "0").set_body_string("rollup_error"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&server).await;
    server
}

async fn posted(server: &MockServer) -> Vec<Value> {
    let requests = server.received_requests().await.expect("recorded");
    requests.iter().map(|r| r.body_json().expect("json body")).collect()
}

#[tokio::test]
async fn a_clean_night_writes_the_reports_posts_after_a_500_and_exits_0_without_printing_the_url() {
    let slack = slack_answering(500).await;
    let url = format!("{}{HOOK_PATH}", slack.uri());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = nightly(dir.path(), Some(&url), &[]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(!log.contains(&url) && !log.contains("nIgHtLySeCrEt"), "the webhook URL was printed:\n{log}");
    for file in ["report.json", "report.md", "report.html", "harness.log", "slack-payload.json"] {
        assert!(dir.path().join(file).is_file(), "{file}\n{log}");
    }
    assert!(dir.path().join("defects/dropped-hour/report.json").is_file(), "{log}");
    assert!(log.contains("nightly: defect dropped-hour caught") && log.contains("slack: posted (2 attempts)"), "{log}");
    assert!(log.contains("nightly: crash consistency: 1 kills, equal to a clean run"), "{log}");
    let crash: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("crash.json")).expect("crash.json")).expect("JSON");
    assert_eq!((crash["rows_lost"].as_u64(), crash["rows_extra"].as_u64()), (Some(0), Some(0)), "{crash}");
    assert!(log.contains("nightly: fault scenarios: 2 met, 0 not met, 0 not applicable, of 2"), "{log}");
    let scenarios: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scenarios.json")).expect("scenarios.json"))
            .expect("JSON");
    assert_eq!(scenarios[1]["outcome"], "failed_cleanly", "{scenarios}");
    assert!(String::from_utf8_lossy(&out.stdout).trim_end().ends_with("nightly: PASS"), "{log}");

    let posts = posted(&slack).await;
    assert_eq!(posts.len(), 2, "a 500, then the post that was accepted");
    let message = &posts[1];
    assert_eq!(message["blocks"][0]["text"]["text"], "✅ Nightly PASS — 2024-06-05");
    let summary = message["blocks"][1]["text"]["text"].as_str().expect("summary");
    assert!(summary.starts_with("*Tests* not run\n*Harness* ✅ pass (seed 42,"), "{summary}");
    assert!(summary.contains("\n*Defect self-check* ✅ 1 of 1 caught: dropped-hour caught\n"), "{summary}");
    assert!(summary.contains("\n*Crash consistency* ✅ 1 kills over 7 dates, final run exit 0, "), "{summary}");
    assert!(summary.ends_with("\n*Fault scenarios* ✅ 2 of 2 met, 0 n/a"), "{summary}");
    let context = message["blocks"].as_array().expect("blocks").last().expect("context").to_string();
    assert!(
        context.contains(&format!("{}/report.html", dir.path().canonicalize().expect("dir").display())),
        "{context}"
    );
    let saved: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("slack-payload.json")).expect("saved")).expect("json");
    assert_eq!(&saved, message, "the saved payload is the one posted");
}

#[tokio::test]
async fn a_rerun_replaces_the_nights_files_and_leaves_others_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("defects/old-defect")).expect("dir");
    std::fs::write(dir.path().join("junit.xml"), "stale").expect("write");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    for _ in 0..2 {
        let out = nightly(dir.path(), None, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("the message was printed, not posted"), "{}", text(&out));
    }
    assert!(!dir.path().join("junit.xml").exists(), "a stale JUnit report from another night is not reported");
    assert!(!dir.path().join("defects/old-defect").exists());
    assert_eq!(std::fs::read_to_string(dir.path().join("notes.txt")).expect("kept"), "mine");
}

#[tokio::test]
async fn a_defect_the_harness_does_not_catch_fails_the_night_and_the_message_still_goes_out() {
    let slack = slack_answering(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Not a defect the pipeline knows: `harness run` refuses the argument (exit 3, an error) and writes no
    // report. (The script also asks for the report, so no exit code alone counts as caught.)
    let out = nightly(
        dir.path(),
        Some(&format!("{}{HOOK_PATH}", slack.uri())),
        &[("NIGHTLY_DEFECTS", "dropped-hour no-such-defect")],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("nightly: defect no-such-defect MISSED (harness exit 3"), "{log}");
    assert!(log.contains("nightly: defect dropped-hour caught"), "{log}");
    let posts = posted(&slack).await;
    assert_eq!(posts.len(), 1, "{log}");
    assert_eq!(posts[0]["blocks"][0]["text"]["text"], "❌ Nightly FAIL — 2024-06-05");
    assert!(posts[0]["text"].as_str().expect("fallback").contains("1 of 2 caught"), "{:#}", posts[0]);
}

#[tokio::test]
async fn a_failed_post_does_not_change_a_failed_nights_exit_code_nor_hide_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A date that does not exist: the clean harness run cannot run (exit 3), so the night fails.
    let out = nightly(
        dir.path(),
        Some(&format!("{}{HOOK_PATH}", server.uri())),
        &[("NIGHTLY_DATE", "2024-02-30"), ("NIGHTLY_DEFECTS", "")],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("nightly: the harness run failed (exit 3)"), "{log}");
    assert!(
        log.contains("warning: the Slack message was not posted: slack rejected the message: HTTP 404 no_service"),
        "{log}"
    );
    assert!(log.contains("❌ Nightly ERROR — date unknown"), "the message is printed when it cannot be posted:\n{log}");
    assert!(String::from_utf8_lossy(&out.stdout).trim_end().ends_with("nightly: FAIL"), "{log}");
}

#[test]
fn the_mutation_script_refuses_an_unknown_scope_before_installing_anything() {
    let out = Command::new("bash")
        .arg(root().join("scripts/mutants.sh"))
        .arg("everything")
        .env("PATH", "/usr/bin:/bin") // no cargo: it must not get that far
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("unknown scope 'everything' (market, pipeline)"), "{}", text(&out));
}
