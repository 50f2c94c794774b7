//! The `pipeline` command line: what the user typed (clap), resolved once into a plan, then run.
//!
//! Exit codes (a contract for scripts, the same for `run` and `validate`, also in the README):
//! 0 pass; 1 warn (the data landed, some checks warn); 2 fail (a check failed, or the run failed: a stage
//! errored and nothing partial was uploaded); 3 error (bad input or configuration, nothing was done).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use market::checks::Status;
use market::{DateRange, TradingDay};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Selection};
use crate::run::{Pipeline, RunOutcome};
use crate::store::Store;

pub const EXIT_PASS: u8 = 0;
pub const EXIT_WARN: u8 = 1;
pub const EXIT_FAIL: u8 = 2;
pub const EXIT_ERROR: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    version,
    about = "Daily crypto market-data pipeline: Tardis trades → 1-minute candles → BigQuery, validated and recorded",
    after_help = "Examples:\n  pipeline run                      # yesterday (UTC), all configured symbols\n  pipeline run --date 2024-06-01\n  pipeline run --date 2024-06-01 --symbols 'bitmex:XBTUSD;deribit:BTC-PERPETUAL'\n  pipeline validate --date 2024-06-01 --report-dir reports/\n  pipeline validate --from 2024-06-01 --to 2024-06-30 --json\n  pipeline runs --date 2024-06-01 --json\n  pipeline backfill 2024-06-01 2024-06-30                       # dry run: the plan\n  pipeline backfill 2024-06-01 2024-06-30 --parallel 4 --execute\n  pipeline backfill status\n  pipeline worker --follow --parallel 2\n  pipeline schedule                                              # the 09:00 UTC service\n  pipeline preflight --from 2024-06-01 --to 2024-06-30\n\nConfiguration comes from the environment (TARDIS_*, BIGQUERY_*, DATABASE_URL, PIPELINE_*); see the README.\nExit codes: 0 pass, 1 warn, 2 fail (a check failed or the run failed), 3 error (bad input or configuration)."
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
        /// Write report.json, report.md and report.html of the run's validation here.
        #[arg(long)]
        report_dir: Option<PathBuf>,
        /// Print the run outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate dates again from what is in BigQuery (post-backfill verification); one date or a range.
    Validate {
        /// One date, YYYY-MM-DD.
        #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present = "from")]
        date: Option<String>,
        /// First date of a range.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// Last date of a range.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// Write report.json, report.md and report.html per date (under a folder per date for a range).
        #[arg(long)]
        report_dir: Option<PathBuf>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Backfill a range of dates (dry run unless --execute), or show the queue (`backfill status`).
    #[command(args_conflicts_with_subcommands = true)]
    Backfill {
        #[command(subcommand)]
        command: Option<BackfillCommand>,
        #[command(flatten)]
        args: BackfillArgs,
    },
    /// Work the date queue: claim dates, run them, until the queue is empty (or forever with --follow).
    Worker {
        /// Keep waiting for new dates when the queue is empty.
        #[arg(long)]
        follow: bool,
        /// Workers in this process.
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        /// Identifies this worker in the queue (default: hostname and process id).
        #[arg(long)]
        worker_id: Option<String>,
        /// Claim the newest date first (default: oldest first).
        #[arg(long)]
        newest_first: bool,
        /// Seconds a claimed date stays reserved if this worker stops renewing it (e.g. it was killed).
        #[arg(long, default_value_t = 600)]
        lease: u64,
        /// Seconds before a failed date is tried again (doubled per retry).
        #[arg(long, default_value_t = 30)]
        retry_delay: u64,
    },
    /// Run the daily scheduler (09:00 UTC, catch-up, one active per database).
    Schedule(crate::schedule::ScheduleArgs),
    /// Check that a date range can run now (Tardis export, BigQuery tables, database).
    Preflight(crate::preflight::PreflightArgs),
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

#[derive(Debug, Subcommand)]
pub enum BackfillCommand {
    /// Counts per status, success rate, rows, the last 20 jobs and every failure.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// First date, YYYY-MM-DD.
    pub start: Option<String>,
    /// Last date, YYYY-MM-DD (inclusive).
    pub end: Option<String>,
    /// Dates processed at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Only show the plan (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Run the plan.
    #[arg(long)]
    pub execute: bool,
    /// Put the plan's dates in the queue and return: `pipeline worker` processes (anywhere) run them.
    #[arg(long, conflicts_with_all = ["execute", "dry_run"])]
    pub enqueue_only: bool,
    /// Dates per chunk: a chunk is finished before the next starts.
    #[arg(long, default_value_t = 7)]
    pub chunk_days: u32,
    /// Largest range accepted without raising this.
    #[arg(long, default_value_t = 31)]
    pub max_days: u32,
    /// Run completed (and failed) dates again.
    #[arg(long)]
    pub force: bool,
    /// Only these configured exchanges (comma-separated). The dates' partitions will hold only them.
    #[arg(long, value_delimiter = ',')]
    pub exchanges: Vec<String>,
    /// Only these configured symbols (comma-separated). The dates' partitions will hold only them.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Where the per-date log files go (backfill_YYYY-MM-DD.log).
    #[arg(long, default_value = "logs")]
    pub log_dir: PathBuf,
    /// Who asked (recorded in the audit log; default: $USER).
    #[arg(long)]
    pub requested_by: Option<String>,
    /// Process the newest date first (default: oldest first).
    #[arg(long)]
    pub newest_first: bool,
    /// Seconds before a failed date is tried again (doubled per retry).
    #[arg(long, default_value_t = 30)]
    pub retry_delay: u64,
    /// Seconds a claimed date stays reserved for a worker that stops renewing it (a killed process).
    #[arg(long, default_value_t = 600)]
    pub lease: u64,
}

/// The stop switch of `pipeline worker` and `pipeline backfill`, flipped by SIGINT or SIGTERM (see
/// [`crate::worker::stop_on_signals`]; a second signal exits with 130).
fn stop_on_signals() -> Result<tokio::sync::watch::Receiver<bool>, Failure> {
    let (tx, rx) = crate::worker::stop_switch();
    crate::worker::stop_on_signals(tx, 130)
        .map_err(|e| Failure { code: EXIT_ERROR, error: anyhow::anyhow!("failed to listen for SIGTERM: {e}") })?;
    Ok(rx)
}

/// A user-facing failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

fn bad_input(error: impl Into<anyhow::Error>) -> Failure {
    Failure { code: EXIT_ERROR, error: error.into() }
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
        Command::Run { date, symbols, data_dir, report_dir, json } => {
            let day = resolve_day(date.as_deref(), clock).map_err(bad_input)?;
            let mut config = Config::from_env().map_err(bad_input)?;
            if let Some(text) = symbols {
                config.selection = Selection::parse(&text).map_err(|e| bad_input(anyhow::anyhow!("--symbols: {e}")))?;
            }
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            let pipeline = Pipeline::connect(config).await.map_err(bad_input)?;
            let outcome =
                pipeline.run_day(day, "manual").await.map_err(|e| Failure { code: EXIT_ERROR, error: e.into() })?;
            if let (Some(dir), Some(validation)) = (&report_dir, &outcome.validation) {
                let report = crate::report::Report::for_validation(&pipeline, day, validation).await;
                crate::report::write_all(&report, dir).map_err(|e| Failure { code: EXIT_ERROR, error: e })?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&outcome).unwrap_or_default());
            } else {
                print!("{}", summary(&outcome));
            }
            Ok(ExitCode::from(exit_code(&outcome)))
        }
        Command::Validate { date, from, to, report_dir, json } => {
            let range = match (date, from, to) {
                (Some(date), _, _) => DateRange::single(TradingDay::parse(&date).map_err(bad_input)?),
                (None, Some(from), Some(to)) => DateRange::parse(&from, &to).map_err(bad_input)?,
                _ => return Err(bad_input(anyhow::anyhow!("give --date, or --from and --to"))),
            };
            range.end().ensure_complete(clock.today()).map_err(bad_input)?;
            let config = Config::from_env().map_err(bad_input)?;
            let pipeline = Pipeline::connect(config).await.map_err(bad_input)?;
            validate_range(&pipeline, range, report_dir.as_deref(), json).await
        }
        Command::Backfill { command: Some(BackfillCommand::Status { json }), .. } => {
            let config = Config::from_env().map_err(bad_input)?;
            let store = Store::connect(config.database_url.expose()).await.map_err(bad_input)?;
            let stats = store.queue_stats().await.map_err(|e| Failure { code: EXIT_ERROR, error: e.into() })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats).unwrap_or_default());
            } else {
                print!("{}", queue_text(&stats));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill { command: None, args } => backfill(args, clock).await,
        Command::Worker { follow, parallel, worker_id, newest_first, lease, retry_delay } => {
            let config = Config::from_env().map_err(bad_input)?;
            let pipeline = Pipeline::connect(config).await.map_err(bad_input)?;
            let stop = stop_on_signals()?;
            let base = worker_id.unwrap_or_else(default_worker_id);
            let workers = (0..parallel.max(1)).map(|i| {
                let options = crate::worker::WorkerOptions {
                    worker_id: if parallel > 1 { format!("{base}-{}", i + 1) } else { base.clone() },
                    claim: crate::store::ClaimOptions {
                        order: if newest_first {
                            crate::store::Order::NewestFirst
                        } else {
                            crate::store::Order::OldestFirst
                        },
                        range: None,
                        lease: std::time::Duration::from_secs(lease.max(3)),
                        retry_backoff: std::time::Duration::from_secs(retry_delay),
                    },
                    follow,
                    idle_poll: std::time::Duration::from_secs(1),
                    trigger: "worker".to_owned(),
                };
                let (pipeline, stop) = (&pipeline, stop.clone());
                async move {
                    crate::worker::work(pipeline, &options, stop, |event| {
                        if let crate::worker::WorkerEvent::Finished(result) = event {
                            println!("{}", crate::backfill::date_line(result));
                        }
                    })
                    .await
                }
            });
            let mut failed = 0;
            for result in futures::future::join_all(workers).await {
                let results = result.map_err(|e| Failure { code: EXIT_ERROR, error: e.into() })?;
                failed += results.iter().filter(|r| r.status == crate::store::JobStatus::Failed).count();
            }
            Ok(ExitCode::from(if failed > 0 { EXIT_FAIL } else { EXIT_PASS }))
        }
        Command::Schedule(args) => crate::schedule::run_schedule(args).await,
        Command::Preflight(args) => crate::preflight::run_preflight(args, clock).await,
        Command::Runs { date, json } => {
            let day = TradingDay::parse(&date).map_err(bad_input)?;
            let config = Config::from_env().map_err(bad_input)?;
            let store = Store::connect(config.database_url.expose()).await.map_err(bad_input)?;
            let runs = store.runs_of_day(day).await.map_err(|e| Failure { code: EXIT_ERROR, error: e.into() })?;
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

fn default_worker_id() -> String {
    format!("{}-{}", crate::worker::hostname(), std::process::id())
}

/// `pipeline backfill START END ...`.
async fn backfill(args: BackfillArgs, clock: &dyn Clock) -> Result<ExitCode, Failure> {
    use crate::backfill::{BackfillRequest, describe, execute, plan, validate};
    let (Some(start), Some(end)) = (args.start, args.end) else {
        return Err(bad_input(anyhow::anyhow!("give START and END dates (YYYY-MM-DD), or `backfill status`")));
    };
    let request = BackfillRequest {
        start,
        end,
        parallel: args.parallel,
        execute: args.execute && !args.dry_run,
        chunk_days: args.chunk_days,
        max_days: args.max_days,
        force: args.force,
        exchanges: args.exchanges,
        symbols: args.symbols,
        log_dir: args.log_dir,
        requested_by: args.requested_by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".to_owned()),
        order: if args.newest_first { crate::store::Order::NewestFirst } else { crate::store::Order::OldestFirst },
        retry_backoff: std::time::Duration::from_secs(args.retry_delay),
        lease: std::time::Duration::from_secs(args.lease.max(3)),
        progress: crate::backfill::ProgressOutput::Stdout,
    };
    // Everything that can be refused is refused before any connection is made or file written.
    let mut config = Config::from_env().map_err(bad_input)?;
    let (range, selection) = validate(&request, clock.today(), &config.selection).map_err(bad_input)?;
    // The pipeline runs only the selected pairs.
    let configured = std::mem::replace(&mut config.selection, selection.clone());
    let pipeline = Pipeline::connect(config).await.map_err(bad_input)?;
    let fail = |e: crate::backfill::BackfillError| Failure { code: EXIT_ERROR, error: e.into() };
    let plan = plan(&pipeline, &request, range, &selection, &configured).await.map_err(fail)?;
    if args.enqueue_only {
        let enqueued = crate::backfill::enqueue(&pipeline, &request, &plan).await.map_err(fail)?;
        println!(
            "{enqueued} date(s) of {} → {} in the queue; start workers with `pipeline worker` to run them.",
            range.start(),
            range.end()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !request.execute {
        print!("{}", describe(&plan));
        let options =
            serde_json::json!({"parallel": request.parallel, "force": request.force, "chunk_days": request.chunk_days});
        pipeline
            .store()
            .start_backfill(&request.requested_by, range, &options, true)
            .await
            .map_err(|e| fail(e.into()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let summary = execute(&pipeline, &request, &plan, stop_on_signals()?).await.map_err(fail)?;
    print!("{}", summary.text());
    Ok(ExitCode::from(if summary.interrupted {
        130
    } else if summary.totals.failed > 0 || summary.unfinished > 0 {
        EXIT_FAIL
    } else {
        EXIT_PASS
    }))
}

/// The text of `pipeline backfill status`.
pub fn queue_text(stats: &crate::store::QueueStats) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pending {}  processing {}  retry {}  completed {}  failed {}  success rate {:.1}%  candles {}",
        stats.pending,
        stats.processing,
        stats.retry,
        stats.completed,
        stats.failed,
        stats.success_rate * 100.0,
        crate::backfill::thousands(u64::try_from(stats.rows).unwrap_or(0))
    );
    let _ = writeln!(out, "Recent:");
    for job in &stats.recent {
        let _ = writeln!(
            out,
            "  {} {:<10} retries {} {}{}",
            job.day,
            job.status.as_str(),
            job.retry_count,
            job.worker_id.as_deref().unwrap_or("-"),
            job.completed_at.map(|t| format!(" completed {}", t.format("%Y-%m-%d %H:%M:%S"))).unwrap_or_default()
        );
    }
    if !stats.failures.is_empty() {
        let _ = writeln!(out, "Failures:");
        for job in &stats.failures {
            let _ = writeln!(
                out,
                "  {} after {} attempts: {}",
                job.day,
                job.retry_count,
                job.error_message.as_deref().unwrap_or("-")
            );
        }
    }
    out
}

/// The exit code of a validation status.
pub fn status_code(status: Status) -> u8 {
    match status {
        Status::Pass => EXIT_PASS,
        Status::Warn => EXIT_WARN,
        Status::Fail | Status::Error => EXIT_FAIL,
    }
}

/// The exit code of a finished run (see the module documentation).
pub fn exit_code(outcome: &RunOutcome) -> u8 {
    match (&outcome.error, outcome.validation.as_ref()) {
        (None, Some(v)) => status_code(v.status),
        _ => EXIT_FAIL,
    }
}

/// `pipeline validate`: every date of `range`, a line per date, range totals, reports.
async fn validate_range(
    pipeline: &Pipeline,
    range: DateRange,
    report_dir: Option<&Path>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let mut results = Vec::new();
    for day in range.days() {
        let validation = pipeline.revalidate(day).await.map_err(|e| Failure { code: EXIT_ERROR, error: e.into() })?;
        if let Some(dir) = report_dir {
            let dir = if range.len() > 1 { dir.join(day.to_string()) } else { dir.to_path_buf() };
            let report = crate::report::Report::for_validation(pipeline, day, &validation).await;
            crate::report::write_all(&report, &dir).map_err(|e| Failure { code: EXIT_ERROR, error: e })?;
        }
        results.push((day, validation));
    }
    let worst = results.iter().map(|(_, v)| v.status).max().unwrap_or(Status::Pass);
    if json {
        let list: Vec<serde_json::Value> = results
            .iter()
            .map(
                |(day, v)| serde_json::json!({"date": day, "status": v.status, "scores": v.scores, "checks": v.checks}),
            )
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"dates": list, "status": worst})).unwrap_or_default()
        );
    } else {
        print!("{}", range_table(&results));
    }
    Ok(ExitCode::from(status_code(worst)))
}

/// The per-date table of `pipeline validate` and the range totals.
pub fn range_table(results: &[(TradingDay, market::checks::Validation)]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10}  {:<6} {:>12} {:>8} {:>11} {:>9}  failing checks",
        "date", "status", "completeness", "quality", "consistency", "candles"
    );
    let mut candles_total = 0u64;
    for (day, v) in results {
        let candles = v.metrics.iter().filter(|m| m.metric == "candle_count").map(|m| m.value as u64).sum::<u64>();
        candles_total += candles;
        let failing: Vec<String> =
            v.failing().filter(|c| c.status != Status::Pass).map(|c| format!("{} ({})", c.id, c.failed)).collect();
        let _ = writeln!(
            out,
            "{day}  {:<6} {:>12.4} {:>8.4} {:>11.4} {:>9}  {}",
            v.status.as_str(),
            v.scores.completeness,
            v.scores.quality,
            v.scores.consistency,
            candles,
            if failing.is_empty() { "-".to_owned() } else { failing.join(", ") }
        );
    }
    let count = |s: Status| results.iter().filter(|(_, v)| v.status == s).count();
    let _ = writeln!(
        out,
        "{} dates: {} pass, {} warn, {} fail; {} candles",
        results.len(),
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail) + count(Status::Error),
        candles_total
    );
    out
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
