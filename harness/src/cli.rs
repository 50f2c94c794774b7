//! The `harness` command line.
//!
//! Exit codes (a contract for scripts, also in the README): 0 pass, 1 warn, 2 fail (the pipeline
//! produced wrong or missing data, or failed), 3 error (the harness itself could not run: no Postgres,
//! bad arguments).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use market::checks::Status;
use market::{DateRange, TradingDay};
use pipeline::{Clock, SystemClock};

use crate::mocks::{ServeOptions, serve};
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
    after_help = "Examples:\n  harness run                               # yesterday (UTC), seed 42, report in reports/\n  harness run --date 2024-06-01 --seed 7 --report-dir /tmp/r\n  harness run --date 2024-06-01 --pipeline-cmd \"python3 my_pipeline.py --date {date}\"\n  harness exec -- env                       # any command with the fakes, a database and their environment\n  harness mocks serve --port-tardis 9001 --port-bigquery 9050 --from 2024-06-01 --to 2024-06-30\n\nExit codes: 0 pass, 1 warn, 2 fail, 3 harness error."
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
        /// Run a deliberately broken pipeline, to see the harness catch it: dropped-hour, missing-symbol,
        /// duplicated-upload, shifted-hour, wrong-vwap, swapped-high-low, volume-in-quote-units,
        /// swallowed-429, last-minute-lost, stale-instruments.
        #[arg(long, value_parser = parse_defect)]
        defect: Option<pipeline::defects::Defect>,
        #[command(flatten)]
        external: crate::external::PipelineCommandArgs,
    },
    /// Start the fakes and a fresh Postgres database, run COMMAND with their environment (printed first), and
    /// exit with its status (128 + n when signal n ended it); SIGINT and SIGTERM are forwarded to it.
    #[command(
        after_help = "Examples:\n  harness exec -- env\n  harness exec --from 2024-06-01 --to 2024-06-03 -- python3 my_pipeline.py --date 2024-06-02\n  harness exec --replay-dir capture -- cargo run -p pipeline -- run --date 2024-06-03"
    )]
    Exec(crate::external::ExecArgs),
    /// The backfill load benchmark: a range of dates with 1, 2 and 4 workers; dates per minute and speed-up.
    Load {
        /// Number of dates, ending yesterday (UTC) unless --last-day.
        #[arg(long, default_value_t = 30)]
        dates: u32,
        /// The last date of the range (YYYY-MM-DD); the fakes have exported up to it.
        #[arg(long)]
        last_day: Option<String>,
        /// Worker counts to compare (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        workers: Vec<usize>,
        /// Trade rate of the generated market, as a fraction of a normal day (1.0: ~250k trades on a weekday over
        /// the default 12 pairs).
        #[arg(long, default_value_t = 0.2)]
        activity: f64,
        /// Seed of the generated market.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// The fakes as standalone servers.
    Mocks {
        #[command(subcommand)]
        command: MocksCommand,
    },
    /// Build the nightly message (pass/fail, scores and thresholds, failing checks, test counts, duration, report
    /// location) and post it to the Slack webhook in SLACK_WEBHOOK_URL, or print it when that is not set. Exits
    /// 0 even when the post fails (a redacted warning is printed): the nightly's result is the tests'.
    #[command(
        after_help = "Examples:\n  harness notify --report-dir reports/nightly/2024-06-03 --junit target/nextest/nightly/junit.xml --tests-exit-code 0\n  harness notify --report-dir reports --json    # print the Slack payload"
    )]
    Notify(crate::nightly::NotifyArgs),
}

#[derive(Debug, Subcommand)]
pub enum MocksCommand {
    /// Start the mock Tardis and the fake BigQuery, print their URLs and the variables to export, serve until
    /// interrupted.
    Serve {
        /// Port of the mock Tardis (0: any free port).
        #[arg(long, default_value_t = 0)]
        port_tardis: u16,
        /// Port of the fake BigQuery (0: any free port).
        #[arg(long, default_value_t = 0)]
        port_bigquery: u16,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// First day served (default: 30 days before --to).
        #[arg(long)]
        from: Option<String>,
        /// Last day served, i.e. Tardis' exportedUntil (default: yesterday, UTC).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 1.0)]
        activity: f64,
        /// Serve captured Tardis files instead of generated ones, from DIR laid out as
        /// {exchange}/{dataType}/{YYYY}/{MM}/{DD}/{SYMBOL}.csv.gz (or .csv), with optional
        /// {exchange}/instruments.json; --seed, --from, --to and --activity are then ignored.
        #[arg(long, value_name = "DIR")]
        replay_dir: Option<PathBuf>,
    },
}

fn parse_defect(text: &str) -> Result<pipeline::defects::Defect, String> {
    pipeline::defects::Defect::parse(text).ok_or_else(|| {
        format!("unknown defect {text:?}; one of {}", pipeline::defects::Defect::ALL.map(|d| d.name()).join(", "))
    })
}

fn serve_options(
    port_tardis: u16,
    port_bigquery: u16,
    seed: u64,
    from: Option<&str>,
    to: Option<&str>,
    activity: f64,
) -> Result<ServeOptions, market::DayError> {
    let to = to.map(TradingDay::parse).transpose()?.unwrap_or_else(|| SystemClock.yesterday());
    let from = match from {
        Some(text) => TradingDay::parse(text)?,
        None => (0..30).fold(to, |d, _| d.pred()),
    };
    Ok(ServeOptions { port_tardis, port_bigquery, seed, days: DateRange::new(from, to)?, activity, replay_dir: None })
}

pub async fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Notify(args) => crate::nightly::main(&args).await,
        Command::Load { dates, last_day, workers, activity, seed, json } => {
            let last_day = match last_day.as_deref().map(TradingDay::parse).transpose() {
                Ok(day) => day.unwrap_or_else(|| SystemClock.yesterday()),
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            if dates == 0 || workers.is_empty() || workers.contains(&0) {
                eprintln!("error: --dates and every --workers count must be at least 1");
                return ExitCode::from(EXIT_ERROR);
            }
            let options = crate::load::LoadOptions { last_day, dates, workers, activity, seed };
            match crate::load::run(&options).await {
                Ok(lines) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&lines).unwrap_or_default());
                    } else {
                        print!("{}", crate::load::table(&lines));
                    }
                    ExitCode::from(if lines.iter().any(|l| l.failed > 0) { EXIT_FAIL } else { EXIT_PASS })
                }
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::from(EXIT_ERROR)
                }
            }
        }
        Command::Mocks {
            command: MocksCommand::Serve { port_tardis, port_bigquery, seed, from, to, activity, replay_dir },
        } => {
            let options =
                match serve_options(port_tardis, port_bigquery, seed, from.as_deref(), to.as_deref(), activity) {
                    Ok(options) => ServeOptions { replay_dir, ..options },
                    Err(err) => {
                        eprintln!("error: {err}");
                        return ExitCode::from(EXIT_ERROR);
                    }
                };
            match serve(&options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::from(EXIT_ERROR)
                }
            }
        }
        Command::Exec(args) => crate::external::exec_main(args).await,
        Command::Run { date, seed, report_dir, activity, defect, external } => {
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
            let options = RunOptions { day, seed, activity, report_dir: None, defect, symbols: external.symbols };
            let result = match external.pipeline_cmd {
                Some(template) => {
                    let timeout = std::time::Duration::from_secs(external.pipeline_timeout);
                    crate::external::run(&options, &crate::external::PipelineCommand { template, timeout }).await
                }
                None => run(&options).await,
            };
            let report = match result {
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
