//! Completeness: is everything there that should be, and nothing that should not.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::outcome::{CheckOutcome, Family, Sample, Threshold, candle_sample};
use super::quality::FileProfile;
use crate::{Candle, CandleKey, DAY_US, Exchange, Instrument, MINUTE_US, Symbol, TradingDay};

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

/// A run of consecutive minutes that had trades but have no candle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapRun {
    pub start_us: i64,
    /// Exclusive.
    pub end_us: i64,
    pub minutes: u64,
}

/// Completeness of one (exchange, symbol) on one date. Every field is always present: a record that
/// misses a field once crashed a production backfill (DESIGN.md §1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletenessRecord {
    pub exchange: Exchange,
    pub symbol: Symbol,
    /// Minutes that had trades.
    pub expected_count: u64,
    /// Candles that landed.
    pub actual_count: u64,
    /// Minutes with trades but no candle.
    pub missing_count: u64,
    /// Candles for minutes without trades.
    pub extra_count: u64,
    pub is_complete: bool,
    pub gaps: Vec<GapRun>,
    /// Expected and landed candles per UTC hour of the date (24 entries), for the heatmap.
    pub hours: Vec<HourCoverage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCoverage {
    pub hour: u8,
    /// Minutes with trades in the hour.
    pub expected: u32,
    /// Of those, minutes with a candle.
    pub covered: u32,
}

/// One record per (exchange, symbol) seen on either side, ordered.
pub fn completeness_records(expected: &BTreeSet<CandleKey>, actual: &[Candle]) -> Vec<CompletenessRecord> {
    let actual_keys: BTreeSet<CandleKey> = actual.iter().map(Candle::key).collect();
    let pairs: BTreeSet<(Exchange, Symbol)> =
        expected.iter().chain(actual_keys.iter()).map(|k| (k.exchange.clone(), k.symbol.clone())).collect();
    pairs
        .into_iter()
        .map(|(exchange, symbol)| {
            let of_pair = |k: &&CandleKey| k.exchange == exchange && k.symbol == symbol;
            let want: Vec<&CandleKey> = expected.iter().filter(of_pair).collect();
            let got = actual_keys.iter().filter(of_pair).count() as u64;
            let extra = actual_keys.iter().filter(of_pair).filter(|k| !expected.contains(*k)).count() as u64;
            let mut gaps: Vec<GapRun> = Vec::new();
            for key in want.iter().filter(|k| !actual_keys.contains(**k)) {
                match gaps.last_mut() {
                    Some(gap) if gap.end_us == key.open_time_us => {
                        gap.end_us += MINUTE_US;
                        gap.minutes += 1;
                    }
                    _ => gaps.push(GapRun {
                        start_us: key.open_time_us,
                        end_us: key.open_time_us + MINUTE_US,
                        minutes: 1,
                    }),
                }
            }
            let missing: u64 = gaps.iter().map(|g| g.minutes).sum();
            let mut hours: Vec<HourCoverage> =
                (0..24).map(|hour| HourCoverage { hour, expected: 0, covered: 0 }).collect();
            for key in &want {
                let hour = usize::try_from(key.open_time_us.rem_euclid(DAY_US) / (60 * MINUTE_US)).unwrap_or(0).min(23);
                hours[hour].expected += 1;
                if actual_keys.contains(*key) {
                    hours[hour].covered += 1;
                }
            }
            CompletenessRecord {
                expected_count: want.len() as u64,
                actual_count: got,
                missing_count: missing,
                extra_count: extra,
                is_complete: missing == 0 && extra == 0,
                gaps,
                hours,
                exchange,
                symbol,
            }
        })
        .collect()
}

/// Completeness: every configured exchange/symbol is an active instrument listed on the date (a symbol
/// configured but delisted, or a typo, is found here rather than as a missing file).
pub fn configured_symbols_listed(
    configured: &[(Exchange, Symbol)],
    instruments: &[Instrument],
    day: TradingDay,
) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        "completeness.configured_symbols_listed",
        Family::Completeness,
        "every configured exchange/symbol is an instrument listed on the date",
        Threshold::WARN_ON_ANY,
    );
    for (exchange, symbol) in configured {
        let found = instruments.iter().find(|i| &i.exchange == exchange && &i.dataset_id == symbol);
        match found {
            Some(i) if i.listed_on(day) => out.pass_one(),
            Some(_) => out.fail_one(|| Sample::pair(exchange, symbol, format!("not listed on {day}"))),
            None => out.fail_one(|| Sample::pair(exchange, symbol, "not in the exchange's instruments".to_owned())),
        }
    }
    out
}

/// Completeness of the arrival-time split: rows whose exchange time lies outside the date are expected
/// at the edges of a Tardis file (late trades of the previous day); more than `max_share` of a file's
/// rows outside the date means the file is not the date it claims to be.
pub fn rows_inside_date(files: &[FileProfile], max_share: f64) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        "completeness.rows_inside_date",
        Family::Completeness,
        "rows whose exchange time lies outside the date stay a small share of each file",
        Threshold::ZERO_TOLERANCE,
    );
    for file in files {
        let outside = file.rows_before_day + file.rows_after_day;
        if file.rows == 0 || (outside as f64) <= max_share * file.rows as f64 {
            out.pass_one();
        } else {
            out.fail_one(|| {
                Sample::pair(
                    &file.exchange,
                    &file.symbol,
                    format!(
                        "{} of {} rows outside the date ({} before, {} after)",
                        outside, file.rows, file.rows_before_day, file.rows_after_day
                    ),
                )
            });
        }
    }
    out
}
