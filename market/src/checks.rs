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
//! ratios, judged against the family threshold. Overall status = the worst of every check's status and
//! every family's status.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::{Candle, CandleKey, Exchange, Symbol};

/// At most this many failing rows are kept per check.
pub const MAX_SAMPLES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Completeness,
    Quality,
    Consistency,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Completeness, Family::Quality, Family::Consistency];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Completeness => "completeness",
            Family::Quality => "quality",
            Family::Consistency => "consistency",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// One failing row, as shown in reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub exchange: Option<Exchange>,
    pub symbol: Option<Symbol>,
    pub open_time_us: Option<i64>,
    pub detail: String,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// Stable dotted id, e.g. `consistency.candles_match_trades`.
    pub id: String,
    pub family: Family,
    pub description: String,
    pub evaluated: u64,
    pub failed: u64,
    /// The levels this check's pass ratio is judged against.
    pub threshold: Threshold,
    /// `threshold` applied to the pass ratio (kept up to date by every mutation below).
    pub status: Status,
    pub samples: Vec<Sample>,
}

impl CheckOutcome {
    pub fn new(id: &str, family: Family, description: &str, threshold: Threshold) -> Self {
        CheckOutcome {
            id: id.to_owned(),
            family,
            description: description.to_owned(),
            evaluated: 0,
            failed: 0,
            threshold,
            status: Status::Pass,
            samples: Vec::new(),
        }
    }

    pub fn pass_one(&mut self) {
        self.evaluated += 1;
    }

    /// Counts `n` elements at once, `failed` of them failing (samples are added separately).
    pub fn count(&mut self, n: u64, failed: u64) {
        self.evaluated += n;
        self.failed += failed;
        self.status = family_status(self.pass_ratio(), self.threshold);
    }

    pub fn fail_one(&mut self, sample: impl FnOnce() -> Sample) {
        self.evaluated += 1;
        self.failed += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(sample());
        }
        self.status = family_status(self.pass_ratio(), self.threshold);
    }

    /// Adds a failing row to the samples (up to [`MAX_SAMPLES`]) without counting it.
    pub fn sample(&mut self, sample: Sample) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(sample);
        }
    }

    /// `1 − failed / evaluated`, or 1 when nothing was evaluated.
    pub fn pass_ratio(&self) -> f64 {
        if self.evaluated == 0 { 1.0 } else { 1.0 - self.failed as f64 / self.evaluated as f64 }
    }
}

fn candle_sample(key: &CandleKey, detail: String) -> Sample {
    Sample {
        exchange: Some(key.exchange.clone()),
        symbol: Some(key.symbol.clone()),
        open_time_us: Some(key.open_time_us),
        detail,
    }
}

/// Completeness: every expected (exchange, symbol) file is present.
pub fn file_coverage(expected: &[(Exchange, Symbol)], present: &BTreeSet<(Exchange, Symbol)>) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        "completeness.files_present",
        Family::Completeness,
        "every configured exchange/symbol has a trades file with trades in the day",
        Threshold::WARN_ON_ANY,
    );
    for (exchange, symbol) in expected {
        if present.contains(&(exchange.clone(), symbol.clone())) {
            out.pass_one();
        } else {
            out.fail_one(|| Sample {
                exchange: Some(exchange.clone()),
                symbol: Some(symbol.clone()),
                open_time_us: None,
                detail: "no trades file for this symbol".to_owned(),
            });
        }
    }
    out
}

/// Completeness: every minute that had trades has a candle, and no candle exists for a minute without
/// trades. Evaluated over the union of both sets.
pub fn candle_coverage(expected: &BTreeSet<CandleKey>, actual: &[Candle]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        "completeness.candle_per_traded_minute",
        Family::Completeness,
        "one candle for every minute that had trades, none for minutes without",
        Threshold::ZERO_TOLERANCE,
    );
    let actual_keys: BTreeSet<CandleKey> = actual.iter().map(Candle::key).collect();
    for key in expected.union(&actual_keys) {
        match (expected.contains(key), actual_keys.contains(key)) {
            (true, true) => out.pass_one(),
            (true, false) => out.fail_one(|| candle_sample(key, "minute had trades but has no candle".to_owned())),
            (false, _) => out.fail_one(|| candle_sample(key, "candle for a minute without trades".to_owned())),
        }
    }
    out
}

