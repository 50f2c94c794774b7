//! The backfill audit log: who asked for which range with which options, what came of it, and who cancelled
//! it. Cancelling is done here too, in one transaction over the audit record and its queued dates.

use chrono::{DateTime, NaiveDate, Utc};
use market::{DateRange, TradingDay};
use sqlx::Row;

use super::queue::{DateCounts, claim_stands};
use super::runs::{Store, StoreError, query_error};

/// What a cancel applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelTarget {
    /// One backfill, by its audit id.
    Backfill(i64),
    /// Every backfill not finished yet, and every backfill-lane date (never the daily lane's).
    All,
}

/// A date being run when its backfill was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InFlight {
    pub day: TradingDay,
    pub worker_id: String,
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CancelOutcome {
    /// The audit records now `cancelled` (a backfill that had already finished keeps its status).
    pub backfills: Vec<i64>,
    /// Queued dates that will not be claimed.
    pub queued: u64,
    /// Dates being run: they finish, or with `now` their workers abandon them.
    pub in_flight: Vec<InFlight>,
    pub now: bool,
    pub by: String,
}

/// A backfill's audit record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackfillRecord {
    pub id: i64,
    pub requested_by: String,
    pub start: TradingDay,
    pub end: TradingDay,
    pub status: String,
    pub options: serde_json::Value,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub succeeded: i32,
    pub failed: i32,
    pub skipped: i32,
    pub rows_written: i64,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub retry_of: Option<i64>,
    /// Its dates in the queue now (dates a later backfill took over count there).
    pub dates: DateCounts,
}

const BACKFILL_SELECT: &str = "SELECT a.id, a.requested_by, a.start_day, a.end_day, a.status, a.options, a.started_at,
      a.finished_at, a.succeeded, a.failed, a.skipped, a.rows_written, a.cancelled_by, a.cancelled_at, a.retry_of,
      count(j.day) FILTER (WHERE j.status = 'pending') AS pending,
      count(j.day) FILTER (WHERE j.status = 'processing') AS processing,
      count(j.day) FILTER (WHERE j.status = 'completed') AS completed,
      count(j.day) FILTER (WHERE j.status = 'retry') AS retry,
      count(j.day) FILTER (WHERE j.status = 'failed') AS failed_dates,
      count(j.day) FILTER (WHERE j.status = 'cancelled') AS cancelled
    FROM backfill_audit a LEFT JOIN backfill_jobs j ON j.backfill_id = a.id";

fn backfill_record(row: &sqlx::postgres::PgRow) -> BackfillRecord {
    BackfillRecord {
        id: row.get("id"),
        requested_by: row.get("requested_by"),
        start: TradingDay::from_date(row.get("start_day")),
        end: TradingDay::from_date(row.get("end_day")),
        status: row.get("status"),
        options: row.get("options"),
        started_at: row.get("started_at"),
        finished_at: row.get("finished_at"),
        succeeded: row.get("succeeded"),
        failed: row.get("failed"),
        skipped: row.get("skipped"),
        rows_written: row.get("rows_written"),
        cancelled_by: row.get("cancelled_by"),
        cancelled_at: row.get("cancelled_at"),
        retry_of: row.get("retry_of"),
        dates: DateCounts {
            pending: row.get("pending"),
            processing: row.get("processing"),
            completed: row.get("completed"),
            retry: row.get("retry"),
            failed: row.get("failed_dates"),
            cancelled: row.get("cancelled"),
        },
    }
}

/// The outcome totals of a finished backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct BackfillTotals {
    pub succeeded: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rows: u64,
}

