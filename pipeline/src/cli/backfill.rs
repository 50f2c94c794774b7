//! `pipeline backfill START END` (dry run by default, `--execute`, `--enqueue-only`) and `pipeline backfill
//! status`: arguments, the plan and summary as text, a progress line per date (with a bar on a terminal).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use market::{DateRange, Exchange, Symbol, TradingDay};

use super::Exit;
use super::metrics::MetricsArgs;
use super::signals::stop_on_signals;
use crate::backfill::{self, Action, BackfillEvent, BackfillRequest, Plan, Summary};
use crate::clock::Clock;
use crate::config::Config;
use crate::run::Pipeline;
use crate::store::{BackfillRecord, CancelOutcome, CancelTarget, Held, JobStatus, Order, QueueStats, Store};
use crate::worker::DateResult;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BackfillCommand {
    /// Counts per status, success rate, rows, the last 20 jobs and every failure.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The recent backfills: id, range, who asked, status, their dates' states, who cancelled.
    List {
        /// How many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a backfill (by the id `list` shows), or every unfinished one: its queued dates are not claimed
    /// any more, from any machine; dates being run finish, or stop at once with --now.
    #[command(
        after_help = "Examples:\n  pipeline backfill cancel 42\n  pipeline backfill cancel --all --now\n\nThe daily run's dates are never cancelled by --all. A cancelled backfill's own process (backfill --execute)\nends when its dates in flight end, with exit code 130."
    )]
    Cancel(CancelArgs),
    /// Run an earlier backfill's dates again: its failed ones (retries reset) and, without --only-failed, its
    /// cancelled and never-run ones. Completed dates are left alone. A dry run unless --execute or --enqueue-only.
    Retry(RetryArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CancelArgs {
    /// The backfill's id (`pipeline backfill list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<i64>,
    /// Every backfill not finished yet, and every queued backfill date.
    #[arg(long)]
    pub all: bool,
    /// Abandon the dates being run too (their workers stop within about a second; partitions are replaced
    /// whole, so nothing half-written stays).
    #[arg(long)]
    pub now: bool,
    /// Who cancels (recorded in the audit log; default: $USER@hostname).
    #[arg(long)]
    pub by: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RetryArgs {
    /// The backfill's id (`pipeline backfill list`).
    pub id: i64,
    /// Only the dates that failed (spent their retries); not the cancelled or unfinished ones.
    #[arg(long)]
    pub only_failed: bool,
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// How a backfill's plan is carried out: shown, run here, or queued for workers.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
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
    /// Where the per-date log files go (backfill_YYYY-MM-DD.log).
    #[arg(long, default_value = "logs")]
    pub log_dir: PathBuf,
    /// Who asked (recorded in the audit log; default: $USER).
    #[arg(long)]
    pub requested_by: Option<String>,
    /// With --execute: metrics of the dates it runs.
    #[command(flatten)]
    pub metrics: MetricsArgs,
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

impl ExecArgs {
    fn requested_by(&self) -> String {
        self.requested_by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".to_owned())
    }

    /// Sets the request's execution options from these arguments.
    fn apply(&self, request: &mut BackfillRequest) {
        request.parallel = self.parallel;
        request.chunk_days = self.chunk_days;
        request.log_dir = self.log_dir.clone();
        request.order = if self.newest_first { Order::NewestFirst } else { Order::OldestFirst };
        request.retry_backoff = Duration::from_secs(self.retry_delay);
        request.lease = Duration::from_secs(self.lease.max(3));
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct BackfillArgs {
    /// First date, YYYY-MM-DD.
    #[arg(value_parser = TradingDay::parse)]
    pub start: Option<TradingDay>,
    /// Last date, YYYY-MM-DD (inclusive).
    #[arg(value_parser = TradingDay::parse)]
    pub end: Option<TradingDay>,
    /// Largest range accepted without raising this.
    #[arg(long, default_value_t = 31)]
    pub max_days: u32,
    /// Run completed (and failed) dates again.
    #[arg(long)]
    pub force: bool,
    /// Only these configured exchanges (comma-separated). The dates' partitions will hold only them.
    #[arg(long, value_delimiter = ',', value_parser = Exchange::parse)]
    pub exchanges: Vec<Exchange>,
    /// Only these configured symbols (comma-separated). The dates' partitions will hold only them.
    #[arg(long, value_delimiter = ',', value_parser = Symbol::parse)]
    pub symbols: Vec<Symbol>,
    #[command(flatten)]
    pub exec: ExecArgs,
}

impl BackfillArgs {
    /// The request these arguments make (start after end is refused here).
    pub fn request(&self) -> anyhow::Result<BackfillRequest> {
        let (Some(start), Some(end)) = (self.start, self.end) else {
            anyhow::bail!(
                "give START and END dates (YYYY-MM-DD), or a subcommand (`backfill status`, `list`, `cancel`, `retry`)"
            );
        };
        let mut request = BackfillRequest::new(DateRange::new(start, end)?, &self.exec.requested_by());
        self.exec.apply(&mut request);
        request.max_days = self.max_days;
        request.force = self.force;
        request.exchanges = self.exchanges.clone();
        request.symbols = self.symbols.clone();
        Ok(request)
    }
}

/// `pipeline backfill START END ...`: everything that can be refused is refused before any connection is
/// made or file written.
pub async fn run(args: BackfillArgs, clock: &dyn Clock) -> anyhow::Result<Exit> {
    let request = args.request()?;
    carry_out(request, &args.exec, clock).await
}

/// Validates, plans and carries out `request` as `exec` says (dry run, enqueue, or execute).
async fn carry_out(request: BackfillRequest, exec: &ExecArgs, clock: &dyn Clock) -> anyhow::Result<Exit> {
    let mut config = Config::from_env()?;
    let selection = backfill::validate(&request, clock.today(), &config.selection)?;
    // The pipeline runs only the selected pairs.
    let configured = std::mem::replace(&mut config.selection, selection.clone());
    let pipeline = Pipeline::connect(config).await?;
    let plan = backfill::plan(&pipeline, &request, &selection, &configured).await?;
    if exec.enqueue_only {
        let enqueued = backfill::enqueue(&pipeline, &request, &plan).await?;
        println!(
            "Backfill {}: {} date(s) of {} → {} in the queue; start workers with `pipeline worker` to run them.",
            enqueued.id,
            enqueued.dates,
            request.range.start(),
            request.range.end()
        );
        return Ok(Exit::Pass);
    }
    if !exec.execute || exec.dry_run {
        print!("{}", describe(&plan));
        backfill::record_dry_run(&pipeline, &request).await?;
        return Ok(Exit::Pass);
    }
    let exporter = exec.metrics.start(pipeline.store()).await?;
    let pipeline = pipeline.observed_by(std::sync::Arc::new(exporter.metrics()));
    let (stop, signals) = stop_on_signals().context("cannot listen for SIGINT and SIGTERM")?;
    let progress = Progress::new(plan.to_run().count());
    let summary = backfill::execute(&pipeline, &request, &plan, stop, &|event| progress.show(&event)).await;
    progress.finish();
    signals.abort();
    let summary = summary?;
    exporter.finish().await?;
    print!("{}", summary_text(&summary));
    Ok(Exit::of_backfill(&summary))
}

/// `pipeline backfill status|list|cancel|retry`.
pub async fn run_command(command: BackfillCommand, clock: &dyn Clock) -> anyhow::Result<Exit> {
    if let BackfillCommand::Retry(args) = command {
        let store = Store::connect(Config::from_env()?.database_url.expose()).await?;
        let record = backfill::record(&store, args.id).await?;
        drop(store);
        let mut request = BackfillRequest::retry_of(&record, args.only_failed, &args.exec.requested_by());
        args.exec.apply(&mut request);
        return carry_out(request, &args.exec, clock).await;
    }
    let store = Store::connect(Config::from_env()?.database_url.expose()).await?;
    match command {
        BackfillCommand::Status { json } => {
            let stats = store.queue_stats().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{}", queue_text(&stats));
            }
        }
        BackfillCommand::List { limit, json } => {
            let records = store.backfills(limit.clamp(1, 1000)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&records)?);
            } else {
                print!("{}", list_text(&records));
            }
        }
        BackfillCommand::Cancel(args) => {
            let target = match args.id {
                Some(id) => CancelTarget::Backfill(id),
                None => CancelTarget::All,
            };
            let by = args.by.clone().unwrap_or_else(backfill::operator);
            let outcome = backfill::cancel(&store, target, &by, args.now).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                print!("{}", cancel_text(&outcome));
            }
        }
        BackfillCommand::Retry(_) => unreachable!("handled above"),
    }
    Ok(Exit::Pass)
}

/// What a cancel did, in words.
pub fn cancel_text(outcome: &CancelOutcome) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let ids: Vec<String> = outcome.backfills.iter().map(i64::to_string).collect();
    let _ = writeln!(
        out,
        "Cancelled by {}: backfill(s) {}; {} queued date(s) will not run.",
        outcome.by,
        if ids.is_empty() { "none unfinished".to_owned() } else { ids.join(", ") },
        outcome.queued
    );
    for f in &outcome.in_flight {
        let what = if outcome.now { "stops now" } else { "finishes (add --now to stop it)" };
        let _ = writeln!(out, "  {} being run by {}: {what}", f.day, f.worker_id);
    }
    out
}

