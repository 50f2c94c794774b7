//! Running Google's official Node client: the pinned packages `scripts/setup-node.sh` installs under `target/`,
//! one script run per test with a JSON plan as its argument, and the one-line JSON result it prints. The client
//! finds the fake through `BIGQUERY_EMULATOR_HOST`, as a user's code does when the harness runs it. It installs
//! nothing: a missing or stale install, or no `node` at all, fails the test with the command that fixes it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use suites::{conformance_node, workspace_root};

/// A script run that takes longer than this has hung (a scenario takes well under a second, plus the client's
/// one-second backoff for each retried request).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Variables that would point the client elsewhere or change what it sends: other credentials, projects or
/// universes, the timestamp format of reads, and code preloaded into node.
const REMOVED_VARIABLES: [&str; 8] = [
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "GOOGLE_CLOUD_UNIVERSE_DOMAIN",
    "BIGQUERY_PICOSECOND_SUPPORT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_EXTRA_CA_CERTS",
];

/// Runs `suites/conformance/{script}` with `plan`, the client pointed at `emulator_host` (`http://127.0.0.1:PORT`),
/// and returns its JSON result. Panics with the script's output when it fails, which is how a conformance
/// mismatch reaches the test report.
pub async fn run(script: &str, emulator_host: &str, plan: &Value) -> Value {
    // Checked first so that a missing install is reported as such, not as a failing import.
    conformance_node();
    let path = workspace_root().join("suites/conformance").join(script);
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&path)
        .arg(plan.to_string())
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for variable in REMOVED_VARIABLES {
        command.env_remove(variable);
    }
    command
        .env("BIGQUERY_EMULATOR_HOST", emulator_host)
        // Loopback only, whatever proxy the machine sets (the client honours the proxy variables).
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|err| {
            panic!(
                "cannot run node {} ({err}): install Node 18 or newer with npm (Debian 12: `apt-get install nodejs \
                 npm`), then run `bash scripts/setup-node.sh`",
                path.display()
            )
        });
    super::script_result(script, plan, &output)
}
