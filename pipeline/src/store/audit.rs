//! The backfill audit log: who asked for which range with which options, and what came of it.

use market::DateRange;

use super::runs::{Store, StoreError, query_error};

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

    pub async fn finish_backfill(&self, id: i64, status: &str, totals: BackfillTotals) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE backfill_audit SET finished_at = now(), status = $2, succeeded = $3, failed = $4, skipped = $5,
               rows_written = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(i32::try_from(totals.succeeded).unwrap_or(i32::MAX))
        .bind(i32::try_from(totals.failed).unwrap_or(i32::MAX))
        .bind(i32::try_from(totals.skipped).unwrap_or(i32::MAX))
        .bind(i64::try_from(totals.rows).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await
        .map_err(query_error("finish backfill audit"))?;
        Ok(())
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
