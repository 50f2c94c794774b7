//! The scheduler's state in Postgres: the advisory lock that makes one scheduler active per database,
//! the latest completed date (where catch-up starts), the dates it held back with their causes, and the
//! migration state preflight reports.
//!
//! The lock is a session-level advisory lock (`session.rs`) held for the scheduler's lifetime: it is released
//! when the scheduler releases it or when its connection ends (a killed process, a restarted database), so a
//! dead scheduler never keeps the others passive.
//! This module decides nothing about which dates to run.

use chrono::{DateTime, NaiveDate, Utc};
use market::{DateRange, TradingDay};
use sqlx::Row;

use super::runs::{Store, StoreError, query_error};
use super::session::SessionLock;

/// The advisory lock key of "the active scheduler": the bytes of `mkt-schd`. Every scheduler on a
/// database uses it; workers' liveness keys (`queue.rs`) never take this value.
pub(super) const SCHEDULER_LOCK_KEY: i64 = i64::from_be_bytes(*b"mkt-schd");

/// The scheduler's lock is a session lock on [`SCHEDULER_LOCK_KEY`].
pub type SchedulerLock = SessionLock;

/// What the scheduler decided about a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledStatus {
    /// The last preflight failed: the date was not handed to the queue.
    NotRun,
    /// Handed to the queue, which says how it went.
    Enqueued,
}

/// A date as the scheduler recorded it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScheduledDate {
    pub day: TradingDay,
    pub status: ScheduledStatus,
    pub preflight_failures: i32,
    /// The failing checks of the last failed preflight (kept after a later success, for the record).
    pub cause: Option<String>,
    pub scheduler_id: String,
    pub updated_at: DateTime<Utc>,
}

/// Which migrations the database has, against those this binary knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MigrationState {
    /// Migrations recorded as applied successfully.
    pub applied: i64,
    /// Migrations embedded in this binary.
    pub known: usize,
    /// The latest applied version.
    pub latest: Option<i64>,
}

impl MigrationState {
    pub fn is_current(&self) -> bool {
        usize::try_from(self.applied).is_ok_and(|applied| applied == self.known)
    }
}

impl Store {
    /// Takes the scheduler lock without waiting. `None` when another session holds it.
    pub async fn try_scheduler_lock(&self) -> Result<Option<SchedulerLock>, StoreError> {
        self.try_session_lock(SCHEDULER_LOCK_KEY).await
    }

    /// The latest date known to be done: a completed queue job, or a succeeded run whose validation did
    /// not fail (what the queue counts as completed too, for runs made outside it).
    pub async fn latest_completed_day(&self) -> Result<Option<TradingDay>, StoreError> {
        let day: Option<NaiveDate> = sqlx::query_scalar(
            "SELECT max(day) FROM (
               SELECT day FROM backfill_jobs WHERE status = 'completed'
               UNION ALL
               SELECT day FROM pipeline_runs WHERE status = 'succeeded' AND validation IN ('pass', 'warn')
             ) AS done",
        )
        .fetch_one(self.pool())
        .await
        .map_err(query_error("latest completed day"))?;
        Ok(day.map(TradingDay::from_date))
    }

    /// Records that `day` was held back by a failed preflight, with its failing checks.
    pub async fn record_not_run(
        &self,
        day: TradingDay,
        scheduler_id: &str,
        cause: &str,
        checks: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schedule_dates (day, status, preflight_failures, cause, checks, scheduler_id)
             VALUES ($1, 'not_run', 1, $2, $3, $4)
             ON CONFLICT (day) DO UPDATE SET status = 'not_run',
               preflight_failures = schedule_dates.preflight_failures + 1, cause = EXCLUDED.cause,
               checks = EXCLUDED.checks, scheduler_id = EXCLUDED.scheduler_id, updated_at = now()",
        )
        .bind(day.date())
        .bind(cause)
        .bind(checks)
        .bind(scheduler_id)
        .execute(self.pool())
        .await
        .map_err(query_error("record a date not run"))?;
        Ok(())
    }

    /// Records that `day` passed its preflight and was handed to the queue.
    pub async fn record_enqueued(&self, day: TradingDay, scheduler_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schedule_dates (day, status, scheduler_id) VALUES ($1, 'enqueued', $2)
             ON CONFLICT (day) DO UPDATE SET status = 'enqueued', scheduler_id = EXCLUDED.scheduler_id,
               updated_at = now()",
        )
        .bind(day.date())
        .bind(scheduler_id)
        .execute(self.pool())
        .await
        .map_err(query_error("record an enqueued date"))?;
        Ok(())
    }

    /// The scheduler's record of the dates of `range`, oldest first.
    pub async fn scheduled_dates(&self, range: DateRange) -> Result<Vec<ScheduledDate>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, status, preflight_failures, cause, scheduler_id, updated_at FROM schedule_dates
             WHERE day BETWEEN $1 AND $2 ORDER BY day",
        )
        .bind(range.start().date())
        .bind(range.end().date())
        .fetch_all(self.pool())
        .await
        .map_err(query_error("list scheduled dates"))?;
        Ok(rows
            .iter()
            .map(|row| ScheduledDate {
                day: TradingDay::from_date(row.get::<NaiveDate, _>("day")),
                status: if row.get::<&str, _>("status") == "enqueued" {
                    ScheduledStatus::Enqueued
                } else {
                    ScheduledStatus::NotRun
                },
                preflight_failures: row.get("preflight_failures"),
                cause: row.get("cause"),
                scheduler_id: row.get("scheduler_id"),
                updated_at: row.get("updated_at"),
            })
            .collect())
    }

    /// The applied migrations (connecting applied any pending ones) against those this binary embeds.
    pub async fn migration_state(&self) -> Result<MigrationState, StoreError> {
        let row = sqlx::query("SELECT count(*) AS applied, max(version) AS latest FROM _sqlx_migrations WHERE success")
            .fetch_one(self.pool())
            .await
            .map_err(query_error("migration state"))?;
        Ok(MigrationState {
            applied: row.get("applied"),
            known: sqlx::migrate!("./migrations").iter().count(),
            latest: row.get("latest"),
        })
    }
}
