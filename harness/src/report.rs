//! The harness report: `report.json` (versioned, documented in the README) and a readable summary.
//!
//! The report is data first; the summary is rendered from it, so what a person reads and what a script
//! parses never disagree.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use fixtures::DayTruth;
use market::checks::{CheckOutcome, CompletenessRecord, Scores, Status, Thresholds, Validation};
use market::{Candle, TradingDay};
use pipeline::RunOutcome;
use serde::Serialize;

use crate::postgres::Backend;
use crate::scoring::{ExpectedCounts, SkippedCheck};

/// Bumped whenever a field changes meaning or disappears (additions keep the version).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct SymbolLine {
    pub exchange: String,
    pub symbol: String,
    pub expected_candles: u64,
    pub landed_candles: u64,
    pub generated_rows: u64,
    pub rows_before_day: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageLine {
    pub stage: String,
    pub succeeded: bool,
    pub duration_ms: i64,
    pub rows: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineSection {
    pub run_id: i64,
    pub status: String,
    pub error: Option<String>,
    pub stages: Vec<StageLine>,
    /// The pipeline's own validation (from the data alone), next to the harness's truth-based scores.
    pub own_validation: Option<Validation>,
}

/// The external command `harness run --pipeline-cmd` ran instead of the in-process pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalSection {
    /// The command as run through `sh -c`, with `{date}` replaced.
    pub command: String,
    /// Its exit status as a shell reports it: the exit code, or 128 + n when signal n ended it.
    pub exit_code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// It ran past `--pipeline-timeout` and was stopped.
    pub timed_out: bool,
    pub duration_ms: i64,
    /// Its last lines of output (stdout and stderr, interleaved as they arrived).
    pub output_tail: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub expected: ExpectedCounts,
    pub landed_candles: u64,
    pub landed_instruments: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub date: TradingDay,
    pub seed: u64,
    pub status: Status,
    pub scores: Scores,
    pub thresholds: Thresholds,
    pub counts: Counts,
    pub symbols: Vec<SymbolLine>,
    pub checks: Vec<CheckOutcome>,
    /// Per (exchange, symbol) completeness against the truth, with gap runs and hourly coverage.
    pub records: Vec<CompletenessRecord>,
    pub pipeline: Option<PipelineSection>,
    /// Set when an external command was scored (`--pipeline-cmd`); `pipeline` is then absent.
    pub external: Option<ExternalSection>,
    /// Checks not evaluated, with the reason (e.g. the run-record check for an external command).
    pub skipped_checks: Vec<SkippedCheck>,
    /// The deliberate defect the pipeline ran with, if any.
    pub defect: Option<String>,
    pub postgres: Backend,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
}

/// Inputs of a report.
pub struct ReportInput<'a> {
    pub day: TradingDay,
    pub seed: u64,
    pub truth: &'a DayTruth,
    pub landed: &'a [Candle],
    pub landed_instruments: u64,
    pub outcome: Option<&'a RunOutcome>,
    pub validation: Validation,
    pub postgres: Backend,
    pub started_at: DateTime<Utc>,
    pub defect: Option<pipeline::defects::Defect>,
}

impl Report {
    pub fn build(input: ReportInput<'_>) -> Report {
        let mut landed_per_pair: BTreeMap<(String, String), u64> = BTreeMap::new();
        for c in input.landed {
            *landed_per_pair.entry((c.exchange.to_string(), c.symbol.to_string())).or_default() += 1;
        }
        let symbols = input
            .truth
            .files
            .iter()
            .map(|f| SymbolLine {
                exchange: f.exchange.to_string(),
                symbol: f.symbol.to_string(),
                expected_candles: f.candles.len() as u64,
                landed_candles: landed_per_pair
                    .get(&(f.exchange.to_string(), f.symbol.to_string()))
                    .copied()
                    .unwrap_or(0),
                generated_rows: f.rows,
                rows_before_day: f.rows_before_day,
            })
            .collect();
        let pipeline = input.outcome.map(|o| PipelineSection {
            run_id: o.run_id,
            status: o.status.as_str().to_owned(),
            error: o.error.clone(),
            stages: o
                .stages
                .iter()
                .map(|s| StageLine {
                    stage: s.stage.to_owned(),
                    succeeded: s.succeeded,
                    duration_ms: s.duration_ms(),
                    rows: s.rows,
                    error: s.error.clone(),
                })
                .collect(),
            own_validation: o.validation.clone(),
        });
        Report {
            schema_version: SCHEMA_VERSION,
            date: input.day,
            seed: input.seed,
            status: input.validation.status,
            scores: input.validation.scores,
            thresholds: input.validation.thresholds,
            counts: Counts {
                expected: ExpectedCounts::of(input.truth),
                landed_candles: input.landed.len() as u64,
                landed_instruments: input.landed_instruments,
            },
            symbols,
            checks: input.validation.checks,
            records: input.validation.records,
            pipeline,
            external: None,
            skipped_checks: crate::scoring::skipped_checks(input.outcome),
            defect: input.defect.map(|d| d.name().to_owned()),
            postgres: input.postgres,
            started_at: input.started_at,
            duration_ms: (Utc::now() - input.started_at).num_milliseconds(),
        }
    }

