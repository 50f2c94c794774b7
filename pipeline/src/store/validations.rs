//! Validation history: every validation of a date with its checks, and the per-symbol metrics that
//! later dates' anomaly checks use as their trailing window.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use market::checks::{Scores, Validation};
use market::{Exchange, Symbol, TradingDay};
use sqlx::Row;

use super::runs::{Store, StoreError, as_i64, idempotent, query_error};

/// One stored validation, for trends.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScorePoint {
    pub day: TradingDay,
    pub status: String,
    pub scores: Scores,
    pub validated_at: DateTime<Utc>,
}

impl Store {
    /// Stores a validation, its checks and its metrics (the metrics of a date are replaced).
    pub async fn record_validation(
        &self,
        day: TradingDay,
        run_id: Option<i64>,
        trigger: &str,
        validation: &Validation,
    ) -> Result<i64, StoreError> {
        // One transaction: when the connection is lost, nothing of it stands and it is run again whole.
        idempotent("record validation", || self.insert_validation(day, run_id, trigger, validation)).await
    }

    async fn insert_validation(
        &self,
        day: TradingDay,
        run_id: Option<i64>,
        trigger: &str,
        validation: &Validation,
    ) -> Result<i64, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let report = serde_json::to_value(validation).unwrap_or_default();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO validations (day, run_id, trigger, status, completeness, quality, consistency, report)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(day.date())
        .bind(run_id)
        .bind(trigger)
        .bind(validation.status.as_str())
        .bind(validation.scores.completeness)
        .bind(validation.scores.quality)
        .bind(validation.scores.consistency)
        .bind(report)
        .fetch_one(&mut *tx)
        .await?;
        for check in &validation.checks {
            sqlx::query(
                "INSERT INTO validation_checks (validation_id, check_id, family, evaluated, failed, pass_ratio, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(&check.id)
            .bind(check.family.as_str())
            .bind(as_i64(check.evaluated))
            .bind(as_i64(check.failed))
            .bind(check.pass_ratio())
            .bind(check.status.as_str())
            .execute(&mut *tx)
            .await?;
        }
        let records = validation.records.iter().flat_map(|r| {
            [
                ("expected_count", r.expected_count),
                ("actual_count", r.actual_count),
                ("missing_count", r.missing_count),
                ("extra_count", r.extra_count),
            ]
            .map(|(metric, value)| (r.exchange.as_str(), r.symbol.as_str(), metric, value as f64))
        });
        let metrics =
            validation.metrics.iter().map(|m| (m.exchange.as_str(), m.symbol.as_str(), m.metric.as_str(), m.value));
        for (exchange, symbol, metric, value) in metrics.chain(records) {
            sqlx::query(
                "INSERT INTO validation_metrics (day, exchange, symbol, metric, value, validation_id)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (day, exchange, symbol, metric) DO UPDATE SET value = EXCLUDED.value, validation_id = EXCLUDED.validation_id",
            )
            .bind(day.date())
            .bind(exchange)
            .bind(symbol)
            .bind(metric)
            .bind(value)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Values of every metric over the `window_days` dates before `day`, oldest first.
    pub async fn metric_history(
        &self,
        day: TradingDay,
        window_days: u32,
    ) -> Result<BTreeMap<(String, Exchange, Symbol), Vec<f64>>, StoreError> {
        let from = day.date() - chrono::Days::new(u64::from(window_days));
        let rows = idempotent("metric history", || {
            sqlx::query(
                "SELECT exchange, symbol, metric, value FROM validation_metrics
                 WHERE day >= $1 AND day < $2 ORDER BY day",
            )
            .bind(from)
            .bind(day.date())
            .fetch_all(self.pool())
        })
        .await?;
        let mut history: BTreeMap<(String, Exchange, Symbol), Vec<f64>> = BTreeMap::new();
        for row in rows {
            let (Ok(exchange), Ok(symbol)) =
                (Exchange::parse(row.get::<&str, _>("exchange")), Symbol::parse(row.get::<&str, _>("symbol")))
            else {
                continue;
            };
            history.entry((row.get("metric"), exchange, symbol)).or_default().push(row.get("value"));
        }
        Ok(history)
    }

    /// The latest validation of each date in `[from, to]`, oldest first.
    pub async fn score_history(&self, from: TradingDay, to: TradingDay) -> Result<Vec<ScorePoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (day) day, status, completeness, quality, consistency, validated_at
             FROM validations WHERE day BETWEEN $1 AND $2 ORDER BY day, validated_at DESC, id DESC",
        )
        .bind(from.date())
        .bind(to.date())
        .fetch_all(self.pool())
        .await
        .map_err(query_error("score history"))?;
        Ok(rows
            .into_iter()
            .map(|row| ScorePoint {
                day: TradingDay::from_date(row.get::<NaiveDate, _>("day")),
                status: row.get("status"),
                scores: Scores {
                    completeness: row.get("completeness"),
                    quality: row.get("quality"),
                    consistency: row.get("consistency"),
                },
                validated_at: row.get("validated_at"),
            })
            .collect())
    }
}
