//! Working the date queue: claim a date, run it (renewing the lease meanwhile), record the outcome.
//! Used by `pipeline worker`, by backfills (several workers in one process) and by the scheduler.
//!
//! A date counts as done only when its run succeeded and validation did not fail; anything else is a
//! failed attempt (retried up to `MAX_RETRIES`). Stopping is cooperative: a stop request lets the
//! current date finish (a run is safe to abandon, since partitions are replaced whole, but finishing
//! saves the work) and claims nothing more. An operator's cancel with `now` is the exception: the
//! heartbeat sees it within [`CANCEL_POLL`], the run is abandoned there and the date recorded `cancelled`.

use std::time::{Duration, Instant};

use market::TradingDay;
use market::checks::Status;
use tokio::sync::watch;

use crate::run::{Pipeline, RunOutcome};
use crate::store::{Beat, ClaimOptions, Held, JobStatus, Lease, StoreError};

/// How often a running date's worker renews its lease and looks for a cancel asking it to stop now (the lease's
/// third, when that is shorter).
pub const CANCEL_POLL: Duration = Duration::from_secs(1);

/// How one worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub worker_id: String,
    pub claim: ClaimOptions,
    /// Keep polling for work when the queue is empty (`pipeline worker --follow`).
    pub follow: bool,
    /// Interval between polls of an empty queue in follow mode.
    pub idle_poll: Duration,
    /// What the runs are recorded as (`backfill`, `worker`, `schedule`).
    pub trigger: String,
}

/// What happened to one claimed date.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DateResult {
    pub day: TradingDay,
    pub worker_id: String,
    /// The queue status after the attempt: completed, retry, failed, or cancelled (abandoned on an
    /// operator's cancel with `now`).
    pub status: JobStatus,
    pub seconds: f64,
    pub trades: u64,
    pub candles: u64,
    pub error: Option<String>,
    pub outcome: Option<RunOutcome>,
}

/// What a worker reports as it goes.
#[derive(Debug)]
pub enum WorkerEvent<'a> {
    /// A date was claimed and its run starts.
    Claimed { day: TradingDay, worker_id: &'a str },
    /// A date's attempt ended.
    Finished(&'a DateResult),
    /// Nothing is claimable, but these dates of the worker's range are held by other live workers: the worker
    /// waits for them. Said once each time the set changes.
    Waiting { held: &'a [Held] },
}

/// This machine's name, for the default ids of workers and schedulers (`HOSTNAME`, else the kernel's).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}

/// A stop switch shared by workers: flip it to `true` to stop claiming (the command line flips it on
/// SIGINT or SIGTERM).
pub fn stop_switch() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Why a run did not complete its date, or `None` when it did.
fn failure_of(outcome: &RunOutcome) -> Option<String> {
    if let Some(error) = &outcome.error {
        return Some(error.clone());
    }
    match &outcome.validation {
        Some(v) if v.status >= Status::Fail => {
            let failing: Vec<String> = v
                .checks
                .iter()
                .filter(|c| c.status >= Status::Fail)
                .map(|c| format!("{} ({} failed)", c.id, c.failed))
                .collect();
            Some(format!("validation failed: {}", failing.join(", ")))
        }
        Some(_) => None,
        None => Some("the run did not validate".to_owned()),
    }
}

/// Runs one held date to its end and records the result in the queue.
pub async fn process(pipeline: &Pipeline, lease: &Lease, options: &WorkerOptions) -> Result<DateResult, StoreError> {
    let started = Instant::now();
    let store = pipeline.store().clone();
    let beat = (options.claim.lease / 3).min(CANCEL_POLL);
    let heartbeat_lease = lease.clone();
    let extend = options.claim.lease;
    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
    // Renew the lease while the date runs; a lost lease is logged (the completion below will then not
    // overwrite the new holder's record); a cancel asking to stop now ends the run below.
    let heartbeat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(beat).await;
            match store.heartbeat(&heartbeat_lease, extend).await {
                Ok(Beat::Held) => {}
                Ok(Beat::Lost) => {
                    tracing::warn!(day = %heartbeat_lease.day, worker = %heartbeat_lease.worker_id, "Lease lost.");
                    return;
                }
                Ok(Beat::CancelRequested) => {
                    let _ = cancel_tx.send(());
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "Heartbeat failed; retrying."),
            }
        }
    });
    // A heartbeat that ended without a cancel drops the sender, which disables the cancel branch.
    let outcome = tokio::select! {
        outcome = pipeline.run_day(lease.day, &options.trigger) => Some(outcome),
        Ok(()) = cancel_rx => None,
    };
    heartbeat.abort();
    let seconds = started.elapsed().as_secs_f64();
    let Some(outcome) = outcome else {
        let recorded = pipeline.store().abandon(lease, &options.trigger).await?;
        let job = pipeline.store().job(lease.day).await?;
        let error = job.and_then(|j| j.error_message).unwrap_or_else(|| "cancelled while running".to_owned());
        tracing::warn!(day = %lease.day, worker = %lease.worker_id, %error, "Run abandoned: the date was cancelled.");
        return Ok(DateResult {
            day: lease.day,
            worker_id: lease.worker_id.clone(),
            status: if recorded { JobStatus::Cancelled } else { JobStatus::Processing },
            seconds,
            trades: 0,
            candles: 0,
            error: Some(error),
            outcome: None,
        });
    };
    let (status, error, outcome) = match outcome {
        Ok(outcome) => match failure_of(&outcome) {
            None => {
                let recorded = pipeline.store().complete(lease, outcome.counts.candles, Some(outcome.run_id)).await?;
                (if recorded { JobStatus::Completed } else { JobStatus::Processing }, None, Some(outcome))
            }
            Some(error) => {
                let status = pipeline.store().fail(lease, &error, options.claim.retry_backoff).await?;
                (status.unwrap_or(JobStatus::Processing), Some(error), Some(outcome))
            }
        },
        Err(err) => {
            let error = format!("the run could not be recorded: {err}");
            let status = pipeline.store().fail(lease, &error, options.claim.retry_backoff).await?;
            (status.unwrap_or(JobStatus::Processing), Some(error), None)
        }
    };
    if status == JobStatus::Processing {
        tracing::warn!(day = %lease.day, worker = %lease.worker_id, "The lease was lost before the date was recorded; another worker owns it.");
    }
    Ok(DateResult {
        day: lease.day,
        worker_id: lease.worker_id.clone(),
        status,
        seconds,
        trades: outcome.as_ref().map_or(0, |o| o.counts.trades),
        candles: outcome.as_ref().map_or(0, |o| o.counts.candles),
        error,
        outcome,
    })
}

