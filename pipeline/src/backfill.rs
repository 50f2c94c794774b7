//! Backfills: a range of dates, validated before anything runs, planned, then worked by N workers over the
//! Postgres queue, with a log file per date, an audit record and a summary. Progress is reported as
//! [`BackfillEvent`]s; showing it (lines, a progress bar) is the caller's business (`cli::backfill`,
//! `harness load`).
//!
//! Safety comes from the mechanisms underneath, not from this module: every date's partitions are
//! replaced whole (so a rerun never duplicates rows), the queue hands a date to one worker at a time, and
//! a killed backfill's dates are claimed again once their leases expire. Rerunning a range completes it:
//! completed dates are skipped after checking that their partition still holds the recorded rows.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use market::{DateRange, Exchange, Symbol, TradingDay};
use serde::Serialize;

use crate::bigquery::schema::CANDLES_1M;
use crate::config::Selection;
use crate::run::Pipeline;
use crate::store::{
    BackfillRecord, BackfillTotals, CancelOutcome, CancelTarget, ClaimOptions, Held, Job, JobStatus, Lanes, Order,
    StoreError,
};
use crate::worker::{self, DateResult, WorkerEvent, WorkerOptions};

/// What the operator asked for, parsed: every field is already of its type, so validation ([`validate`])
/// only checks what needs the clock or the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillRequest {
    pub range: DateRange,
    pub parallel: usize,
    pub chunk_days: u32,
    pub max_days: u32,
    pub force: bool,
    /// Only these configured exchanges (all when empty).
    pub exchanges: Vec<Exchange>,
    /// Only these configured symbols (all when empty).
    pub symbols: Vec<Symbol>,
    pub log_dir: PathBuf,
    pub requested_by: String,
    /// Set by `pipeline backfill retry ID`: which earlier backfill's dates to run again, and which of them.
    pub retry: Option<Retry>,
    pub order: Order,
    /// Delay before a failed date is tried again (doubled per retry).
    pub retry_backoff: Duration,
    pub lease: Duration,
}

impl BackfillRequest {
    /// A request for `range` with the command line's defaults (one worker, chunks of 7 dates, at most 31
    /// dates, logs under `logs/`, a 30 s retry delay, a 600 s lease).
    pub fn new(range: DateRange, requested_by: &str) -> BackfillRequest {
        BackfillRequest {
            range,
            parallel: 1,
            chunk_days: 7,
            max_days: 31,
            force: false,
            exchanges: Vec::new(),
            symbols: Vec::new(),
            log_dir: PathBuf::from("logs"),
            requested_by: requested_by.to_owned(),
            retry: None,
            order: Order::OldestFirst,
            retry_backoff: Duration::from_secs(30),
            lease: Duration::from_secs(600),
        }
    }

    /// The options as recorded in the audit log.
    fn audit_options(&self) -> serde_json::Value {
        serde_json::json!({
            "parallel": self.parallel, "chunk_days": self.chunk_days, "max_days": self.max_days,
            "force": self.force, "exchanges": self.exchanges, "symbols": self.symbols,
            "log_dir": self.log_dir, "order": self.order,
            "retry_of": self.retry.map(|r| r.of), "only_failed": self.retry.map(|r| r.only_failed),
        })
    }

