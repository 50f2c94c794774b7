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
