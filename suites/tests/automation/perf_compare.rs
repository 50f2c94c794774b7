//! `scripts/perf-compare.sh` runs for minutes (a release build, a polars venv, a 5M-trade file): the nightly runs
//! it. Here, what it refuses before building anything, and that the README carries its latest table.

use std::process::{Command, Stdio};

use super::{read, root};

#[test]
fn perf_compare_refuses_bad_variables_and_arguments_before_building_anything() {
    for (vars, arg, message) in [
        (vec![("PERF_RUNS", "x")], None, "PERF_RUNS must be a whole number of at least 1, got 'x'"),
        (vec![("PERF_TRADES", "0")], None, "PERF_TRADES must be a whole number of at least 1, got '0'"),
        (vec![("PERF_DATE", "2024-6-3")], None, "PERF_DATE must be YYYY-MM-DD, got '2024-6-3'"),
        (vec![("PERF_LARGE", "yes")], None, "PERF_LARGE must be 0 or 1, got 'yes'"),
        (vec![], Some("--fast"), "takes no arguments"),
    ] {
        let mut command = Command::new("bash");
        command.arg(root().join("scripts/perf-compare.sh")).args(arg).stdin(Stdio::null());
        // A target directory of its own: were the check late, nothing of the workspace's would be touched.
        let dir = tempfile::tempdir().expect("temp dir");
        command.env("CARGO_TARGET_DIR", dir.path());
        for (key, value) in &vars {
            command.env(key, value);
        }
        let out = command.output().expect("bash runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{vars:?}: {stderr}");
        assert!(stderr.contains(message), "{vars:?}: {stderr}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("listable").count(), 0, "{vars:?}: something was built");
    }
}

#[test]
fn the_readme_shows_the_latest_comparison_with_its_machine() {
    let readme = read("README.md");
    for needed in [
        "bash scripts/perf-compare.sh",
        "| decode floor (gunzip into nothing) |",
        "| polars 2.1 (`read_csv` + `group_by_dynamic(\"1m\")`) |",
        "this project's build machine (2 vCPUs",
    ] {
        assert!(readme.contains(needed), "the README's performance section lacks {needed:?}");
    }
}