/// The text of `pipeline backfill list`.
pub fn list_text(records: &[BackfillRecord]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if records.is_empty() {
        let _ = writeln!(out, "No backfills recorded.");
    }
    for b in records {
        let d = &b.dates;
        let _ = write!(
            out,
            "{:>5}  {} → {}  {:<11} by {}  started {}  dates: {} done, {} failed, {} queued, {} running, {} cancelled",
            b.id,
            b.start,
            b.end,
            b.status,
            b.requested_by,
            b.started_at.format("%Y-%m-%d %H:%M"),
            d.completed,
            d.failed,
            d.pending + d.retry,
            d.processing,
            d.cancelled
        );
        if let Some(by) = &b.cancelled_by {
            let _ = write!(out, "  (cancelled by {by})");
        }
        if let Some(of) = b.retry_of {
            let _ = write!(out, "  (retry of {of})");
        }
        out.push('\n');
    }
    out
}

/// A line per finished date on standard output, above a progress bar with an ETA when standard error is a
/// terminal.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} dates, {elapsed} elapsed, ETA {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress { bar }
    }

    pub fn show(&self, event: &BackfillEvent<'_>) {
        if let BackfillEvent::Opened { id } = event {
            let line = format!("Backfill {id} started; `pipeline backfill cancel {id}` stops it from any machine.");
            match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            }
            return;
        }
        if let BackfillEvent::Waiting { worker_id, held } = event {
            let line = waiting_line(worker_id, held);
            match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            }
            return;
        }
        let (BackfillEvent::Finished { done, .. }, Some(line)) = (event, progress_line(event)) else {
            return;
        };
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.set_position(*done as u64);
            }
            None => println!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The line of a finished date: `[3/30] 2024-06-03 ✓ 41.2s 1,234,567 trades`; `None` for other events.
