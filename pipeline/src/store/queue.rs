//! The date queue in Postgres: `pending → processing → completed`, or `retry` (with `retry_count`,
//! `last_retry_at`, `error_message`) and `failed` once the retries are spent.
//!
//! Claims use `FOR UPDATE SKIP LOCKED`, so any number of workers, in any number of processes or machines,
//! never hold the same date at the same time. A claim is a lease: the holder renews it (heartbeat), and a
//! claim is also marked with its worker's liveness key, a session-level advisory lock the worker keeps on a
//! connection of its own ([`Liveness`]). When a worker dies its connection ends and its key is free: its
//! dates are claimable at once, on this machine or another. A worker that is alive but hung keeps its key;
//! its dates are claimable when its lease expires. Completing or failing a date requires still holding its
//! claim (fencing), so a worker that lost it cannot overwrite the new holder's record. This module decides
//! nothing about what a date's work is.
//!
//! Two lanes share the table: dates the scheduler enqueues (the daily run) are claimed before any backfill
//! date, and a worker slot can be kept for that lane alone ([`Lanes::DailyOnly`]). A cancelled date
//! (`cancelled`) is never claimed; a cancel that asks for `now` flags the dates being run, and their workers,
//! which poll the flag with their heartbeat, abandon them.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use market::{DateRange, TradingDay};
use sqlx::Row;

use super::runs::{Store, StoreError, query_error};
use super::schedule::SCHEDULER_LOCK_KEY;
use super::session::{SessionLock, held_sql};

/// After this many failed attempts a date is `failed` and left alone unless forced.
pub const MAX_RETRIES: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Retry,
    Failed,
    /// Cancelled by an operator: never claimed until a backfill or the scheduler enqueues it again.
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Retry => "retry",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> JobStatus {
        match text {
            "processing" => JobStatus::Processing,
            "completed" => JobStatus::Completed,
            "retry" => JobStatus::Retry,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            _ => JobStatus::Pending,
        }
    }
}

/// Which claimable date a worker takes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// Which lane a date is queued in: the daily lane's dates are claimed before any backfill date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Backfill,
    Daily,
}

impl Lane {
    fn priority(self) -> i16 {
        match self {
            Lane::Backfill => 0,
            Lane::Daily => 10,
        }
    }

    fn of(priority: i16) -> Lane {
        if priority >= Lane::Daily.priority() { Lane::Daily } else { Lane::Backfill }
    }
}

/// Which lanes a worker claims from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Lanes {
    /// Any date, the daily lane's first.
    All,
    /// Only the daily lane: a slot kept free for the daily run whatever a backfill queues.
    DailyOnly,
}

impl Lanes {
    fn min_priority(self) -> i16 {
        match self {
            Lanes::All => i16::MIN,
            Lanes::DailyOnly => Lane::Daily.priority(),
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Job {
    pub day: TradingDay,
    pub status: JobStatus,
    pub retry_count: i32,
    pub last_retry_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
    pub worker_id: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub rows: Option<i64>,
    pub run_id: Option<i64>,
    pub lane: Lane,
    /// The backfill (audit id) that last queued it; `None` for the scheduler's dates.
    pub backfill_id: Option<i64>,
    /// Who cancelled it (set when the cancel was asked, before an in-flight date stops).
    pub cancelled_by: Option<String>,
}

/// A worker's liveness key, held as a session lock for as long as the worker lives (see the module
/// documentation). Dropping it, or the process dying, frees the key.
#[derive(Debug)]
pub struct Liveness(SessionLock);

impl Liveness {
    pub fn key(&self) -> i64 {
        self.0.key()
    }

    /// Whether the key is still held: `false` when its connection ended while the worker lives (a network
    /// blip, a terminated backend), and its claims then look dead to every other worker.
    pub async fn is_held(&mut self) -> bool {
        self.0.is_held().await
    }

    /// Frees the key now (dropping it frees it too, when its connection closes).
    pub async fn release(self) {
        self.0.release().await;
    }
}

/// A date another worker holds, for saying what a run waits on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Held {
    pub day: TradingDay,
    pub worker_id: String,
    /// Until when the claim stands if its worker stops renewing it (it is released at once if the worker dies).
    pub lease_expires_at: DateTime<Utc>,
}

/// A held claim on one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub day: TradingDay,
    pub worker_id: String,
}

/// How the queue hands out work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimOptions {
    pub order: Order,
    /// Only dates inside this range (a backfill), or any date (`None`, a worker).
    pub range: Option<DateRange>,
    pub lease: Duration,
    /// Delay before a failed date may be tried again: doubled per retry.
    pub retry_backoff: Duration,
    pub lanes: Lanes,
}

