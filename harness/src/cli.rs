//! The `harness` command line.
//!
//! Exit codes (a contract for scripts, also in the README): 0 pass, 1 warn, 2 fail (the pipeline
//! produced wrong or missing data, or failed), 3 error (the harness itself could not run: no Postgres,
//! bad arguments).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use market::TradingDay;
use market::checks::Status;
use pipeline::{Clock, SystemClock};

use crate::run::{RunOptions, run, write_report};

pub const EXIT_PASS: u8 = 0;
pub const EXIT_WARN: u8 = 1;
pub const EXIT_FAIL: u8 = 2;
pub const EXIT_ERROR: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "harness",
    version,
    about = "Test harness for the daily market-data pipeline: fakes, a real Postgres, ground-truth scoring",
    after_help = "Examples:\n  harness run                               # yesterday (UTC), seed 42, report in reports/\n  harness run --date 2024-06-01 --seed 7 --report-dir /tmp/r\n\nExit codes: 0 pass, 1 warn, 2 fail, 3 harness error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline for one date against generated data and score it against ground truth.
    Run {
        /// YYYY-MM-DD (default: yesterday, UTC).
        #[arg(long)]
        date: Option<String>,
        /// Seed of the generated market.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where report.json goes.
        #[arg(long, default_value = "reports")]
        report_dir: PathBuf,
        /// Trade-rate multiplier of the generated market (1.0 is a realistic day).
        #[arg(long, default_value_t = 1.0)]
        activity: f64,
    },
}

pub async fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run { date, seed, report_dir, activity } => {
            let day = match date.as_deref().map(TradingDay::parse).transpose() {
                Ok(day) => day.unwrap_or_else(|| SystemClock.yesterday()),
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            if !(activity > 0.0 && activity <= 100.0) {
                eprintln!("error: --activity must be in (0, 100], got {activity}");
                return ExitCode::from(EXIT_ERROR);
            }
            let options = RunOptions { day, seed, activity, report_dir: None };
            let report = match run(&options).await {
                Ok(report) => report,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            print!("{}", report.summary());
            match write_report(&report, &report_dir) {
                Ok(path) => println!("report: {}", path.display()),
                Err(err) => {
                    eprintln!("error: {err:#}");
                    return ExitCode::from(EXIT_ERROR);
                }
            }
            ExitCode::from(match report.status {
                Status::Pass => EXIT_PASS,
                Status::Warn => EXIT_WARN,
                Status::Fail => EXIT_FAIL,
                Status::Error => EXIT_ERROR,
            })
        }
    }
}