/// Quality: OHLC invariants, finite values, non-negative volumes, consistent flows.
pub fn ohlc_invariants(candles: &[Candle]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        "quality.ohlc_invariants",
        Family::Quality,
        "low ≤ open, close ≤ high; finite values; volume ≥ 0; buy + sell ≤ volume; trade count ≥ 1",
        Threshold::ZERO_TOLERANCE,
    );
    for c in candles {
        match ohlc_violation(c) {
            None => out.pass_one(),
            Some(detail) => out.fail_one(|| candle_sample(&c.key(), detail)),
        }
    }
    out
}

fn ohlc_violation(c: &Candle) -> Option<String> {
    let values = [c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.vwap, c.buy_volume, c.sell_volume];
    if values.iter().any(|v| !v.is_finite()) {
        return Some(format!("non-finite value in {values:?}"));
    }
    if !(c.low <= c.open && c.open <= c.high && c.low <= c.close && c.close <= c.high) {
        return Some(format!("OHLC out of order: open {} high {} low {} close {}", c.open, c.high, c.low, c.close));
    }
    if c.volume < 0.0 || c.buy_volume < 0.0 || c.sell_volume < 0.0 || c.quote_volume < 0.0 {
        return Some(format!("negative volume: volume {} buy {} sell {}", c.volume, c.buy_volume, c.sell_volume));
    }
    let slack = c.volume.abs() * 1e-9;
    if c.buy_volume + c.sell_volume > c.volume + slack {
        return Some(format!("buy {} + sell {} exceeds volume {}", c.buy_volume, c.sell_volume, c.volume));
    }
    if c.trade_count == 0 {
        return Some("candle with zero trades".to_owned());
    }
    None
}

/// Consistency: each landed candle equals the expected one for its key: open, high, low and close
/// exactly, trade count equal, volumes and vwap within the relative tolerance. A key present only on
/// one side, or landed twice, is a mismatch.
pub fn candles_match(expected: &[Candle], actual: &[Candle], relative_tolerance: f64) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        "consistency.candles_match_trades",
        Family::Consistency,
        "landed candles equal candles recomputed from the trades (OHLC exact, sums within tolerance)",
        Threshold::ZERO_TOLERANCE,
    );
    let mut landed: HashMap<CandleKey, Vec<&Candle>> = HashMap::with_capacity(actual.len());
    for c in actual {
        landed.entry(c.key()).or_default().push(c);
    }
    let expected_by_key: BTreeMap<CandleKey, &Candle> = expected.iter().map(|c| (c.key(), c)).collect();
    for (key, want) in &expected_by_key {
        match landed.get(key).map(Vec::as_slice) {
            None | Some([]) => out.fail_one(|| candle_sample(key, "expected candle did not land".to_owned())),
            Some([got]) => match candle_difference(want, got, relative_tolerance) {
                None => out.pass_one(),
                Some(detail) => out.fail_one(|| candle_sample(key, detail)),
            },
            Some(many) => out.fail_one(|| candle_sample(key, format!("landed {} times", many.len()))),
        }
    }
    let mut extra: Vec<&CandleKey> = landed.keys().filter(|k| !expected_by_key.contains_key(*k)).collect();
    extra.sort();
    for key in extra {
        out.fail_one(|| candle_sample(key, "landed candle has no trades behind it".to_owned()));
    }
    out
}

fn close_enough(a: f64, b: f64, relative_tolerance: f64) -> bool {
    a == b || (a - b).abs() <= relative_tolerance * a.abs().max(b.abs())
}

/// Describes the first difference between an expected and a landed candle, if any.
pub fn candle_difference(want: &Candle, got: &Candle, relative_tolerance: f64) -> Option<String> {
    let exact = [
        ("open", want.open, got.open),
        ("high", want.high, got.high),
        ("low", want.low, got.low),
        ("close", want.close, got.close),
    ];
    for (name, w, g) in exact {
        if w != g {
            return Some(format!("{name} is {g}, expected {w}"));
        }
    }
    if want.trade_count != got.trade_count {
        return Some(format!("trade_count is {}, expected {}", got.trade_count, want.trade_count));
    }
    let sums = [
        ("volume", want.volume, got.volume),
        ("quote_volume", want.quote_volume, got.quote_volume),
        ("vwap", want.vwap, got.vwap),
        ("buy_volume", want.buy_volume, got.buy_volume),
        ("sell_volume", want.sell_volume, got.sell_volume),
    ];
    for (name, w, g) in sums {
        if !close_enough(w, g, relative_tolerance) {
            return Some(format!("{name} is {g}, expected {w}"));
        }
    }
    None
}

