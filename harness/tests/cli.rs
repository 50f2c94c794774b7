//! The `harness` binary as a process: arguments are checked before any world starts.

use std::process::Command;

#[test]
fn a_bad_date_is_a_harness_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).args(["run", "--date", "2024-02-30"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid date \"2024-02-30\""));
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit codes: 0 pass, 1 warn, 2 fail, 3 harness error (harness exec: its command's status)."),
        "{help}"
    );
}

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_harness")).args(args).output().expect("runs")
}

#[test]
fn the_scenario_catalogue_is_listed() {
    let out = harness(&["scenario", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["tardis-reset-mid-body", "bigquery-insert-duplicate", "postgres-restart", "process-sigkill-at-upload"]
    {
        assert!(text.contains(name), "{name} in\n{text}");
    }
    let listed = text.lines().filter(|l| l.contains("recovers") || l.contains("fails_cleanly")).count();
    assert!(listed >= 25, "{listed} scenarios:\n{text}");
}

#[test]
fn an_unknown_scenario_is_a_harness_error_before_anything_starts() {
    for args in [
        &["scenario", "run", "tardis-429-short", "tardis-429-forever"][..],
        &["run", "--faults", "tardis-429-forever"][..],
        &["mocks", "serve", "--faults", "tardis-429-forever"][..],
    ] {
        let out = harness(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("\"tardis-429-forever\"") && stderr.contains("harness scenario list"), "{stderr}");
        assert!(!stderr.contains("[1/"), "nothing was started: {stderr}");
    }
}

#[test]
fn a_malformed_scenario_file_names_the_file_the_line_and_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "description = \"x\"\nexpect = \"recovers\"\n\n[[fault]]\nendpoint = \"tardis.datasets\"\nstatus = 503\ntimes = 2\n")
        .expect("written");
    let file = path.to_str().expect("UTF-8");
    for args in [&["scenario", "run", file][..], &["run", "--faults", file][..]] {
        let out = harness(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("{file}, line 7: unknown field `times`")), "{stderr}");
    }
}