/// Claims and processes dates until the queue has nothing claimable (or, with `follow`, until stopped).
/// `on_event` hears of each claim and each finished date.
pub async fn work(
    pipeline: &Pipeline,
    options: &WorkerOptions,
    mut stop: watch::Receiver<bool>,
    mut on_event: impl FnMut(WorkerEvent<'_>),
) -> Result<Vec<DateResult>, StoreError> {
    let store = pipeline.store();
    // Held for as long as this worker works: if the process dies, its claims are free at once.
    let mut liveness = store.liveness().await?;
    let mut results = Vec::new();
    let mut waiting_on: Vec<Held> = Vec::new();
    loop {
        if *stop.borrow() {
            break;
        }
        // A liveness key whose connection ended would make every new claim look dead to the others.
        if !liveness.is_held().await {
            tracing::warn!(worker = %options.worker_id, "The liveness key's connection ended; taking a new key.");
            liveness = store.liveness().await?;
        }
        match store.claim(&options.worker_id, &liveness, options.claim).await? {
            Some(lease) => {
                tracing::info!(day = %lease.day, worker = %options.worker_id, "Date claimed.");
                on_event(WorkerEvent::Claimed { day: lease.day, worker_id: &options.worker_id });
                let result = process(pipeline, &lease, options).await?;
                on_event(WorkerEvent::Finished(&result));
                results.push(result);
            }
            None => {
                // Without --follow, retries waiting for their delay or dates other workers hold are waited
                // for, so that a backfill ends only when its range is finished.
                if !options.follow && store.unfinished(options.claim.range, options.claim.lanes).await? == 0 {
                    break;
                }
                let held = store.held(options.claim.range, options.claim.lanes, &options.worker_id).await?;
                if held != waiting_on {
                    if !held.is_empty() {
                        on_event(WorkerEvent::Waiting { held: &held });
                    }
                    waiting_on = held;
                }
                tokio::select! {
                    _ = tokio::time::sleep(options.idle_poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    liveness.release().await;
    Ok(results)
}