/// What renewing a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Still held.
    Held,
    /// Lost: the lease expired and another worker took the date.
    Lost,
    /// Still held, but an operator cancelled the date with `now`: abandon it ([`Store::abandon`]).
    CancelRequested,
}

/// How many dates (of the queue, or of a backfill) are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct DateCounts {
    pub pending: i64,
    pub processing: i64,
    pub completed: i64,
    pub retry: i64,
    pub failed: i64,
    pub cancelled: i64,
}

impl DateCounts {
    /// The count of `status`.
    pub fn get_mut(&mut self, status: JobStatus) -> &mut i64 {
        match status {
            JobStatus::Pending => &mut self.pending,
            JobStatus::Processing => &mut self.processing,
            JobStatus::Completed => &mut self.completed,
            JobStatus::Retry => &mut self.retry,
            JobStatus::Failed => &mut self.failed,
            JobStatus::Cancelled => &mut self.cancelled,
        }
    }

    /// Each status with its count, in the queue's order.
    pub fn by_status(mut self) -> [(JobStatus, i64); 6] {
        use JobStatus::*;
        [Pending, Processing, Retry, Completed, Failed, Cancelled].map(|s| (s, *self.get_mut(s)))
    }
}

/// Counts per status, and recent activity, for `pipeline backfill status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueStats {
    #[serde(flatten)]
    pub dates: DateCounts,
    /// completed / (completed + failed), or 1 when nothing finished.
    pub success_rate: f64,
    pub rows: i64,
    /// The 20 most recently updated jobs.
    pub recent: Vec<Job>,
    /// Every failed job, with its error.
    pub failures: Vec<Job>,
}

/// Bounds standing for "any date" (Postgres cannot hold chrono's extreme dates).
fn any_date() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date"),
        NaiveDate::from_ymd_opt(9999, 12, 31).expect("a valid date"),
    )
}