/// Parse results of one downloaded file, for [`rows_parsed`].
#[derive(Debug, Clone, PartialEq)]
pub struct FileParse {
    pub exchange: Exchange,
    pub symbol: Symbol,
    pub rows: u64,
    pub rejected: u64,
    /// (line, reason) of some rejected rows.
    pub samples: Vec<(u64, String)>,
}

/// Quality: every row of every downloaded file parsed into a valid trade.
pub fn rows_parsed(files: &[FileParse]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        "quality.rows_parsed",
        Family::Quality,
        "every CSV row parses into a trade with a positive price and amount",
        Threshold { fail_below: 0.999, warn_below: 1.0 },
    );
    for file in files {
        out.count(file.rows, file.rejected);
        for (line, reason) in &file.samples {
            out.sample(Sample {
                exchange: Some(file.exchange.clone()),
                symbol: Some(file.symbol.clone()),
                open_time_us: None,
                detail: format!("line {line}: {reason}"),
            });
        }
    }
    out
}

/// All checks of one date, with their scores and the overall status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub checks: Vec<CheckOutcome>,
    pub scores: Scores,
    pub thresholds: Thresholds,
    pub status: Status,
}

impl Validation {
    pub fn evaluate(checks: Vec<CheckOutcome>, thresholds: Thresholds) -> Validation {
        let scores = score(&checks);
        let worst_check = checks.iter().map(|c| c.status).max().unwrap_or(Status::Pass);
        let status = overall_status(&scores, &thresholds).max(worst_check);
        Validation { checks, scores, thresholds, status }
    }

    /// Checks that found at least one failing element.
    pub fn failing(&self) -> impl Iterator<Item = &CheckOutcome> {
        self.checks.iter().filter(|c| c.failed > 0)
    }
}

/// Warn and fail levels of a pass ratio or a family score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Below this the check or family fails.
    pub fail_below: f64,
    /// Below this (and not below `fail_below`) it warns.
    pub warn_below: f64,
}

impl Threshold {
    /// Any failing element fails the check: for integrity (duplicates, wrong values, broken invariants).
    pub const ZERO_TOLERANCE: Threshold = Threshold { fail_below: 1.0, warn_below: 1.0 };
    /// Any failing element warns; below 95 % it fails.
    pub const WARN_ON_ANY: Threshold = Threshold { fail_below: 0.95, warn_below: 1.0 };
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub completeness: Threshold,
    pub quality: Threshold,
    pub consistency: Threshold,
}

impl Thresholds {
    /// The original test plan's levels (completeness ≥ 0.95, quality ≥ 0.90, consistency ≥ 0.95) as
    /// fail levels; anything short of 0.99 warns.
    pub const DEFAULT: Thresholds = Thresholds {
        completeness: Threshold { fail_below: 0.95, warn_below: 0.99 },
        quality: Threshold { fail_below: 0.90, warn_below: 0.99 },
        consistency: Threshold { fail_below: 0.95, warn_below: 0.99 },
    };

    pub fn for_family(&self, family: Family) -> Threshold {
        match family {
            Family::Completeness => self.completeness,
            Family::Quality => self.quality,
            Family::Consistency => self.consistency,
        }
    }
}

/// The three scores, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub completeness: f64,
    pub quality: f64,
    pub consistency: f64,
}

impl Scores {
    pub fn get(&self, family: Family) -> f64 {
        match family {
            Family::Completeness => self.completeness,
            Family::Quality => self.quality,
            Family::Consistency => self.consistency,
        }
    }
}

/// Scores every family from its checks (mean of pass ratios; 1 for a family without checks).
pub fn score(outcomes: &[CheckOutcome]) -> Scores {
    let family_score = |family: Family| {
        let ratios: Vec<f64> = outcomes.iter().filter(|o| o.family == family).map(CheckOutcome::pass_ratio).collect();
        if ratios.is_empty() { 1.0 } else { ratios.iter().sum::<f64>() / ratios.len() as f64 }
    };
    Scores {
        completeness: family_score(Family::Completeness),
        quality: family_score(Family::Quality),
        consistency: family_score(Family::Consistency),
    }
}