    /// The request that runs backfill `of`'s dates again: its range and symbols, failed dates (and with
    /// `only_failed: false` its cancelled and unfinished ones too); completed dates are left alone.
    pub fn retry_of(record: &BackfillRecord, only_failed: bool, requested_by: &str) -> BackfillRequest {
        let range = DateRange::new(record.start, record.end).expect("an audit record's range is ordered");
        let mut request = BackfillRequest::new(range, requested_by);
        let names = |key: &str| -> Vec<String> {
            record.options[key]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        request.exchanges = names("exchanges").iter().filter_map(|e| Exchange::parse(e).ok()).collect();
        request.symbols = names("symbols").iter().filter_map(|s| Symbol::parse(s).ok()).collect();
        request.max_days = request.max_days.max(range.len());
        request.retry = Some(Retry { of: record.id, only_failed });
        request
    }
}

/// `pipeline backfill retry ID [--only-failed]`: which backfill's dates run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retry {
    /// The audit id of the backfill retried.
    pub of: i64,
    /// Only its failed dates (retries spent); otherwise its cancelled and unfinished dates too.
    pub only_failed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(
        "{which} date {day} is in the future or today (today is {today} UTC): only complete days can be backfilled"
    )]
    NotComplete { which: &'static str, day: TradingDay, today: TradingDay },
    #[error("range {start}..{end} has {days} days, more than --max-days {max}; split it or raise --max-days")]
    TooLong { start: TradingDay, end: TradingDay, days: u32, max: u32 },
    #[error("unknown exchange \"{name}\": the configured exchanges are {known}")]
    UnknownExchange { name: Exchange, known: String },
    #[error("unknown symbol \"{name}\": the configured symbols are {known}")]
    UnknownSymbol { name: Symbol, known: String },
    #[error("{what} must be between 1 and {max}, got {got}")]
    OutOfRange { what: &'static str, got: u64, max: u64 },
    #[error("there is no backfill {id}: `pipeline backfill list` shows the recorded ones")]
    UnknownBackfill { id: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the log file {path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the plan does with one date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Never done, pending, or to be retried.
    Run,
    /// Completed, and its partition still holds the recorded rows.
    Skip { rows: u64 },
    /// Completed, but to be done again (forced, or the partition no longer holds the recorded rows).
    Rerun { reason: String },
    /// Failed five times: left alone unless `--force`.
    Excluded { error: String },
    /// Not selected by `backfill retry --only-failed` (cancelled, or still queued), left as it is.
    Left { status: JobStatus },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedDay {
    pub day: TradingDay,
    #[serde(flatten)]
    pub action: Action,
}

/// A validated backfill, ready to show or run.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub range: DateRange,
    pub chunks: Vec<DateRange>,
    pub days: Vec<PlannedDay>,
    /// The pairs whose data the dates' partitions will hold.
    pub selection: String,
    /// Whether the selection is a subset of the configured one (the partitions will hold fewer symbols).
    pub subset: bool,
    pub parallel: usize,
    /// From the mean duration of past runs.
    pub estimate_seconds: Option<f64>,
    pub force: bool,
    /// A retry of an earlier backfill: only the dates it runs are queued.
    pub retry: Option<Retry>,
}

impl Plan {
    pub fn to_run(&self) -> impl Iterator<Item = &PlannedDay> {
        self.days.iter().filter(|d| matches!(d.action, Action::Run | Action::Rerun { .. }))
    }
}

/// Checks everything that can be checked without touching a database: that the days are complete, the
/// length, parallelism, exchanges and symbols. Returns the pairs the backfill runs. Nothing is written when
/// this fails.
pub fn validate(
    request: &BackfillRequest,
    today: TradingDay,
    configured: &Selection,
) -> Result<Selection, BackfillError> {
    let (start, end) = (request.range.start(), request.range.end());
    for (which, day) in [("Start", start), ("End", end)] {
        if day >= today {
            return Err(BackfillError::NotComplete { which, day, today });
        }
    }
    if request.range.len() > request.max_days {
        return Err(BackfillError::TooLong { start, end, days: request.range.len(), max: request.max_days });
    }
    for (what, got, max) in
        [("--parallel", request.parallel as u64, 64), ("--chunk-days", u64::from(request.chunk_days), 366)]
    {
        if got == 0 || got > max {
            return Err(BackfillError::OutOfRange { what, got, max });
        }
    }
    let pairs = configured.pairs();
    let known_exchanges: BTreeSet<&Exchange> = pairs.iter().map(|(e, _)| e).collect();
    if let Some(name) = request.exchanges.iter().find(|e| !known_exchanges.contains(e)) {
        let known = known_exchanges.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
        return Err(BackfillError::UnknownExchange { name: name.clone(), known });
    }
    if let Some(name) = request.symbols.iter().find(|s| !pairs.iter().any(|(_, p)| p == *s)) {
        let known = pairs.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join(", ");
        return Err(BackfillError::UnknownSymbol { name: name.clone(), known });
    }
    let selected = pairs.into_iter().filter(|(e, s)| {
        (request.exchanges.is_empty() || request.exchanges.contains(e))
            && (request.symbols.is_empty() || request.symbols.contains(s))
    });
    Ok(Selection::from_pairs(selected))
}

fn chunks(range: DateRange, chunk_days: u32) -> Vec<DateRange> {
    let days: Vec<TradingDay> = range.days().collect();
    days.chunks(chunk_days.max(1) as usize)
        .map(|c| DateRange::new(c[0], c[c.len() - 1]).expect("chunks keep their order"))
        .collect()
}

/// Looks at the queue and BigQuery to decide what each date needs. `selection` is what [`validate`] made of
/// the request, `configured` the selection it was validated against.
pub async fn plan(
    pipeline: &Pipeline,
    request: &BackfillRequest,
    selection: &Selection,
    configured: &Selection,
) -> Result<Plan, BackfillError> {
    let range = request.range;
    let jobs = pipeline.store().jobs(range).await?;
    let mut days = Vec::with_capacity(range.len() as usize);
    for day in range.days() {
        let job: Option<&Job> = jobs.iter().find(|j| j.day == day);
        if let Some(retry) = request.retry {
            days.push(PlannedDay { day, action: retry_action(retry, job) });
            continue;
        }
        let action = match job.map(|j| (j.status, j)) {
            Some((JobStatus::Completed, _)) if request.force => Action::Rerun { reason: "forced".to_owned() },
            Some((JobStatus::Completed, job)) => {
                let recorded = job.rows.and_then(|r| u64::try_from(r).ok()).unwrap_or(0);
                match pipeline.bigquery().partition_rows(&CANDLES_1M, day).await {
                    Ok(rows) if rows == recorded => Action::Skip { rows },
                    Ok(rows) => Action::Rerun { reason: format!("partition holds {rows} rows, {recorded} recorded") },
                    Err(err) => Action::Rerun { reason: format!("partition not readable: {err}") },
                }
            }
            Some((JobStatus::Failed, _)) if !request.force => {
                Action::Excluded { error: job.and_then(|j| j.error_message.clone()).unwrap_or_default() }
            }
            _ => Action::Run,
        };
        days.push(PlannedDay { day, action });
    }
    let estimate_seconds = pipeline.store().mean_run_seconds().await?.map(|mean| {
        let runs = days.iter().filter(|d| matches!(d.action, Action::Run | Action::Rerun { .. })).count() as f64;
        mean * (runs / request.parallel.max(1) as f64).ceil()
    });
    Ok(Plan {
        range,
        chunks: chunks(range, request.chunk_days),
        days,
        subset: selection.pairs().len() < configured.pairs().len(),
        selection: selection.to_string(),
        parallel: request.parallel,
        estimate_seconds,
        force: request.force,
        retry: request.retry,
    })
}

/// What a retry does with a date: a failed date runs again (its retries reset); with `--only-failed` nothing
/// else does, otherwise cancelled and never-run dates run too. Completed dates, and dates being run, are left.
fn retry_action(retry: Retry, job: Option<&Job>) -> Action {
    match job.map(|j| j.status) {
        Some(JobStatus::Failed) => Action::Rerun {
            reason: format!(
                "failed {} times: {}",
                job.map_or(0, |j| j.retry_count),
                job.and_then(|j| j.error_message.as_deref()).unwrap_or("-")
            ),
        },
        Some(JobStatus::Completed) => Action::Skip { rows: job.and_then(|j| j.rows).map_or(0, |r| r.max(0) as u64) },
        Some(status @ (JobStatus::Processing | JobStatus::Pending | JobStatus::Retry)) if retry.only_failed => {
            Action::Left { status }
        }
        Some(JobStatus::Processing) => Action::Left { status: JobStatus::Processing },
        Some(JobStatus::Cancelled) if retry.only_failed => Action::Left { status: JobStatus::Cancelled },
        Some(JobStatus::Cancelled) => Action::Rerun { reason: "cancelled".to_owned() },
        Some(JobStatus::Pending | JobStatus::Retry) | None => Action::Run,
    }
}

/// How `cancel` finds who asked: `user@host`.
pub fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    format!("{user}@{}", crate::worker::hostname())
}

/// Cancels backfill `target` (see [`crate::store::Store::cancel_backfills`]): its queued dates are never claimed,
/// dates being run finish (or, with `now`, their workers abandon them within a second or so), and the audit
/// record says cancelled, by `by`. Works from any machine that reaches the database.
pub async fn cancel(
    store: &crate::store::Store,
    target: CancelTarget,
    by: &str,
    now: bool,
) -> Result<CancelOutcome, BackfillError> {
    let outcome = store.cancel_backfills(target, by, now).await?;
    let outcome = match (outcome, target) {
        (Some(outcome), _) => outcome,
        (None, CancelTarget::Backfill(id)) => return Err(BackfillError::UnknownBackfill { id }),
        (None, CancelTarget::All) => unreachable!("cancelling every backfill always has an outcome"),
    };
    tracing::info!(backfills = ?outcome.backfills, queued = outcome.queued, in_flight = outcome.in_flight.len(), now, by, "Backfill cancelled.");
    Ok(outcome)
}

/// The backfill `id`'s audit record, or a clear error when there is none.
pub async fn record(store: &crate::store::Store, id: i64) -> Result<BackfillRecord, BackfillError> {
    store.backfill(id).await?.ok_or(BackfillError::UnknownBackfill { id })
}

fn log_path(dir: &Path, day: TradingDay) -> PathBuf {
    dir.join(format!("backfill_{day}.log"))
}

fn append_log(dir: &Path, day: TradingDay, text: &str) -> Result<(), BackfillError> {
    let path = log_path(dir, day);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| BackfillError::Log { path: path.clone(), source })?;
    file.write_all(text.as_bytes()).map_err(|source| BackfillError::Log { path, source })
}

fn result_log(result: &DateResult) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} end {} status={} seconds={:.1} worker={}",
        result.day,
        Utc::now().to_rfc3339(),
        result.status.as_str(),
        result.seconds,
        result.worker_id
    );
    if let Some(outcome) = &result.outcome {
        let _ = writeln!(out, "  run {} ({})", outcome.run_id, outcome.status.as_str());
        for s in &outcome.stages {
            let mark = if s.succeeded { "ok" } else { "FAILED" };
            let _ = writeln!(out, "  stage {} {mark} {} ms rows={}", s.stage, s.duration_ms(), s.rows.unwrap_or(0));
            if let Some(error) = &s.error {
                let _ = writeln!(out, "    error: {error}");
            }
        }
        let c = &outcome.counts;
        let _ = writeln!(
            out,
            "  files={} trades={} candles={} instruments={}",
            c.files, c.trades, c.candles, c.instruments
        );
        if let Some(v) = &outcome.validation {
            let _ = writeln!(
                out,
                "  validation {} completeness={:.4} quality={:.4} consistency={:.4}",
                v.status.as_str(),
                v.scores.completeness,
                v.scores.quality,
                v.scores.consistency
            );
        }
    }
    if let Some(error) = &result.error {
        let _ = writeln!(out, "  error: {error}");
    }
    out
}