    /// The same content in the pipeline's report shape, for Markdown and HTML.
    pub fn rendered(&self) -> pipeline::report::Report {
        let validation = Validation {
            checks: self.checks.clone(),
            scores: self.scores,
            thresholds: self.thresholds,
            status: self.status,
            records: self.records.clone(),
            baselines: Vec::new(),
            metrics: Vec::new(),
        };
        let mut rendered = pipeline::report::Report::new("harness", self.date, &validation);
        rendered.generated_at = self.started_at;
        if let Some(p) = &self.pipeline {
            rendered.run_id = Some(p.run_id);
            rendered.stages = p
                .stages
                .iter()
                .map(|s| pipeline::report::StageTiming {
                    stage: s.stage.clone(),
                    succeeded: s.succeeded,
                    duration_ms: s.duration_ms,
                })
                .collect();
        }
        if let Some(e) = &self.external {
            rendered.stages = vec![pipeline::report::StageTiming {
                stage: "external command".to_owned(),
                succeeded: e.exit_code == 0,
                duration_ms: e.duration_ms,
            }];
        }
        rendered.extra = serde_json::json!({
            "seed": self.seed,
            "counts": self.counts,
            "defect": self.defect,
            "external": self.external,
            "skipped_checks": self.skipped_checks,
        });
        rendered
    }

    /// The text printed at the end of `harness run`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "harness run {} (seed {}, Postgres: {:?})", self.date, self.seed, self.postgres);
        if let Some(p) = &self.pipeline {
            let _ = writeln!(out, "pipeline run {}: {}", p.run_id, p.status);
            for s in &p.stages {
                let mark = if s.succeeded { "✓" } else { "✗" };
                let rows = s.rows.map_or_else(String::new, |n| format!("{n:>9} rows"));
                let _ = writeln!(out, "  {mark} {:<12}{:>8} ms  {rows}", s.stage, s.duration_ms);
                if let Some(error) = &s.error {
                    let _ = writeln!(out, "      {error}");
                }
            }
        }
        if let Some(e) = &self.external {
            let how = match (e.timed_out, e.signal) {
                (true, _) => format!("timed out after {} ms, stopped (status {})", e.duration_ms, e.exit_code),
                (false, Some(signal)) => format!("killed by signal {signal} (status {})", e.exit_code),
                (false, None) => format!("exited with status {}", e.exit_code),
            };
            let mark = if e.exit_code == 0 { "✓" } else { "✗" };
            let _ = writeln!(out, "external command: {}", e.command);
            let _ = writeln!(out, "  {mark} {how} in {} ms", e.duration_ms);
            if e.exit_code != 0 {
                for line in e.output_tail.iter().rev().take(5).rev() {
                    let _ = writeln!(out, "      | {line}");
                }
            }
        }
        let _ = writeln!(out, "  {:<18} {:<20} {:>9} {:>9} {:>9}", "exchange", "symbol", "expected", "landed", "rows");
        for s in &self.symbols {
            let mark = if s.expected_candles == s.landed_candles { " " } else { "!" };
            let _ = writeln!(
                out,
                "{mark} {:<18} {:<20} {:>9} {:>9} {:>9}",
                s.exchange, s.symbol, s.expected_candles, s.landed_candles, s.generated_rows
            );
        }
        let e = &self.counts.expected;
        let _ = writeln!(
            out,
            "  trades in the day {}, rows before the day {}, candles expected {} landed {}, instruments {}",
            e.trades_in_day, e.rows_before_day, e.candles, self.counts.landed_candles, self.counts.landed_instruments
        );
        let t = &self.thresholds;
        let _ = writeln!(
            out,
            "  scores: completeness {:.4} (fail < {}), quality {:.4} (fail < {}), consistency {:.4} (fail < {})",
            self.scores.completeness,
            t.completeness.fail_below,
            self.scores.quality,
            t.quality.fail_below,
            self.scores.consistency,
            t.consistency.fail_below
        );
        for check in self.checks.iter().filter(|c| c.failed > 0) {
            let _ =
                writeln!(out, "  ✗ {} {}/{} failed: {}", check.id, check.failed, check.evaluated, check.description);
            for sample in check.samples.iter().take(5) {
                let at = sample
                    .open_time_us
                    .and_then(DateTime::<Utc>::from_timestamp_micros)
                    .map(|t| t.format(" %H:%M").to_string())
                    .unwrap_or_default();
                let who = match (&sample.exchange, &sample.symbol) {
                    (Some(e), Some(s)) => format!("{e} {s}{at}: "),
                    _ => String::new(),
                };
                let _ = writeln!(out, "      {who}{}", sample.detail);
            }
        }
        for skipped in &self.skipped_checks {
            let _ = writeln!(out, "  - {} skipped: {}", skipped.id, skipped.reason);
        }
        let _ = writeln!(out, "status: {}", self.status.as_str().to_uppercase());
        out
    }
}
