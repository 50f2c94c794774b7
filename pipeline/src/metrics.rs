//! The pipeline's Prometheus metrics: what its runs did, in the Prometheus text format (0.0.4), for a scrape
//! (`--metrics-listen` of the long-running commands), the node exporter's textfile collector (`--metrics-file`)
//! or a Pushgateway (`--metrics-push`); the `cli` layer does the serving, writing and pushing.
//!
//! Every figure comes from what the library already returns: a finished [`RunOutcome`] (a [`Metrics`] is a
//! [`RunObserver`], which a `Pipeline` tells of every run that ends) and the backfill queue's counts, read when
//! the metrics are encoded. Names follow Prometheus' conventions: a `pipeline_` prefix, base units in the name (`_seconds`),
//! `_total` on counters.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::run::{RunObserver, RunOutcome};
use crate::store::QueueStats;

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Stage durations from a few milliseconds (candles merged) to hours (a day of every symbol downloaded).
const DURATION_BUCKETS: [f64; 14] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DimensionLabels {
    dimension: String,
}

/// The metrics of one process, cheap to clone (every clone updates the same values).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    runs: Family<StatusLabels, Counter>,
    stage_duration: Family<StageLabels, Histogram, fn() -> Histogram>,
    stage_failures: Family<StageLabels, Counter>,
    rows: Family<StageLabels, Counter>,
    validation_score: Family<DimensionLabels, Gauge<f64, AtomicU64>>,
    last_success: Gauge<f64, AtomicU64>,
    last_run_date: Gauge<f64, AtomicU64>,
    tardis_retries: Counter,
    backfill_jobs: Family<StatusLabels, Gauge>,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pipeline");
        let runs = Family::<StatusLabels, Counter>::default();
        registry.register("runs", "Runs of a date that ended, by status (succeeded, failed)", runs.clone());
        let stage_duration =
            Family::<StageLabels, Histogram, fn() -> Histogram>::new_with_constructor(duration_histogram);
        registry.register(
            "stage_duration_seconds",
            "How long each stage of a run took (instruments, download, candles, upload, validation)",
            stage_duration.clone(),
        );
        let stage_failures = Family::<StageLabels, Counter>::default();
        registry.register("stage_failures", "Stages that failed, by stage", stage_failures.clone());
        let rows = Family::<StageLabels, Counter>::default();
        registry.register(
            "rows",
            "Rows each stage handled (download: trade rows read; candles: candles built; upload: rows loaded)",
            rows.clone(),
        );
        let validation_score = Family::<DimensionLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "validation_score",
            "Scores of the latest validated run, 0 to 1, by dimension (completeness, quality, consistency)",
            validation_score.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "When a run last succeeded, in seconds since the Unix epoch (0: not since this process started)",
            last_success.clone(),
        );
        let last_run_date = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_run_date_timestamp_seconds",
            "The date the latest finished run processed, as the Unix time of its 00:00 UTC",
            last_run_date.clone(),
        );
        let tardis_retries = Counter::default();
        registry.register(
            "tardis_retries",
            "Tardis trades-file requests made again (a transient error, a truncated or corrupt body)",
            tardis_retries.clone(),
        );
        let backfill_jobs = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "backfill_jobs",
            "Dates in the backfill queue, by status (pending, processing, retry, completed, failed)",
            backfill_jobs.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            runs,
            stage_duration,
            stage_failures,
            rows,
            validation_score,
            last_success,
            last_run_date,
            tardis_retries,
            backfill_jobs,
        }
    }

    /// Counts a finished run: its status, each stage's duration and rows, its validation scores, its retries.
    pub fn record_run(&self, outcome: &RunOutcome) {
        let status = outcome.status.as_str().to_owned();
        self.runs.get_or_create(&StatusLabels { status }).inc();
        for stage in &outcome.stages {
            let labels = StageLabels { stage: stage.stage.to_owned() };
            let seconds = (stage.finished_at - stage.started_at).as_seconds_f64().max(0.0);
            self.stage_duration.get_or_create(&labels).observe(seconds);
            if let Some(rows) = stage.rows {
                self.rows.get_or_create(&labels).inc_by(rows);
            }
            if !stage.succeeded {
                self.stage_failures.get_or_create(&labels).inc();
            }
            if stage.stage == "download"
                && let Some(retries) = stage.detail.get("retries").and_then(serde_json::Value::as_u64)
            {
                self.tardis_retries.inc_by(retries);
            }
        }
        if let Some(validation) = &outcome.validation {
            for (dimension, score) in [
                ("completeness", validation.scores.completeness),
                ("quality", validation.scores.quality),
                ("consistency", validation.scores.consistency),
            ] {
                self.validation_score.get_or_create(&DimensionLabels { dimension: dimension.to_owned() }).set(score);
            }
        }
        if outcome.status == crate::store::RunStatus::Succeeded
            && let Some(finished) = outcome.stages.iter().map(|s| s.finished_at).max()
        {
            self.last_success.set(finished.timestamp_millis() as f64 / 1000.0);
        }
        self.last_run_date.set(outcome.day.start_us() as f64 / 1e6);
    }

    /// Sets the backfill queue's gauges from its counts.
    pub fn set_queue(&self, stats: &QueueStats) {
        for (status, n) in stats.dates.by_status() {
            self.backfill_jobs.get_or_create(&StatusLabels { status: status.as_str().to_owned() }).set(n);
        }
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl RunObserver for Metrics {
    fn run_finished(&self, outcome: &RunOutcome) {
        self.record_run(outcome);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta};
    use market::TradingDay;

    use super::*;
    use crate::store::{RunCounts, RunStatus, StageRecord};

    fn stage(name: &'static str, ms: i64, rows: Option<u64>, succeeded: bool) -> StageRecord {
        let started_at = DateTime::from_timestamp(1_717_405_200, 0).expect("a time");
        StageRecord {
            stage: name,
            succeeded,
            started_at,
            finished_at: started_at + TimeDelta::milliseconds(ms),
            rows,
            detail: if name == "download" { serde_json::json!({"retries": 3}) } else { serde_json::json!({}) },
            error: None,
        }
    }

    fn outcome(status: RunStatus, stages: Vec<StageRecord>) -> RunOutcome {
        RunOutcome {
            run_id: 1,
            run_key: "k".to_owned(),
            day: TradingDay::parse("2024-06-02").expect("valid"),
            status,
            error: None,
            auth_failure: false,
            stages,
            counts: RunCounts::default(),
            rows_before_day: 0,
            rows_after_day: 0,
            validation: None,
        }
    }

    #[test]
    fn runs_become_prometheus_series_with_conventional_names() {
        let metrics = Metrics::new();
        metrics.record_run(&outcome(
            RunStatus::Succeeded,
            vec![stage("download", 1_500, Some(1000), true), stage("candles", 5, Some(60), true)],
        ));
        metrics.record_run(&outcome(RunStatus::Failed, vec![stage("download", 20_000, None, false)]));
        let text = metrics.encode();
        for line in [
            "# TYPE pipeline_runs_total counter",
            "pipeline_runs_total{status=\"succeeded\"} 1",
            "pipeline_runs_total{status=\"failed\"} 1",
            "# TYPE pipeline_stage_duration_seconds histogram",
            "pipeline_stage_duration_seconds_bucket{stage=\"download\",le=\"1\"} 0",
            "pipeline_stage_duration_seconds_bucket{stage=\"download\",le=\"2.5\"} 1",
            "pipeline_stage_duration_seconds_bucket{stage=\"download\",le=\"30\"} 2",
            "pipeline_stage_duration_seconds_bucket{stage=\"download\",le=\"+Inf\"} 2",
            "pipeline_stage_duration_seconds_sum{stage=\"download\"} 21.5",
            "pipeline_stage_duration_seconds_count{stage=\"candles\"} 1",
            "pipeline_rows_total{stage=\"download\"} 1000",
            "pipeline_stage_failures_total{stage=\"download\"} 1",
            "pipeline_tardis_retries_total 6",
            "pipeline_last_run_date_timestamp_seconds 1717286400.0",
            "pipeline_last_success_timestamp_seconds 1717405201.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
        }
        assert!(!text.contains("pipeline_validation_score{"), "no validation, no score:\n{text}");
    }
}