/// How a backfill ended.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub audit_id: i64,
    pub totals: BackfillTotals,
    pub interrupted: bool,
    pub seconds: f64,
    pub results: Vec<DateResult>,
    /// Dates the range still has unfinished (interrupted or retries left).
    pub unfinished: i64,
    /// Who cancelled the backfill while it ran (`pipeline backfill cancel`), if anyone did.
    pub cancelled_by: Option<String>,
}

/// Opens the audit record of `request` (linked to the backfill it retries, if it is a retry).
async fn open_audit(
    pipeline: &Pipeline,
    request: &BackfillRequest,
    options: &serde_json::Value,
    dry_run: bool,
) -> Result<i64, BackfillError> {
    let store = pipeline.store();
    let id = store.start_backfill(&request.requested_by, request.range, options, dry_run).await?;
    if let Some(retry) = request.retry {
        store.mark_retry_of(id, retry.of).await?;
    }
    Ok(id)
}

/// Records a plan that was only shown (a dry run) in the audit log.
pub async fn record_dry_run(pipeline: &Pipeline, request: &BackfillRequest) -> Result<i64, BackfillError> {
    open_audit(pipeline, request, &request.audit_options(), true).await
}

/// A backfill put in the queue for workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    /// Its audit id (what `cancel` and `retry` take).
    pub id: i64,
    /// How many of its dates are to run.
    pub dates: usize,
}

