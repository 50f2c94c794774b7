//! Run records: one row per attempt at a date, its stages, counts, scores and final status.

use crate::retry::{Attempt, GaveUp, RetryPolicy, retry};
use chrono::{DateTime, Utc};
use market::TradingDay;
use market::checks::{Scores, Status};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to connect to Postgres: {0}; check DATABASE_URL")]
    Connect(#[source] sqlx::Error),
    #[error("failed to migrate the database: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database query failed ({operation}): {source}")]
    Query {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

pub(super) fn query_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { operation, source }
}

/// How a run's records ride out a database that is gone for a moment (a restart, a failover, its connections
/// terminated): about 6 s of retries in all.
const RECONNECT: RetryPolicy = RetryPolicy {
    max_attempts: 6,
    base_delay: std::time::Duration::from_millis(200),
    max_delay: std::time::Duration::from_secs(2),
    max_retry_after: std::time::Duration::from_secs(2),
};

/// A failure of the connection rather than of the statement: the connection was lost or terminated, the server
/// is shutting down, starting up or not accepting connections to the database.
fn connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or_default();
            code.starts_with("08")
                || matches!(code, "57P01" | "57P02" | "57P03")
                || (code == "55000" && db.message().contains("not currently accepting connections"))
        }
        _ => false,
    }
}

/// Runs an idempotent statement, again when the connection was lost (the workspace's one retry mechanism).
pub(super) async fn idempotent<T, F, Fut>(operation: &'static str, mut statement: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let outcome = retry(&RECONNECT, operation, |_| {
        let running = statement();
        async move {
            match running.await {
                Ok(value) => Ok(value),
                Err(err) if connection_lost(&err) => Err(Attempt::retry(format!("database connection lost: {err}"))),
                Err(err) => Err(Attempt::Final(err)),
            }
        }
    })
    .await;
    outcome.map_err(|gave_up| {
        let last = match gave_up {
            GaveUp::Final(source) => return StoreError::Query { operation, source },
            GaveUp::Exhausted { attempts, last } => format!("gave up after {attempts} attempts: {last}"),
            GaveUp::WaitTooLong { reason, .. } => reason,
        };
        StoreError::Query { operation, source: sqlx::Error::Io(std::io::Error::other(last)) }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> RunStatus {
        match text {
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            _ => RunStatus::Running,
        }
    }
}

/// What one stage did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StageRecord {
    pub stage: &'static str,
    pub succeeded: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub rows: Option<u64>,
    pub detail: serde_json::Value,
    pub error: Option<String>,
}