impl Store {
    /// Opens an audit record; `dry_run` records a plan that was only shown.
    pub async fn start_backfill(
        &self,
        requested_by: &str,
        range: DateRange,
        options: &serde_json::Value,
        dry_run: bool,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO backfill_audit (requested_by, start_day, end_day, options, dry_run, status)
             VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 THEN 'planned' ELSE 'running' END) RETURNING id",
        )
        .bind(requested_by)
        .bind(range.start().date())
        .bind(range.end().date())
        .bind(options)
        .bind(dry_run)
        .fetch_one(self.pool())
        .await
        .map_err(query_error("start backfill audit"))
    }

    /// Closes an audit record with `status` and its totals, unless it was cancelled meanwhile: then it stays
    /// `cancelled` (with the totals). Returns the record's final status and who cancelled it.
    pub async fn finish_backfill(
        &self,
        id: i64,
        status: &str,
        totals: BackfillTotals,
    ) -> Result<(String, Option<String>), StoreError> {
        sqlx::query_as(
            "UPDATE backfill_audit SET finished_at = now(),
               status = CASE WHEN status = 'cancelled' THEN status ELSE $2 END,
               succeeded = $3, failed = $4, skipped = $5, rows_written = $6 WHERE id = $1
             RETURNING status, cancelled_by",
        )
        .bind(id)
        .bind(status)
        .bind(i32::try_from(totals.succeeded).unwrap_or(i32::MAX))
        .bind(i32::try_from(totals.failed).unwrap_or(i32::MAX))
        .bind(i32::try_from(totals.skipped).unwrap_or(i32::MAX))
        .bind(i64::try_from(totals.rows).unwrap_or(i64::MAX))
        .fetch_one(self.pool())
        .await
        .map_err(query_error("finish backfill audit"))
    }

    /// Links a backfill to the one it retries.
    pub async fn mark_retry_of(&self, id: i64, retry_of: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE backfill_audit SET retry_of = $2 WHERE id = $1")
            .bind(id)
            .bind(retry_of)
            .execute(self.pool())
            .await
            .map_err(query_error("link retried backfill"))?;
        Ok(())
    }

    /// The most recent `limit` backfills (dry runs left out), newest first, with their dates' states.
    pub async fn backfills(&self, limit: i64) -> Result<Vec<BackfillRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{BACKFILL_SELECT} WHERE NOT a.dry_run GROUP BY a.id ORDER BY a.id DESC LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(query_error("list backfills"))?;
        Ok(rows.iter().map(backfill_record).collect())
    }

    /// One backfill's record, or `None` when there is no such id.
    pub async fn backfill(&self, id: i64) -> Result<Option<BackfillRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{BACKFILL_SELECT} WHERE a.id = $1 GROUP BY a.id")))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(query_error("get backfill"))?;
        Ok(row.as_ref().map(backfill_record))
    }

    /// Cancels a backfill, or every unfinished one: in one transaction, their queued dates (pending, retry,
    /// or held by a worker that died) become `cancelled` and are never claimed; dates being run finish, or
    /// with `now` are flagged for their workers to abandon; the audit records say `cancelled`, by `by`.
    /// `None` when `target` names no backfill.
    pub async fn cancel_backfills(
        &self,
        target: CancelTarget,
        by: &str,
        now: bool,
    ) -> Result<Option<CancelOutcome>, StoreError> {
        let mut tx = self.pool().begin().await.map_err(query_error("cancel backfill"))?;
        let (ids, all): (Vec<i64>, bool) = match target {
            CancelTarget::Backfill(id) => {
                let found: Option<String> =
                    sqlx::query_scalar("SELECT status FROM backfill_audit WHERE id = $1 AND NOT dry_run FOR UPDATE")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(query_error("cancel backfill"))?;
                if found.is_none() {
                    return Ok(None);
                }
                (vec![id], false)
            }
            CancelTarget::All => {
                let ids = sqlx::query_scalar(
                    "SELECT id FROM backfill_audit WHERE status IN ('running', 'enqueued', 'interrupted') AND NOT dry_run
                     ORDER BY id FOR UPDATE",
                )
                .fetch_all(&mut *tx)
                .await
                .map_err(query_error("cancel backfill"))?;
                (ids, true)
            }
        };
        // The backfill's dates, or with --all every backfill-lane date: the daily lane is not a backfill's.
        let whose = "(priority < 10 AND (backfill_id = ANY($1) OR $2))";
        let queued = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE backfill_jobs SET status = 'cancelled', cancelled_by = $3, next_attempt_at = NULL,
               lease_expires_at = NULL, error_message = 'cancelled by ' || $3, updated_at = now()
             WHERE {whose} AND (status IN ('pending', 'retry') OR (status = 'processing' AND NOT {stands}))",
            stands = claim_stands()
        )))
        .bind(&ids)
        .bind(all)
        .bind(by)
        .execute(&mut *tx)
        .await
        .map_err(query_error("cancel queued dates"))?
        .rows_affected();
        let flag = if now {
            "cancel_requested_at = now(), cancelled_by = $3, updated_at = now()"
        } else {
            "updated_at = updated_at"
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE backfill_jobs SET {flag} WHERE {whose} AND status = 'processing' RETURNING day, worker_id"
        )))
        .bind(&ids)
        .bind(all)
        .bind(by)
        .fetch_all(&mut *tx)
        .await
        .map_err(query_error("cancel dates in flight"))?;
        let mut in_flight: Vec<InFlight> = rows
            .iter()
            .map(|row| InFlight {
                day: TradingDay::from_date(row.get::<NaiveDate, _>("day")),
                worker_id: row.get::<Option<String>, _>("worker_id").unwrap_or_default(),
            })
            .collect();
        in_flight.sort_by_key(|f| f.day);
        let cancelled: Vec<i64> = sqlx::query_scalar(
            "UPDATE backfill_audit SET status = 'cancelled', cancelled_by = $2, cancelled_at = now(),
               finished_at = coalesce(finished_at, now())
             WHERE id = ANY($1) AND status IN ('running', 'enqueued', 'interrupted') RETURNING id",
        )
        .bind(&ids)
        .bind(by)
        .fetch_all(&mut *tx)
        .await
        .map_err(query_error("cancel backfill audit"))?;
        tx.commit().await.map_err(query_error("cancel backfill"))?;
        Ok(Some(CancelOutcome { backfills: cancelled, queued, in_flight, now, by: by.to_owned() }))
    }

    /// Mean duration of succeeded runs (for estimates), in seconds, over the last 100.
    pub async fn mean_run_seconds(&self) -> Result<Option<f64>, StoreError> {
        sqlx::query_scalar(
            "SELECT avg(extract(epoch FROM finished_at - started_at))::float8 FROM (
               SELECT started_at, finished_at FROM pipeline_runs WHERE status = 'succeeded' AND finished_at IS NOT NULL
               ORDER BY started_at DESC LIMIT 100) recent",
        )
        .fetch_one(self.pool())
        .await
        .map_err(query_error("mean run time"))
    }
}
