//! The `pipeline` binary as a process: bad input is rejected with a clear message and exit code 3
//! before anything is configured, connected or written.

use std::process::{Command, Output};

fn pipeline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("the pipeline binary runs")
}

#[track_caller]
fn check(args: &[&str], code: i32, stderr_contains: &str) {
    let out = pipeline(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.contains(stderr_contains), "{args:?}: {stderr:?} does not contain {stderr_contains:?}");
}

#[test]
fn bad_dates_are_rejected_with_exit_code_3() {
    check(&["run", "--date", "2024-13-01"], 3, "invalid date \"2024-13-01\"");
    check(&["run", "--date", "2024-6-1"], 3, "expected YYYY-MM-DD");
    check(&["run", "--date", "2099-01-01"], 3, "is not complete yet");
    check(&["runs", "--date", "yesterday"], 3, "expected YYYY-MM-DD");
    check(
        &["validate", "--from", "2024-06-30", "--to", "2024-06-01"],
        3,
        "Start date 2024-06-30 is after end date 2024-06-01",
    );
    check(&["validate", "--date", "2099-01-01"], 3, "is not complete yet");
    check(&["run", "--no-such-flag"], 3, "unexpected argument '--no-such-flag'");
}

#[test]
fn missing_configuration_names_the_variable() {
    check(&["run", "--date", "2024-06-01"], 3, "BIGQUERY_PROJECT is not set");
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let out = pipeline(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("pipeline run --date 2024-06-01"), "{stdout}");
    assert!(
        stdout.contains("Exit codes: 0 pass, 1 warn, 2 fail (a check failed or the run failed), 3 error (bad input or configuration)"),
        "{stdout}"
    );
}