pub fn progress_line(event: &BackfillEvent<'_>) -> Option<String> {
    match event {
        BackfillEvent::Finished { result, done, total } => Some(format!("[{done}/{total}] {}", date_line(result))),
        BackfillEvent::Opened { .. } | BackfillEvent::Started { .. } | BackfillEvent::Waiting { .. } => None,
    }
}

/// What a worker waits on, for standard error: `worker host-1-1 waits for 2024-06-03 (held by host-2-1, lease
/// until 09:12:00 UTC), ...`.
pub fn waiting_line(worker_id: &str, held: &[Held]) -> String {
    let each: Vec<String> = held
        .iter()
        .map(|h| {
            format!("{} (held by {}, lease until {} UTC)", h.day, h.worker_id, h.lease_expires_at.format("%H:%M:%S"))
        })
        .collect();
    format!("worker {worker_id} waits for {}", each.join(", "))
}

/// A date's result: `2024-06-03 ✓ 41.2s 1,234,567 trades` or `2024-06-03 ✗ 2.1s <cause>`.
pub fn date_line(result: &DateResult) -> String {
    match result.status {
        JobStatus::Completed => {
            format!("{} ✓ {:.1}s {} trades", result.day, result.seconds, thousands(result.trades))
        }
        status => {
            let cause = result.error.as_deref().unwrap_or("lease lost").lines().next().unwrap_or_default().to_owned();
            let again = if status == JobStatus::Retry { " (will retry)" } else { "" };
            format!("{} ✗ {:.1}s {cause}{again}", result.day, result.seconds)
        }
    }
}

/// The dry-run text.
pub fn describe(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let to_run = plan.to_run().count();
    let _ = writeln!(
        out,
        "Backfill plan {} → {}: {} dates in {} chunk(s), {} to run, {} worker(s){}",
        plan.range.start(),
        plan.range.end(),
        plan.days.len(),
        plan.chunks.len(),
        to_run,
        plan.parallel,
        if plan.force { ", forced" } else { "" }
    );
    let _ = writeln!(out, "Symbols: {}", plan.selection);
    if plan.subset {
        let _ = writeln!(out, "Note: the dates' partitions are replaced whole and will hold only these symbols.");
    }
    for d in &plan.days {
        let what = match &d.action {
            Action::Run => "run".to_owned(),
            Action::Skip { rows } => format!("skip (completed, {rows} candles in BigQuery)"),
            Action::Rerun { reason } => format!("run again ({reason})"),
            Action::Excluded { error } => format!("excluded: failed 5 times, use --force ({error})"),
            Action::Left { status } => format!("left {} (not retried)", status.as_str()),
        };
        let _ = writeln!(out, "  {}  {what}", d.day);
    }
    match plan.estimate_seconds {
        Some(s) => {
            let _ =
                writeln!(out, "Estimated duration: {} (from the mean of past runs)", human(Duration::from_secs_f64(s)));
        }
        None => {
            let _ = writeln!(out, "Estimated duration: unknown (no past runs recorded)");
        }
    }
    let _ = writeln!(out, "This was a dry run: add --execute to run it.");
    out
}

