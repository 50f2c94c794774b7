//! Validation checks over typed data, and the scores derived from them.
//!
//! Every check is a pure function that returns a [`CheckOutcome`]: how many elements it evaluated,
//! how many failed, and up to [`MAX_SAMPLES`] failing rows. Checks never return errors: bad data is a
//! finding, not a failure of the check. The same checks serve the pipeline's own validation stage
//! (expected values recomputed from the downloaded trades) and the harness (expected values from the
//! generator's ground truth).
//!
//! Each check has its own threshold on its pass ratio (`1 − failed / evaluated`; a check that evaluated
//! nothing passes): integrity checks (a duplicated or wrong candle, a broken OHLC invariant) tolerate no
//! failure at all, statistical ones a small share. Score of a family = the mean of its checks' pass
//! ratios (advisory checks, which can only warn, excluded), judged against the family threshold. Overall status = the worst of every check's status and
//! every family's status.

mod anomaly;
mod completeness;
mod config;
mod consistency;
mod day;
pub mod ids;
mod outcome;
mod quality;
mod validation;

pub use anomaly::{AnomalyRule, Baseline, Metric, TRACKED, anomalies, day_metrics};
pub use completeness::{
    CompletenessRecord, GapRun, HourCoverage, candle_coverage, completeness_records, configured_symbols_listed,
    file_coverage, rows_inside_date,
};
pub use config::ValidationConfig;
pub use consistency::{
    CountViews, candle_difference, candles_have_instruments, candles_match, counts_agree, cross_exchange_divergence,
    rollups_match,
};
pub use day::{DayInput, validate_day};
pub use outcome::{
    CheckOutcome, Family, MAX_SAMPLES, Sample, Scores, Status, Threshold, Thresholds, family_status, overall_status,
    score,
};
pub use quality::{
    FileProfile, Quote, TradeProfiler, arrival_order, crossed_quotes, median_mad, ohlc_invariants, on_grid,
    price_spikes, rows_parsed, stale_prices, trades_on_grid, unique_trade_ids,
};
pub use validation::Validation;

#[cfg(test)]
mod tests;
