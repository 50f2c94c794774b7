//! The `harness` command line: what the user typed (clap, parsed into typed values at the edge), the
//! library operation it asks for, how the outcome is shown, and its exit code, by the workspace's one
//! contract (`pipeline::cli::Exit`). One module per command.

mod coverage;
mod crash;
mod exec;
pub mod load;
mod mocks;
mod notify;
mod run;
mod scenario;

use clap::{Parser, Subcommand};
use pipeline::cli::Exit;

#[derive(Debug, Parser)]
#[command(
    name = "harness",
    version,
    about = "Test harness for the daily market-data pipeline: fakes, a real Postgres, ground-truth scoring",
    after_help = "Examples:\n  harness run                               # yesterday (UTC), seed 42, report in reports/\n  harness run --date 2024-06-01 --seed 7 --report-dir /tmp/r\n  harness run --date 2024-06-01 --pipeline-cmd \"python3 my_pipeline.py --date {date}\"\n  harness exec -- env                       # any command with the fakes, a database and their environment\n  harness mocks serve --port-tardis 9001 --port-bigquery 9050 --from 2024-06-01 --to 2024-06-30\n  harness scenario list                     # the fault scenarios; harness scenario run NAME runs one\n\nExit codes: 0 pass, 1 warn, 2 fail, 3 harness error (harness exec: its command's status)."
)]
pub struct Cli {
    #[command(flatten)]
    pub log: pipeline::cli::LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline for one date against generated data and score it against ground truth.
    Run(run::RunArgs),
    /// Start the fakes and a fresh Postgres database, run COMMAND with their environment (printed first), and
    /// exit with its status (128 + n when signal n ended it); SIGINT and SIGTERM are forwarded to it.
    #[command(
        after_help = "Examples:\n  harness exec -- env\n  harness exec --from 2024-06-01 --to 2024-06-03 -- python3 my_pipeline.py --date 2024-06-02\n  harness exec --replay-dir capture -- cargo run -p pipeline -- run --date 2024-06-03"
    )]
    Exec(exec::ExecArgs),
    /// The load and recovery benchmark: normal load (1, 2, 4 workers), concurrent daily runs, transient faults on
    /// every endpoint, a memory-capped process; throughput, stage latencies, peak RSS, CPU, retries, success.
    Load(load::LoadArgs),
    /// Crash consistency: a backfill (or any command) killed with SIGKILL at seeded random moments and resumed each
    /// time, then compared row for row with a clean run of the same dates.
    Crash(crash::CrashArgs),
    /// Fault scenarios: the built-in catalogue (`list`), and scenarios run against the reference pipeline or any
    /// command, each judged against its expectation (`run`).
    Scenario {
        #[command(subcommand)]
        command: scenario::ScenarioCommand,
    },
    /// The coverage matrix: each documented rule of the candles and the table layout, the seeded defect that
    /// breaks it and the check that catches it; `--run` proves every row.
    Coverage(coverage::CoverageArgs),
    /// The fakes as standalone servers (`serve`), and one generated trades file on disk (`trades-file`).
    Mocks {
        #[command(subcommand)]
        command: mocks::MocksCommand,
    },
    /// Build the nightly message (pass/fail, scores and thresholds, failing checks, test counts, duration, report
    /// location) and post it to the Slack webhook in SLACK_WEBHOOK_URL, or print it when that is not set. Exits
    /// 0 even when the post fails (a redacted warning is printed): the nightly's result is the tests'.
    #[command(
        after_help = "Examples:\n  harness notify --report-dir reports/nightly/2024-06-03 --junit target/nextest/nightly/junit.xml --tests-exit-code 0\n  harness notify --report-dir reports --json    # print the Slack payload"
    )]
    Notify(notify::NotifyArgs),
}

/// Runs the command `cli` names. An `Err` is bad input or a failure of the harness itself (exit 3).
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Exec(args) => exec::run(args).await,
        Command::Load(args) => load::run(args).await,
        Command::Crash(args) => crash::run(args).await,
        Command::Coverage(args) => coverage::run(args).await,
        Command::Scenario { command } => scenario::run(command).await,
        Command::Mocks { command } => mocks::run(command).await,
        Command::Notify(args) => notify::run(args).await,
    }
}

/// `--activity`: a trade-rate multiplier of the generated market in (0, 100].
fn activity(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if value > 0.0 && value <= 100.0 { Ok(value) } else { Err(format!("must be in (0, 100], got {value}")) }
}

/// `--edge-cases`: edge-case episodes per symbol and day of the generated market, in [0, 1000].
fn edge_cases(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1000.0).contains(&value) { Ok(value) } else { Err(format!("must be in [0, 1000], got {value}")) }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn activity_is_a_positive_multiplier_up_to_100() {
        assert_eq!(activity("0.2"), Ok(0.2));
        assert!(activity("0").is_err() && activity("101").is_err() && activity("lots").is_err());
    }
}
