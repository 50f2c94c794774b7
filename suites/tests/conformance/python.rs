//! Running the official Python clients: the pinned venv `scripts/setup-python.sh` builds under `target/`, one
//! script run per test with a JSON plan as its argument, and the one-line JSON result it prints. It installs
//! nothing: a missing or stale venv fails the test with the command that fixes it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use suites::{conformance_python, workspace_root};

/// A script run that takes longer than this has hung (the slowest scenario waits about 5 s for a retry).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `suites/conformance/{script}` with `plan` and returns its JSON result. Panics with the script's output
/// when it fails, which is how a conformance mismatch reaches the test report.
pub async fn run(script: &str, plan: &Value) -> Value {
    let python = conformance_python();
    let path = workspace_root().join("suites/conformance").join(script);
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(&path)
        .arg(plan.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Loopback only, whatever proxy the machine sets (both clients honour the proxy variables).
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    // The plan says where the fakes are; nothing from the environment may point the clients elsewhere.
    for variable in ["BIGQUERY_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "PYTHONPATH"] {
        command.env_remove(variable);
    }
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|err| panic!("cannot run {} {}: {err}", python.display(), path.display()));
    super::script_result(script, plan, &output)
}