impl StageRecord {
    pub fn duration_ms(&self) -> i64 {
        (self.finished_at - self.started_at).num_milliseconds()
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub run_key: String,
    pub day: TradingDay,
    pub status: RunStatus,
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub trades: Option<i64>,
    pub candles: Option<i64>,
    pub scores: Option<Scores>,
    pub validation: Option<String>,
    pub stages: Vec<(String, String, i64)>,
}

/// Totals of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RunCounts {
    pub files: u32,
    pub trades: u64,
    pub candles: u64,
    pub instruments: u32,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

pub(super) fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(database_url: &str) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(15))
            .connect(database_url)
            .await
            .map_err(StoreError::Connect)?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(Store { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One round trip to the database (a readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(query_error("ping"))
    }

    /// Records the start of a run and returns its id.
    pub async fn start_run(&self, day: TradingDay, run_key: &str, trigger: &str) -> Result<i64, StoreError> {
        idempotent("start run", || {
            sqlx::query_scalar(
                "INSERT INTO pipeline_runs (run_key, day, status, trigger) VALUES ($1, $2, 'running', $3) RETURNING id",
            )
            .bind(run_key)
            .bind(day.date())
            .bind(trigger)
            .fetch_one(&self.pool)
        })
        .await
    }

    pub async fn record_stage(&self, run_id: i64, stage: &StageRecord) -> Result<(), StoreError> {
        idempotent("record stage", || {
            sqlx::query(
            "INSERT INTO stage_runs (run_id, stage, status, started_at, finished_at, duration_ms, rows, detail, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (run_id, stage) DO UPDATE SET status = EXCLUDED.status, started_at = EXCLUDED.started_at,
               finished_at = EXCLUDED.finished_at, duration_ms = EXCLUDED.duration_ms, rows = EXCLUDED.rows,
               detail = EXCLUDED.detail, error = EXCLUDED.error",
        )
        .bind(run_id)
        .bind(stage.stage)
        .bind(if stage.succeeded { "succeeded" } else { "failed" })
        .bind(stage.started_at)
        .bind(stage.finished_at)
        .bind(stage.duration_ms())
        .bind(stage.rows.map(as_i64))
        .bind(&stage.detail)
        .bind(&stage.error)
        .execute(&self.pool)
        })
        .await?;
        Ok(())
    }

    /// Records a run's counts as soon as they are known (validation compares them with BigQuery).
    pub async fn record_counts(&self, run_id: i64, counts: RunCounts) -> Result<(), StoreError> {
        idempotent("record counts", || {
            sqlx::query(
                "UPDATE pipeline_runs SET files = $2, trades = $3, candles = $4, instruments = $5 WHERE id = $1",
            )
            .bind(run_id)
            .bind(i32::try_from(counts.files).unwrap_or(i32::MAX))
            .bind(as_i64(counts.trades))
            .bind(as_i64(counts.candles))
            .bind(i32::try_from(counts.instruments).unwrap_or(i32::MAX))
            .execute(&self.pool)
        })
        .await?;
        Ok(())
    }

    /// The counts recorded for a run.
    pub async fn run_counts(&self, run_id: i64) -> Result<Option<RunCounts>, StoreError> {
        let row = idempotent("run counts", || {
            sqlx::query("SELECT files, trades, candles, instruments FROM pipeline_runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(&self.pool)
        })
        .await?;
        Ok(row.map(|r| RunCounts {
            files: r.get::<Option<i32>, _>("files").and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            trades: r.get::<Option<i64>, _>("trades").and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            candles: r.get::<Option<i64>, _>("candles").and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            instruments: r.get::<Option<i32>, _>("instruments").and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        }))
    }

    /// The id of the latest succeeded run of `day`.
    pub async fn latest_succeeded_run(&self, day: TradingDay) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar("SELECT id FROM pipeline_runs WHERE day = $1 AND status = 'succeeded' ORDER BY started_at DESC, id DESC LIMIT 1")
            .bind(day.date())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("latest run"))
    }

    /// Records the end of a run.
    pub async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
        counts: RunCounts,
        validation: Option<(&Scores, Status)>,
        report: &serde_json::Value,
    ) -> Result<(), StoreError> {
        idempotent("finish run", || sqlx::query(
            "UPDATE pipeline_runs SET status = $2, finished_at = now(), error = $3, files = $4, trades = $5, candles = $6,
               instruments = $7, completeness = $8, quality = $9, consistency = $10, validation = $11, report = $12
             WHERE id = $1",
        )
        .bind(run_id)
        .bind(status.as_str())
        .bind(error)
        .bind(i32::try_from(counts.files).unwrap_or(i32::MAX))
        .bind(as_i64(counts.trades))
        .bind(as_i64(counts.candles))
        .bind(i32::try_from(counts.instruments).unwrap_or(i32::MAX))
        .bind(validation.map(|v| v.0.completeness))
        .bind(validation.map(|v| v.0.quality))
        .bind(validation.map(|v| v.0.consistency))
        .bind(validation.map(|v| v.1.as_str()))
        .bind(report)
        .execute(&self.pool))
        .await?;
        Ok(())
    }

    /// Runs of `day`, newest first, with their stages.
    /// Marks `failed`, with `error`, the runs of `day` by `trigger` started since `since` and still `running`:
    /// the record of a run this process abandoned (a cancel, a signal), which would otherwise say running
    /// forever. Returns how many.
    pub async fn fail_abandoned_runs(
        &self,
        day: TradingDay,
        trigger: &str,
        since: DateTime<Utc>,
        error: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE pipeline_runs SET status = 'failed', finished_at = now(), error = $4
             WHERE day = $1 AND trigger = $2 AND status = 'running' AND started_at >= $3",
        )
        .bind(day.date())
        .bind(trigger)
        .bind(since)
        .bind(error)
        .execute(self.pool())
        .await
        .map_err(query_error("fail abandoned runs"))?;
        Ok(done.rows_affected())
    }

    pub async fn runs_of_day(&self, day: TradingDay) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, run_key, status, trigger, started_at, finished_at, error, trades, candles,
                    completeness, quality, consistency, validation
             FROM pipeline_runs WHERE day = $1 ORDER BY started_at DESC, id DESC",
        )
        .bind(day.date())
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list runs"))?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.get("id");
            let stages = sqlx::query(
                "SELECT stage, status, duration_ms FROM stage_runs WHERE run_id = $1 ORDER BY started_at, stage",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("list stages"))?
            .into_iter()
            .map(|s| (s.get::<String, _>("stage"), s.get::<String, _>("status"), s.get::<i64, _>("duration_ms")))
            .collect();
            let scores = match (
                row.get::<Option<f64>, _>("completeness"),
                row.get::<Option<f64>, _>("quality"),
                row.get::<Option<f64>, _>("consistency"),
            ) {
                (Some(completeness), Some(quality), Some(consistency)) => {
                    Some(Scores { completeness, quality, consistency })
                }
                _ => None,
            };
            runs.push(RunRecord {
                id,
                run_key: row.get("run_key"),
                day,
                status: RunStatus::parse(row.get::<&str, _>("status")),
                trigger: row.get("trigger"),
                started_at: row.get("started_at"),
                finished_at: row.get("finished_at"),
                error: row.get("error"),
                trades: row.get("trades"),
                candles: row.get("candles"),
                scores,
                validation: row.get("validation"),
                stages,
            });
        }
        Ok(runs)
    }
}
