//! Running the binaries and the venv's Python from the workspace root, with a deadline.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use market::TradingDay;

/// A run that takes longer has hung (the slowest, the Python example, takes a few seconds).
pub const DEADLINE: Duration = Duration::from_secs(180);

pub fn day() -> TradingDay {
    TradingDay::parse("2024-06-04").expect("valid day")
}

/// Few pairs and a low trade rate: each run is about a second.
pub const SYMBOLS: &str = "binance-futures:BTCUSDT;bitmex:XBTUSD;deribit:ETH-PERPETUAL";
pub const ACTIVITY: &str = "0.05";

pub use suites::{workspace_binary as binary, workspace_root};

/// The venv's interpreter (the Python example needs `tardis-dev` and `google-cloud-bigquery`).
pub use suites::conformance_python as python;

/// A command run from the workspace root, its output collected, killed if it outlives `DEADLINE`.
pub fn command(program: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .env("RUST_LOG", "warn")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

pub async fn output(mut command: tokio::process::Command) -> Output {
    let run = command.stdout(Stdio::piped()).stderr(Stdio::piped()).output();
    tokio::time::timeout(DEADLINE, run).await.expect("finished before the deadline").expect("the command starts")
}

pub fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