/// Puts the plan's dates in the queue (resetting those to run again) without running them, and records
/// the backfill as `enqueued`.
pub async fn enqueue(pipeline: &Pipeline, request: &BackfillRequest, plan: &Plan) -> Result<Enqueued, BackfillError> {
    let mut options = request.audit_options();
    options["enqueue_only"] = serde_json::Value::Bool(true);
    let id = open_audit(pipeline, request, &options, false).await?;
    queue_plan(pipeline, plan, id).await?;
    pipeline.store().finish_backfill(id, "enqueued", BackfillTotals::default()).await?;
    Ok(Enqueued { id, dates: plan.to_run().count() })
}

/// Puts the plan's dates in the queue under backfill `audit_id`: with `--force` every date of the range is reset
/// to pending (failed ones included; dates another worker holds right now are left to it), otherwise only the
/// dates the plan reruns; then the range is seeded (dates already queued are kept as they are).
async fn queue_plan(pipeline: &Pipeline, plan: &Plan, audit_id: i64) -> Result<(), BackfillError> {
    if plan.force {
        pipeline.store().reset(plan.range).await?;
    } else {
        for d in plan.days.iter().filter(|d| matches!(d.action, Action::Rerun { .. })) {
            pipeline.store().reset(DateRange::single(d.day)).await?;
        }
    }
    if plan.retry.is_some() {
        // Only the dates retried: the others (cancelled ones with --only-failed) stay as they are.
        for d in plan.to_run() {
            pipeline.store().seed(DateRange::single(d.day), Some(audit_id)).await?;
        }
    } else {
        pipeline.store().seed(plan.range, Some(audit_id)).await?;
    }
    Ok(())
}

