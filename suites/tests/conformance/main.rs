//! Conformance: the vendors' own clients work against our fakes unchanged. The official Python `tardis-dev`
//! package against the mock Tardis; Google's `google-cloud-bigquery` Python client, Google's
//! `@google-cloud/bigquery` Node client and the pipeline's own Rust client (`pipeline::bigquery`) against the fake
//! BigQuery.
//! Each test starts its own fakes, drives one client through a scenario, and checks both what the client saw and
//! what the fake stored and logged.
//!
//! The Python clients come from the pinned venv `scripts/setup-python.sh` builds, the Node client from the pinned
//! lockfile `scripts/setup-node.sh` installs (scripts/test.sh runs both); without them these tests fail and say
//! so, they never skip.

mod candles;
mod node;
mod node_bigquery;
mod python;
mod python_bigquery;
mod python_tardis;
mod rust_bigquery;

/// The one-line JSON result a client script printed last, after checking that it exited 0 with `"ok": true`.
/// Panics with the script's output otherwise, which is how a conformance mismatch reaches the test report.
fn script_result(script: &str, plan: &serde_json::Value, output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} ({}) failed with {}:\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}",
        plan["scenario"],
        output.status
    );
    let last = stdout.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or_default();
    let result: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|err| panic!("{script} printed no JSON result ({err}):\n{stdout}\n{stderr}"));
    assert_eq!(result["ok"], serde_json::Value::Bool(true), "{script}: {result}");
    result
}