fn interval(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn job(row: &sqlx::postgres::PgRow) -> Job {
    Job {
        day: TradingDay::from_date(row.get::<NaiveDate, _>("day")),
        status: JobStatus::parse(row.get::<&str, _>("status")),
        retry_count: row.get("retry_count"),
        last_retry_at: row.get("last_retry_at"),
        error_message: row.get("error_message"),
        worker_id: row.get("worker_id"),
        lease_expires_at: row.get("lease_expires_at"),
        started_at: row.get("started_at"),
        completed_at: row.get("completed_at"),
        rows: row.get("rows"),
        run_id: row.get("run_id"),
        lane: Lane::of(row.get("priority")),
        backfill_id: row.get("backfill_id"),
        cancelled_by: row.get("cancelled_by"),
    }
}

/// SQL true when a `processing` row's claim stands: its lease has not expired, and its worker's liveness key
/// is still held (or it has none: claims made before keys existed rely on the lease alone).
pub(super) fn claim_stands() -> String {
    format!("(lease_expires_at > now() AND (holder_key IS NULL OR {}))", held_sql("backfill_jobs.holder_key"))
}

const JOB_COLUMNS: &str = "day, status, retry_count, last_retry_at, error_message, worker_id, lease_expires_at, \
                           started_at, completed_at, rows, run_id, priority, backfill_id, cancelled_by";

impl Store {
    /// Queues every date of `range` for backfill `backfill_id` in the backfill lane: adds a pending job for each
    /// date that has none, and queues cancelled ones again. Dates already queued are handed to this backfill
    /// (so cancelling it stops them); dates completed, failed or being run are untouched. Returns how many
    /// were added or queued again.
    pub async fn seed(&self, range: DateRange, backfill_id: Option<i64>) -> Result<u64, StoreError> {
        self.enqueue(range, backfill_id, Lane::Backfill).await
    }

    /// Queues `day` in the daily lane (the scheduler's dates): claimed before any backfill date. A date a
    /// backfill already queued moves to the daily lane.
    pub async fn seed_daily(&self, day: TradingDay) -> Result<u64, StoreError> {
        self.enqueue(DateRange::single(day), None, Lane::Daily).await
    }

    async fn enqueue(&self, range: DateRange, backfill_id: Option<i64>, lane: Lane) -> Result<u64, StoreError> {
        let days: Vec<NaiveDate> = range.days().map(TradingDay::date).collect();
        let done = sqlx::query(
            "INSERT INTO backfill_jobs (day, status, backfill_id, priority)
               SELECT d, 'pending', $2, $3 FROM unnest($1::date[]) AS d
             ON CONFLICT (day) DO UPDATE SET
               priority = GREATEST(backfill_jobs.priority, EXCLUDED.priority),
               backfill_id = coalesce(EXCLUDED.backfill_id, backfill_jobs.backfill_id),
               status = CASE WHEN backfill_jobs.status = 'cancelled' THEN 'pending' ELSE backfill_jobs.status END,
               retry_count = CASE WHEN backfill_jobs.status = 'cancelled' THEN 0 ELSE backfill_jobs.retry_count END,
               cancelled_by = NULL, cancel_requested_at = NULL, updated_at = now()
             WHERE backfill_jobs.status IN ('pending', 'retry', 'cancelled')
               AND (backfill_jobs.status = 'cancelled'
                    OR EXCLUDED.priority > backfill_jobs.priority
                    OR EXCLUDED.backfill_id IS DISTINCT FROM backfill_jobs.backfill_id AND EXCLUDED.backfill_id IS NOT NULL)",
        )
        .bind(&days)
        .bind(backfill_id)
        .bind(lane.priority())
        .execute(self.pool())
        .await
        .map_err(query_error("seed jobs"))?;
        Ok(done.rows_affected())
    }

    /// A liveness key for a worker: a random key no other session holds, locked on a connection of its own.
    pub async fn liveness(&self) -> Result<Liveness, StoreError> {
        loop {
            // Non-negative keys, so the lock's halves read back as the same bigint; never the scheduler's.
            let key = rand::random::<i64>() & i64::MAX;
            if key == SCHEDULER_LOCK_KEY {
                continue;
            }
            if let Some(lock) = self.try_session_lock(key).await? {
                return Ok(Liveness(lock));
            }
        }
    }

    /// Puts the dates of `range` back to pending, whatever their state, except dates a live worker holds
    /// (`--force`). Returns how many were reset.
    pub async fn reset(&self, range: DateRange) -> Result<u64, StoreError> {
        let sql = format!(
            "UPDATE backfill_jobs SET status = 'pending', retry_count = 0, next_attempt_at = NULL, error_message = NULL,
               worker_id = NULL, lease_expires_at = NULL, holder_key = NULL, cancelled_by = NULL,
               cancel_requested_at = NULL, updated_at = now()
             WHERE day BETWEEN $1 AND $2 AND NOT (status = 'processing' AND {})",
            claim_stands()
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(range.start().date())
            .bind(range.end().date())
            .execute(self.pool())
            .await
            .map_err(query_error("reset jobs"))?;
        Ok(done.rows_affected())
    }

    /// Claims one date for `worker_id`, marked with its `liveness` key: a pending one, a retry whose delay has
    /// passed, or a processing one whose claim no longer stands (its worker died, or hung past its lease).
    /// `None` when nothing is claimable now.
    pub async fn claim(
        &self,
        worker_id: &str,
        liveness: &Liveness,
        options: ClaimOptions,
    ) -> Result<Option<Lease>, StoreError> {
        let order = match options.order {
            Order::NewestFirst => "DESC",
            Order::OldestFirst => "ASC",
        };
        let (from, to) = match options.range {
            Some(r) => (r.start().date(), r.end().date()),
            None => any_date(),
        };
        let sql = format!(
            "UPDATE backfill_jobs SET status = 'processing', worker_id = $1, started_at = now(), heartbeat_at = now(),
               lease_expires_at = now() + make_interval(secs => $2), holder_key = $5, updated_at = now()
             WHERE day = (
               SELECT day FROM backfill_jobs
               WHERE day BETWEEN $3 AND $4
                 AND priority >= $6
                 AND (status = 'pending'
                      OR (status = 'retry' AND (next_attempt_at IS NULL OR next_attempt_at <= now()))
                      OR (status = 'processing' AND cancel_requested_at IS NULL AND NOT {stands}))
               ORDER BY priority DESC, day {order}
               FOR UPDATE SKIP LOCKED
               LIMIT 1)
             RETURNING day",
            stands = claim_stands()
        );
        let day: Option<NaiveDate> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(worker_id)
            .bind(interval(options.lease))
            .bind(from)
            .bind(to)
            .bind(liveness.key())
            .bind(options.lanes.min_priority())
            .fetch_optional(self.pool())
            .await
            .map_err(query_error("claim job"))?;
        Ok(day.map(|d| Lease { day: TradingDay::from_date(d), worker_id: worker_id.to_owned() }))
    }

    /// Renews a lease, and says whether an operator asked for the date to stop now.
    pub async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Beat, StoreError> {
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE backfill_jobs SET heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => $3)
             WHERE day = $1 AND worker_id = $2 AND status = 'processing'
             RETURNING cancel_requested_at IS NOT NULL",
        )
        .bind(lease.day.date())
        .bind(&lease.worker_id)
        .bind(interval(extend))
        .fetch_optional(self.pool())
        .await
        .map_err(query_error("heartbeat"))?;
        Ok(match cancel {
            None => Beat::Lost,
            Some(true) => Beat::CancelRequested,
            Some(false) => Beat::Held,
        })
    }

    /// Records that a held date's run was abandoned because it was cancelled with `now`: the date is
    /// `cancelled`, and the run record the abandoned run left `running` says it failed, cancelled. `false`
    /// when the lease was lost.
    pub async fn abandon(&self, lease: &Lease, trigger: &str) -> Result<bool, StoreError> {
        let row: Option<(Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "UPDATE backfill_jobs SET status = 'cancelled', lease_expires_at = NULL, next_attempt_at = NULL,
               error_message = 'cancelled by ' || coalesce(cancelled_by, 'an operator') || ' while running',
               updated_at = now()
             WHERE day = $1 AND worker_id = $2 AND status = 'processing'
             RETURNING cancelled_by, started_at",
        )
        .bind(lease.day.date())
        .bind(&lease.worker_id)
        .fetch_optional(self.pool())
        .await
        .map_err(query_error("abandon job"))?;
        let Some((by, claimed_at)) = row else {
            return Ok(false);
        };
        let error = format!("cancelled by {} while running", by.as_deref().unwrap_or("an operator"));
        self.fail_abandoned_runs(lease.day, trigger, claimed_at.unwrap_or_else(Utc::now), &error).await?;
        Ok(true)
    }

    /// Marks a held date completed. `false` when the lease was lost (nothing is changed then).
    pub async fn complete(&self, lease: &Lease, rows: u64, run_id: Option<i64>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE backfill_jobs SET status = 'completed', completed_at = now(), rows = $3, run_id = $4,
               error_message = NULL, lease_expires_at = NULL, updated_at = now()
             WHERE day = $1 AND worker_id = $2 AND status = 'processing'",
        )
        .bind(lease.day.date())
        .bind(&lease.worker_id)
        .bind(i64::try_from(rows).unwrap_or(i64::MAX))
        .bind(run_id)
        .execute(self.pool())
        .await
        .map_err(query_error("complete job"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt of a held date: `retry` (claimable again after the backoff) until
    /// [`MAX_RETRIES`] attempts have failed, then `failed`. Returns the new status, or `None` when the
    /// lease was lost.
    pub async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_backoff: Duration,
    ) -> Result<Option<JobStatus>, StoreError> {
        let status: Option<String> = sqlx::query_scalar(
            "UPDATE backfill_jobs SET
               retry_count = retry_count + 1,
               status = CASE WHEN retry_count + 1 >= $4 THEN 'failed' ELSE 'retry' END,
               last_retry_at = now(),
               next_attempt_at = now() + make_interval(secs => $5 * power(2, retry_count)),
               error_message = $3, lease_expires_at = NULL, updated_at = now()
             WHERE day = $1 AND worker_id = $2 AND status = 'processing'
             RETURNING status",
        )
        .bind(lease.day.date())
        .bind(&lease.worker_id)
        .bind(error)
        .bind(MAX_RETRIES)
        .bind(interval(retry_backoff))
        .fetch_optional(self.pool())
        .await
        .map_err(query_error("fail job"))?;
        Ok(status.as_deref().map(JobStatus::parse))
    }

    pub async fn job(&self, day: TradingDay) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM backfill_jobs WHERE day = $1")))
            .bind(day.date())
            .fetch_optional(self.pool())
            .await
            .map_err(query_error("get job"))?;
        Ok(row.as_ref().map(job))
    }

    pub async fn jobs(&self, range: DateRange) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM backfill_jobs WHERE day BETWEEN $1 AND $2 ORDER BY day"
        )))
        .bind(range.start().date())
        .bind(range.end().date())
        .fetch_all(self.pool())
        .await
        .map_err(query_error("list jobs"))?;
        Ok(rows.iter().map(job).collect())
    }

    /// The dates of `range` held by a standing claim of a worker other than `worker_id`: what a run that
    /// found nothing to claim waits on.
    pub async fn held(&self, range: Option<DateRange>, lanes: Lanes, worker_id: &str) -> Result<Vec<Held>, StoreError> {
        let (from, to) = range.map_or_else(any_date, |r| (r.start().date(), r.end().date()));
        let sql = format!(
            "SELECT day, worker_id, lease_expires_at FROM backfill_jobs
             WHERE day BETWEEN $1 AND $2 AND status = 'processing' AND worker_id <> $3 AND priority >= $4 AND {}
             ORDER BY day",
            claim_stands()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from)
            .bind(to)
            .bind(worker_id)
            .bind(lanes.min_priority())
            .fetch_all(self.pool())
            .await
            .map_err(query_error("list held jobs"))?;
        Ok(rows
            .iter()
            .map(|row| Held {
                day: TradingDay::from_date(row.get::<NaiveDate, _>("day")),
                worker_id: row.get("worker_id"),
                lease_expires_at: row.get("lease_expires_at"),
            })
            .collect())
    }

    /// How many jobs of `range` (in `lanes`) are still to be done (pending, retry, or processing).
    pub async fn unfinished(&self, range: Option<DateRange>, lanes: Lanes) -> Result<i64, StoreError> {
        let (from, to) = range.map_or_else(any_date, |r| (r.start().date(), r.end().date()));
        sqlx::query_scalar(
            "SELECT count(*) FROM backfill_jobs WHERE day BETWEEN $1 AND $2 AND status IN ('pending', 'retry', 'processing')
               AND priority >= $3",
        )
        .bind(from)
        .bind(to)
        .bind(lanes.min_priority())
        .fetch_one(self.pool())
        .await
        .map_err(query_error("count unfinished"))
    }

    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let counts = sqlx::query(
            "SELECT status, count(*) AS n, coalesce(sum(rows), 0)::bigint AS rows FROM backfill_jobs GROUP BY status",
        )
        .fetch_all(self.pool())
        .await
        .map_err(query_error("queue counts"))?;
        let mut stats = QueueStats {
            dates: DateCounts::default(),
            success_rate: 1.0,
            rows: 0,
            recent: Vec::new(),
            failures: Vec::new(),
        };
        for row in counts {
            let n: i64 = row.get("n");
            stats.rows += row.get::<i64, _>("rows");
            *stats.dates.get_mut(JobStatus::parse(row.get::<&str, _>("status"))) = n;
        }
        let d = stats.dates;
        if d.completed + d.failed > 0 {
            stats.success_rate = d.completed as f64 / (d.completed + d.failed) as f64;
        }
        let recent = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM backfill_jobs ORDER BY updated_at DESC, day DESC LIMIT 20"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(query_error("recent jobs"))?;
        stats.recent = recent.iter().map(job).collect();
        let failures = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM backfill_jobs WHERE status = 'failed' ORDER BY day"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(query_error("failed jobs"))?;
        stats.failures = failures.iter().map(job).collect();
        Ok(stats)
    }
}
