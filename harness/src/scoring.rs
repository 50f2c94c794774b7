//! Scoring what landed in the fake BigQuery against the generator's ground truth.
//!
//! The pipeline's own validation works from the data alone, as it must in production; this module
//! knows exactly which trades were generated, so it can tell a pipeline that lost, duplicated, shifted
//! or miscomputed data from a correct one. Checks are the pure ones of `market::checks`, fed with truth.

use std::collections::BTreeSet;

use fixtures::DayTruth;
use market::Candle;
use market::checks::{self, CheckOutcome, Family, Sample, Threshold, Thresholds, Validation, ValidationConfig};
use pipeline::RunOutcome;
use pipeline::bigquery::schema::{INSTRUMENTS, TableDef};
use pipeline::report::SkippedCheck;
use serde_json::Value;

use crate::contract::{self, Row};

/// Ids of the checks that need ground truth (the others are in `market::checks::ids`).
pub mod ids {
    pub const SYMBOLS_LANDED: &str = "completeness.symbols_landed";
    pub const CANDLES_EQUAL_TRUTH: &str = "consistency.candles_equal_truth";
    pub const RUN_RECORD_COUNTS: &str = "consistency.run_record_counts";
    pub use crate::contract::ids::{INSTRUMENTS_EQUAL_TRUTH, ROWS_IN_THEIR_DATE, TABLES_MATCH_CONTRACT};
    /// Advisory: how an external command ended (`harness run --pipeline-cmd`).
    pub const COMMAND_EXIT_STATUS: &str = "consistency.command_exit_status";
}

/// Rows of the run record that must equal the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpectedCounts {
    pub files: u64,
    pub trades_in_day: u64,
    pub rows_before_day: u64,
    pub rows_after_day: u64,
    pub candles: u64,
}

impl ExpectedCounts {
    pub fn of(truth: &DayTruth) -> ExpectedCounts {
        ExpectedCounts {
            files: truth.files.len() as u64,
            trades_in_day: truth.files.iter().map(|f| f.rows - f.rows_before_day - f.rows_after_day).sum(),
            rows_before_day: truth.files.iter().map(|f| f.rows_before_day).sum(),
            rows_after_day: truth.files.iter().map(|f| f.rows_after_day).sum(),
            candles: truth.candles().count() as u64,
        }
    }
}

/// Consistency: the pipeline's run record counts what was generated.
fn run_record_counts(expected: &ExpectedCounts, outcome: Option<&RunOutcome>) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::RUN_RECORD_COUNTS,
        Family::Consistency,
        "files, trades, candles and boundary rows in the run record equal the generated truth",
        Threshold::ZERO_TOLERANCE,
    );
    let Some(outcome) = outcome else {
        return out;
    };
    let pairs = [
        ("files", expected.files, u64::from(outcome.counts.files)),
        ("trades in the day", expected.trades_in_day, outcome.counts.trades),
        ("candles", expected.candles, outcome.counts.candles),
        ("rows before the day", expected.rows_before_day, outcome.rows_before_day),
        ("rows after the day", expected.rows_after_day, outcome.rows_after_day),
    ];
    for (name, want, got) in pairs {
        out.evaluated += 1;
        if want != got {
            out.failed += 1;
            out.samples.push(Sample {
                exchange: None,
                symbol: None,
                open_time_us: None,
                detail: format!("{name}: recorded {got}, generated {want}"),
            });
        }
    }
    out
}

/// Checks that need the in-process pipeline's run record. An external pipeline (`harness run --pipeline-cmd`)
/// has none the harness can read (its records, if it keeps any, are its own), so these are skipped rather than
/// counted as passed: what it wrote is still judged in full by every check on the landed tables.
pub fn skipped_checks(outcome: Option<&RunOutcome>) -> Vec<SkippedCheck> {
    match outcome {
        Some(_) => Vec::new(),
        None => vec![SkippedCheck {
            id: ids::RUN_RECORD_COUNTS.to_owned(),
            reason: "no run record: the pipeline ran as an external command".to_owned(),
        }],
    }
}

/// What landed for the date besides candles, and what the truth expects of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LandedTables<'a> {
    /// The date's instruments partition.
    pub instruments: &'a [Row],
    /// The rows the table contract makes of the instruments the mock Tardis lists.
    pub expected_instruments: &'a [Row],
    /// Each table's definition with its `tables.get` resource (`None`: the table is missing).
    pub layouts: &'a [(TableDef, Option<Value>)],
    /// Rows found in partitions of other dates than the one run.
    pub elsewhere: &'a [contract::RowsElsewhere],
}

/// Every check of a harness run.
pub fn score(
    truth: &DayTruth,
    landed: &[Candle],
    tables: &LandedTables<'_>,
    outcome: Option<&RunOutcome>,
    thresholds: Thresholds,
) -> Validation {
    let expected: Vec<Candle> = truth.candles().cloned().collect();
    let expected_pairs: Vec<_> =
        truth.files.iter().filter(|f| !f.candles.is_empty()).map(|f| (f.exchange.clone(), f.symbol.clone())).collect();
    let landed_pairs: BTreeSet<_> = landed.iter().map(|c| (c.exchange.clone(), c.symbol.clone())).collect();

    let mut files = checks::file_coverage(&expected_pairs, &landed_pairs);
    files.id = ids::SYMBOLS_LANDED.to_owned();
    files.description = "every generated exchange/symbol with trades in the day has candles in BigQuery".to_owned();
    let mut matches = checks::candles_match(&expected, landed, 1e-9);
    matches.id = ids::CANDLES_EQUAL_TRUTH.to_owned();
    matches.description =
        "landed candles equal the generator's candles (OHLC exact, sums within 1e-9 relative)".to_owned();
    let mut outcomes =
        vec![files, checks::candle_coverage(&expected, landed), checks::ohlc_invariants(landed), matches];
    // Without a run record the check would pass vacuously; it is listed as skipped instead (`skipped_checks`).
    if outcome.is_some() {
        outcomes.push(run_record_counts(&ExpectedCounts::of(truth), outcome));
    }
    outcomes.push(contract::instruments_equal_truth(&INSTRUMENTS, tables.expected_instruments, tables.instruments));
    outcomes.push(contract::tables_match_contract(tables.layouts));
    outcomes.push(contract::rows_in_their_date(truth.day, landed, tables.instruments, tables.elsewhere));
    let mut validation =
        Validation::evaluate(outcomes, &ValidationConfig { thresholds, ..ValidationConfig::default() });
    validation.records = checks::completeness_records(&expected, landed);
    validation
}
