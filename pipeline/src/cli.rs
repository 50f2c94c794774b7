//! The `pipeline` command line: what the user typed (clap), resolved once into a plan, then run.
//!
//! Exit codes (a contract for scripts, also in the README):
//! 0 the run succeeded and validation passed; 1 the run succeeded but validation warned or failed;
//! 2 bad input or configuration; 3 the run failed (a stage errored; nothing partial was uploaded).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use market::TradingDay;
use market::checks::Status;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Selection};
use crate::run::{Pipeline, RunOutcome};
use crate::store::Store;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_RUN_FAILED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    version,
    about = "Daily crypto market-data pipeline: Tardis trades → 1-minute candles → BigQuery, validated and recorded",
    after_help = "Examples:\n  pipeline run                      # yesterday (UTC), all configured symbols\n  pipeline run --date 2024-06-01\n  pipeline run --date 2024-06-01 --symbols 'bitmex:XBTUSD;deribit:BTC-PERPETUAL'\n  pipeline runs --date 2024-06-01 --json\n\nConfiguration comes from the environment (TARDIS_*, BIGQUERY_*, DATABASE_URL, PIPELINE_*); see the README.\nExit codes: 0 pass, 1 validation findings, 2 bad input or configuration, 3 run failed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process one UTC date through every stage.
    Run {
        /// The date to process, YYYY-MM-DD (default: yesterday, UTC). Today and later are rejected.
        #[arg(long)]
        date: Option<String>,
        /// Override PIPELINE_SYMBOLS, e.g. 'binance-futures:BTCUSDT,ETHUSDT;bitmex:XBTUSD'.
        #[arg(long)]
        symbols: Option<String>,
        /// Override PIPELINE_DATA_DIR.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print the run outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the recorded runs of a date.
    Runs {
        #[arg(long)]
        date: String,
        #[arg(long)]
        json: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
}

/// A user-facing failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

fn bad_input(error: impl Into<anyhow::Error>) -> Failure {
    Failure { code: EXIT_BAD_INPUT, error: error.into() }
}

/// Parses `--date`, defaulting to yesterday, and rejects days that are not complete yet.
pub fn resolve_day(date: Option<&str>, clock: &dyn Clock) -> Result<TradingDay, market::DayError> {
    let today = clock.today();
    match date {
        Some(text) => TradingDay::parse(text)?.ensure_complete(today),
        None => Ok(clock.yesterday()),
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    run_with_clock(cli, &SystemClock).await
}

pub async fn run_with_clock(cli: Cli, clock: &dyn Clock) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Run { date, symbols, data_dir, json } => {
            let day = resolve_day(date.as_deref(), clock).map_err(bad_input)?;
            let mut config = Config::from_env().map_err(bad_input)?;
            if let Some(text) = symbols {
                config.selection = Selection::parse(&text).map_err(|e| bad_input(anyhow::anyhow!("--symbols: {e}")))?;
            }
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            let pipeline = Pipeline::connect(config).await.map_err(bad_input)?;
            let outcome = pipeline
                .run_day(day, "manual")
                .await
                .map_err(|e| Failure { code: EXIT_RUN_FAILED, error: e.into() })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&outcome).unwrap_or_default());
            } else {
                print!("{}", summary(&outcome));
            }
            Ok(ExitCode::from(exit_code(&outcome)))
        }
        Command::Runs { date, json } => {
            let day = TradingDay::parse(&date).map_err(bad_input)?;
            let config = Config::from_env().map_err(bad_input)?;
            let store = Store::connect(config.database_url.expose()).await.map_err(bad_input)?;
            let runs = store.runs_of_day(day).await.map_err(|e| Failure { code: EXIT_RUN_FAILED, error: e.into() })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs).unwrap_or_default());
            } else if runs.is_empty() {
                println!("No runs recorded for {day}.");
            } else {
                for r in runs {
                    let scores = r.scores.map_or_else(
                        || "-".to_owned(),
                        |s| {
                            format!(
                                "completeness {:.4} quality {:.4} consistency {:.4}",
                                s.completeness, s.quality, s.consistency
                            )
                        },
                    );
                    println!(
                        "run {} ({}) {} started {} {} trades {} candles {} {}",
                        r.id,
                        r.trigger,
                        r.status.as_str(),
                        r.started_at.format("%Y-%m-%d %H:%M:%S"),
                        r.validation.as_deref().unwrap_or("-"),
                        r.trades.unwrap_or(0),
                        r.candles.unwrap_or(0),
                        scores
                    );
                    if let Some(error) = r.error {
                        println!("  error: {error}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let config = Config::from_env().map_err(bad_input)?;
            Store::connect(config.database_url.expose()).await.map_err(bad_input)?;
            println!("Database migrated.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The exit code of a finished run (see the module documentation).
pub fn exit_code(outcome: &RunOutcome) -> u8 {
    match (&outcome.error, outcome.validation.as_ref().map(|v| v.status)) {
        (Some(_), _) => EXIT_RUN_FAILED,
        (None, Some(Status::Pass)) => EXIT_OK,
        (None, _) => EXIT_FINDINGS,
    }
}

/// A human-readable summary of a run.
pub fn summary(outcome: &RunOutcome) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{} run {} {}", outcome.day, outcome.run_id, outcome.status.as_str());
    for s in &outcome.stages {
        let mark = if s.succeeded { "✓" } else { "✗" };
        let rows = s.rows.map_or_else(String::new, |n| format!("{n} rows"));
        let _ = writeln!(out, "  {mark} {:<12} {:>8} ms  {rows}", s.stage, s.duration_ms());
        if let Some(error) = &s.error {
            let _ = writeln!(out, "      {error}");
        }
    }
    let c = &outcome.counts;
    let _ = writeln!(
        out,
        "  files {}  trades {}  candles {}  instruments {}  rows outside the date {} before / {} after",
        c.files, c.trades, c.candles, c.instruments, outcome.rows_before_day, outcome.rows_after_day
    );
    if let Some(v) = &outcome.validation {
        let _ = writeln!(
            out,
            "  validation {}: completeness {:.4}  quality {:.4}  consistency {:.4}",
            v.status.as_str(),
            v.scores.completeness,
            v.scores.quality,
            v.scores.consistency
        );
        for check in v.failing() {
            let _ =
                writeln!(out, "    {} failed {}/{}: {}", check.id, check.failed, check.evaluated, check.description);
            for sample in check.samples.iter().take(3) {
                let _ = writeln!(out, "      {}", sample.detail);
            }
        }
    }
    out
}