/// The status of one family's score under `threshold`.
pub fn family_status(score: f64, threshold: Threshold) -> Status {
    if score < threshold.fail_below {
        Status::Fail
    } else if score < threshold.warn_below {
        Status::Warn
    } else {
        Status::Pass
    }
}

/// The worst family status (see [`Validation::evaluate`] for the overall status, which also counts checks).
pub fn overall_status(scores: &Scores, thresholds: &Thresholds) -> Status {
    Family::ALL.iter().map(|f| family_status(scores.get(*f), thresholds.for_family(*f))).max().unwrap_or(Status::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MINUTE_US, TradingDay};

    fn candle(minute: i64, open: f64, high: f64, low: f64, close: f64) -> Candle {
        Candle {
            exchange: Exchange::parse("deribit").expect("ok"),
            symbol: Symbol::parse("BTC-PERPETUAL").expect("ok"),
            open_time_us: TradingDay::parse("2024-06-01").expect("ok").start_us() + minute * MINUTE_US,
            open,
            high,
            low,
            close,
            volume: 2.0,
            quote_volume: 2.0 * open,
            trade_count: 2,
            vwap: open,
            buy_volume: 1.0,
            sell_volume: 1.0,
        }
    }

    #[test]
    fn ohlc_check_flags_swapped_high_and_low() {
        let good = candle(0, 10.0, 12.0, 9.0, 11.0);
        let swapped = candle(1, 10.0, 9.0, 12.0, 11.0);
        let out = ohlc_invariants(&[good, swapped]);
        assert_eq!((out.evaluated, out.failed), (2, 1));
        assert!(out.samples[0].detail.contains("OHLC out of order"), "{:?}", out.samples);
    }

    #[test]
    fn candles_match_reports_missing_extra_duplicated_and_different() {
        let expected =
            vec![candle(0, 10.0, 12.0, 9.0, 11.0), candle(1, 10.0, 12.0, 9.0, 11.0), candle(2, 1.0, 1.0, 1.0, 1.0)];
        let mut wrong = candle(1, 10.0, 12.0, 9.0, 11.0);
        wrong.vwap *= 1.01;
        let actual =
            vec![candle(0, 10.0, 12.0, 9.0, 11.0), wrong, candle(3, 1.0, 1.0, 1.0, 1.0), candle(3, 1.0, 1.0, 1.0, 1.0)];
        let out = candles_match(&expected, &actual, 1e-9);
        assert_eq!(out.evaluated, 4);
        assert_eq!(out.failed, 3);
        let details: Vec<&str> = out.samples.iter().map(|s| s.detail.as_str()).collect();
        assert!(details[0].starts_with("vwap is"), "{details:?}");
        assert_eq!(details[1], "expected candle did not land");
        assert_eq!(details[2], "landed candle has no trades behind it");
    }

    #[test]
    fn sums_within_relative_tolerance_match() {
        let want = candle(0, 10.0, 12.0, 9.0, 11.0);
        let mut got = want.clone();
        got.volume *= 1.0 + 1e-12;
        assert_eq!(candle_difference(&want, &got, 1e-9), None);
        got.volume *= 1.0 + 1e-6;
        assert!(candle_difference(&want, &got, 1e-9).is_some());
    }

    #[test]
    fn scores_average_pass_ratios_and_status_takes_the_worst_family() {
        let mut half = CheckOutcome::new("completeness.x", Family::Completeness, "x", Threshold::WARN_ON_ANY);
        half.pass_one();
        half.fail_one(|| Sample { exchange: None, symbol: None, open_time_us: None, detail: String::new() });
        let perfect = CheckOutcome::new("completeness.y", Family::Completeness, "y", Threshold::WARN_ON_ANY);
        let scores = score(&[half, perfect]);
        assert_eq!(scores.completeness, 0.75);
        assert_eq!(scores.quality, 1.0);
        assert_eq!(overall_status(&scores, &Thresholds::DEFAULT), Status::Fail);
        let fine = Scores { completeness: 0.97, quality: 1.0, consistency: 1.0 };
        assert_eq!(overall_status(&fine, &Thresholds::DEFAULT), Status::Warn);
    }

    #[test]
    fn samples_are_capped() {
        let candles: Vec<Candle> = (0..50).map(|m| candle(m, 10.0, 9.0, 12.0, 11.0)).collect();
        let out = ohlc_invariants(&candles);
        assert_eq!(out.failed, 50);
        assert_eq!(out.samples.len(), MAX_SAMPLES);
    }
}