/// How a backfill ended, in words.
pub fn summary_text(summary: &Summary) -> String {
    use std::fmt::Write as _;
    let t = &summary.totals;
    let mean = if summary.results.is_empty() {
        0.0
    } else {
        summary.results.iter().map(|r| r.seconds).sum::<f64>() / summary.results.len() as f64
    };
    let ended = match (&summary.cancelled_by, summary.interrupted) {
        (Some(by), _) => format!("cancelled by {by}"),
        (None, true) => "interrupted".to_owned(),
        (None, false) => "finished".to_owned(),
    };
    let mut out = format!(
        "Backfill {} {ended}: {} succeeded, {} failed, {} skipped; {} candles written; {} in all, {:.1}s per date attempt\n",
        summary.audit_id,
        t.succeeded,
        t.failed,
        t.skipped,
        thousands(t.rows),
        human(Duration::from_secs_f64(summary.seconds)),
        mean
    );
    for r in summary.results.iter().filter(|r| r.status == JobStatus::Failed) {
        let _ = writeln!(out, "  ✗ {}: {}", r.day, r.error.as_deref().unwrap_or_default());
    }
    if summary.unfinished > 0 && summary.cancelled_by.is_none() {
        let _ = writeln!(
            out,
            "{} date(s) not finished: run the same command again to complete the range.",
            summary.unfinished
        );
    }
    out
}

/// The text of `pipeline backfill status`.
pub fn queue_text(stats: &QueueStats) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pending {}  processing {}  retry {}  completed {}  failed {}  cancelled {}  success rate {:.1}%  candles {}",
        stats.dates.pending,
        stats.dates.processing,
        stats.dates.retry,
        stats.dates.completed,
        stats.dates.failed,
        stats.dates.cancelled,
        stats.success_rate * 100.0,
        thousands(u64::try_from(stats.rows).unwrap_or(0))
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

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wired {
        #[command(flatten)]
        args: BackfillArgs,
    }

    fn parse(argv: &[&str]) -> Result<BackfillArgs, String> {
        Wired::try_parse_from(std::iter::once("backfill").chain(argv.iter().copied()))
            .map(|w| w.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn dates_and_names_are_parsed_at_the_edge() {
        let err = parse(&["2024-06-1", "2024-06-30"]).expect_err("malformed");
        assert!(err.contains("expected YYYY-MM-DD"), "{err}");
        let err = parse(&["2024-06-01", "2024-06-30", "--exchanges", "Not An Exchange"]).expect_err("bad name");
        assert!(err.contains("invalid exchange id"), "{err}");
        let args = parse(&["2024-06-30", "2024-06-01"]).expect("both dates parse");
        let err = args.request().expect_err("start after end").to_string();
        assert_eq!(err, "Start date 2024-06-30 is after end date 2024-06-01");
        let request = parse(&["2024-06-01", "2024-06-03", "--symbols", "xbtusd,ETHUSD", "--newest-first"])
            .expect("parses")
            .request()
            .expect("valid");
        assert_eq!(request.range.len(), 3);
        assert_eq!(request.symbols.iter().map(Symbol::as_str).collect::<Vec<_>>(), ["XBTUSD", "ETHUSD"]);
        assert_eq!(request.order, Order::NewestFirst);
    }

    #[test]
    fn a_wait_names_each_date_its_holder_and_the_lease() {
        let at = chrono::DateTime::parse_from_rfc3339("2024-06-04T09:12:00Z").expect("valid").to_utc();
        let held = |day: &str, worker: &str| Held {
            day: TradingDay::parse(day).expect("valid"),
            worker_id: worker.to_owned(),
            lease_expires_at: at,
        };
        let line = waiting_line("me-1", &[held("2024-06-03", "host-2-1"), held("2024-06-05", "host-2-2")]);
        assert_eq!(
            line,
            "worker me-1 waits for 2024-06-03 (held by host-2-1, lease until 09:12:00 UTC), \
             2024-06-05 (held by host-2-2, lease until 09:12:00 UTC)"
        );
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