/// What a backfill reports as it goes.
#[derive(Debug)]
pub enum BackfillEvent<'a> {
    /// The backfill is recorded under this audit id (what `pipeline backfill cancel` and `retry` take); its
    /// dates are queued and workers start.
    Opened { id: i64 },
    /// A date was claimed and its run starts.
    Started { day: TradingDay, worker_id: &'a str },
    /// A date's attempt ended; `done` of the plan's `total` dates to run are finished (an attempt that will
    /// be retried does not count).
    Finished { result: &'a DateResult, done: usize, total: usize },
    /// A worker found nothing to claim and waits for these dates, which other live workers hold.
    Waiting { worker_id: &'a str, held: &'a [Held] },
}

/// Runs a plan: chunk by chunk, `parallel` workers on the queue, until every date of the chunk is done
/// or the stop switch is flipped (then in-flight dates finish and nothing more is claimed). Each date's
/// attempts are appended to its log file; `on_event` hears of each start and end.
pub async fn execute(
    pipeline: &Pipeline,
    request: &BackfillRequest,
    plan: &Plan,
    stop: tokio::sync::watch::Receiver<bool>,
    on_event: &(dyn Fn(BackfillEvent<'_>) + Sync),
) -> Result<Summary, BackfillError> {
    let started = Instant::now();
    let audit_id = open_audit(pipeline, request, &request.audit_options(), false).await?;
    std::fs::create_dir_all(&request.log_dir)
        .map_err(|source| BackfillError::Log { path: request.log_dir.clone(), source })?;
    let skipped = plan.days.iter().filter(|d| !matches!(d.action, Action::Run | Action::Rerun { .. })).count();
    queue_plan(pipeline, plan, audit_id).await?;
    on_event(BackfillEvent::Opened { id: audit_id });

    let total = plan.to_run().count();
    let done = Mutex::new(0usize);
    let worker_ids: Vec<String> =
        (0..request.parallel).map(|i| format!("{}-{}-{}", request.requested_by, std::process::id(), i + 1)).collect();
    let log_dir = request.log_dir.as_path();
    let mut results: Vec<DateResult> = Vec::new();
    let mut log_error: Option<BackfillError> = None;
    for chunk in &plan.chunks {
        if *stop.borrow() {
            break;
        }
        let workers = (0..request.parallel).map(|i| {
            let options = WorkerOptions {
                worker_id: worker_ids[i].clone(),
                claim: ClaimOptions {
                    order: request.order,
                    range: Some(*chunk),
                    lease: request.lease,
                    retry_backoff: request.retry_backoff,
                    lanes: Lanes::All,
                },
                follow: false,
                idle_poll: Duration::from_millis(200).min(request.retry_backoff.max(Duration::from_millis(20))),
                trigger: "backfill".to_owned(),
            };
            let (stop, done, siblings) = (stop.clone(), &done, &worker_ids);
            async move {
                let mut errors = Vec::new();
                let results = worker::work(pipeline, &options, stop, |event| match event {
                    WorkerEvent::Claimed { day, worker_id } => {
                        let line = format!("{day} start {} worker={worker_id}\n", Utc::now().to_rfc3339());
                        if let Err(err) = append_log(log_dir, day, &line) {
                            errors.push(err);
                        }
                        on_event(BackfillEvent::Started { day, worker_id });
                    }
                    WorkerEvent::Finished(result) => {
                        if let Err(err) = append_log(log_dir, result.day, &result_log(result)) {
                            errors.push(err);
                        }
                        let mut n = done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if result.status != JobStatus::Retry {
                            *n += 1;
                        }
                        on_event(BackfillEvent::Finished { result, done: *n, total });
                    }
                    // Waiting for this backfill's own workers to finish a chunk is not worth saying.
                    WorkerEvent::Waiting { held } if held.iter().any(|h| !siblings.contains(&h.worker_id)) => {
                        on_event(BackfillEvent::Waiting { worker_id: &options.worker_id, held });
                    }
                    WorkerEvent::Waiting { .. } => {}
                })
                .await;
                (results, errors)
            }
        });
        for (outcome, errors) in futures::future::join_all(workers).await {
            results.extend(outcome?);
            if log_error.is_none() {
                log_error = errors.into_iter().next();
            }
        }
    }
    let interrupted = *stop.borrow();
    let succeeded: BTreeSet<TradingDay> =
        results.iter().filter(|r| r.status == JobStatus::Completed).map(|r| r.day).collect();
    let failed: BTreeSet<TradingDay> = results
        .iter()
        .filter(|r| r.status == JobStatus::Failed && !succeeded.contains(&r.day))
        .map(|r| r.day)
        .collect();
    let totals = BackfillTotals {
        succeeded: succeeded.len() as u32,
        failed: failed.len() as u32,
        skipped: skipped as u32,
        rows: results.iter().filter(|r| r.status == JobStatus::Completed).map(|r| r.candles).sum(),
    };
    let unfinished = pipeline.store().unfinished(Some(plan.range), Lanes::All).await?;
    let status = if interrupted || unfinished > 0 {
        "interrupted"
    } else if totals.failed > 0 {
        "failed"
    } else {
        "succeeded"
    };
    let (_, cancelled_by) = pipeline.store().finish_backfill(audit_id, status, totals).await?;
    if let Some(err) = log_error {
        return Err(err);
    }
    Ok(Summary {
        audit_id,
        totals,
        interrupted,
        seconds: started.elapsed().as_secs_f64(),
        results,
        unfinished,
        cancelled_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(start: &str, end: &str) -> BackfillRequest {
        let mut request = BackfillRequest::new(DateRange::parse(start, end).expect("valid range"), "test");
        request.retry_backoff = Duration::ZERO;
        request
    }

    #[track_caller]
    fn check(request: &BackfillRequest, expected: Result<usize, &str>) {
        let today = TradingDay::parse("2024-07-10").expect("valid");
        let configured = Selection::parse("bitmex:XBTUSD,ETHUSD;deribit:BTC-PERPETUAL").expect("valid");
        match (validate(request, today, &configured), expected) {
            (Ok(selection), Ok(pairs)) => assert_eq!(selection.pairs().len(), pairs),
            (Err(err), Err(want)) => assert!(err.to_string().contains(want), "{err} does not contain {want}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn requests_are_validated_before_anything_runs() {
        check(&request("2024-06-01", "2024-06-30"), Ok(3));
        check(&request("2024-07-01", "2099-01-01"), Err("End date 2099-01-01 is in the future or today"));
        check(&request("2024-07-10", "2024-07-10"), Err("Start date 2024-07-10 is in the future or today"));
        check(&request("2024-01-01", "2024-06-30"), Err("more than --max-days 31"));
        let mut r = request("2024-06-01", "2024-06-02");
        r.exchanges = vec![Exchange::parse("kraken").expect("valid name")];
        check(&r, Err("unknown exchange \"kraken\": the configured exchanges are bitmex, deribit"));
        r.exchanges = vec![Exchange::parse("bitmex").expect("valid name")];
        check(&r, Ok(2));
        r.symbols = vec![Symbol::parse("NOPE").expect("valid name")];
        check(&r, Err("unknown symbol \"NOPE\""));
        let mut r = request("2024-06-01", "2024-06-02");
        r.parallel = 0;
        check(&r, Err("--parallel must be between 1 and 64"));
    }

    #[test]
    fn ranges_split_into_chunks_in_order() {
        let range = DateRange::parse("2024-06-01", "2024-06-10").expect("valid");
        let got: Vec<String> = chunks(range, 4).iter().map(|c| format!("{}..{}", c.start(), c.end())).collect();
        assert_eq!(got, ["2024-06-01..2024-06-04", "2024-06-05..2024-06-08", "2024-06-09..2024-06-10"]);
    }
}
