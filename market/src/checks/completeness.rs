//! Completeness: is everything there that should be, and nothing that should not.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ids;
use super::outcome::{CheckOutcome, Family, Sample, Threshold, group_by_pair, join, sample_of};
use super::quality::FileProfile;
use crate::{Candle, DAY_US, Exchange, Instrument, MINUTE_US, Symbol, TradingDay};

/// Completeness: every expected (exchange, symbol) file is present.
pub fn file_coverage(expected: &[(Exchange, Symbol)], present: &BTreeSet<(Exchange, Symbol)>) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::FILES_PRESENT,
        Family::Completeness,
        "every configured exchange/symbol has a trades file with trades in the day",
        Threshold::WARN_ON_ANY,
    );
    for (exchange, symbol) in expected {
        if present.contains(&(exchange.clone(), symbol.clone())) {
            out.pass_one();
        } else {
            out.fail_one(|| Sample::pair(exchange, symbol, "no trades file for this symbol".to_owned()));
        }
    }
    out
}

/// Completeness: every minute that had trades has a candle, and no candle exists for a minute without
/// trades. Evaluated over the union of both sets.
pub fn candle_coverage(expected: &[Candle], actual: &[Candle]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::CANDLE_PER_TRADED_MINUTE,
        Family::Completeness,
        "one candle for every minute that had trades, none for minutes without",
        Threshold::ZERO_TOLERANCE,
    );
    join(expected, actual, |want, got| match (want, got.first()) {
        (Some(_), Some(_)) => out.pass_one(),
        (Some(want), None) => out.fail_one(|| sample_of(want, "minute had trades but has no candle".to_owned())),
        (None, Some(extra)) => out.fail_one(|| sample_of(extra, "candle for a minute without trades".to_owned())),
        (None, None) => {}
    });
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

/// Completeness of one (exchange, symbol) on one date. Every field is always present: a loosely typed record
/// that could miss a field once crashed a production backfill of the pipeline this project replaces.
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
pub fn completeness_records(expected: &[Candle], actual: &[Candle]) -> Vec<CompletenessRecord> {
    // Minutes per pair on both sides, grouped once.
    // Per pair: (expected minutes, landed minutes), both sorted.
    type Minutes = (Vec<i64>, Vec<i64>);
    let mut pairs: BTreeMap<(&Exchange, &Symbol), Minutes> = BTreeMap::new();
    for (exchange, symbol, list) in group_by_pair(expected) {
        let want = &mut pairs.entry((exchange, symbol)).or_default().0;
        want.extend(list.iter().map(|c| c.open_time_us));
        want.dedup();
    }
    for (exchange, symbol, list) in group_by_pair(actual) {
        let got = &mut pairs.entry((exchange, symbol)).or_default().1;
        got.extend(list.iter().map(|c| c.open_time_us));
        got.dedup();
    }
    pairs
        .into_iter()
        .map(|((exchange, symbol), (want, got))| {
            // Both lists are sorted and free of duplicates.
            let extra = got.iter().filter(|t| want.binary_search(t).is_err()).count() as u64;
            let mut gaps: Vec<GapRun> = Vec::new();
            let mut hours: Vec<HourCoverage> =
                (0..24).map(|hour| HourCoverage { hour, expected: 0, covered: 0 }).collect();
            for &t in &want {
                let hour = usize::try_from(t.rem_euclid(DAY_US) / (60 * MINUTE_US)).unwrap_or(0).min(23);
                hours[hour].expected += 1;
                if got.binary_search(&t).is_ok() {
                    hours[hour].covered += 1;
                    continue;
                }
                match gaps.last_mut() {
                    Some(gap) if gap.end_us == t => {
                        gap.end_us += MINUTE_US;
                        gap.minutes += 1;
                    }
                    _ => gaps.push(GapRun { start_us: t, end_us: t + MINUTE_US, minutes: 1 }),
                }
            }
            let missing: u64 = gaps.iter().map(|g| g.minutes).sum();
            CompletenessRecord {
                exchange: exchange.clone(),
                symbol: symbol.clone(),
                expected_count: want.len() as u64,
                actual_count: got.len() as u64,
                missing_count: missing,
                extra_count: extra,
                is_complete: missing == 0 && extra == 0,
                gaps,
                hours,
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
        ids::CONFIGURED_SYMBOLS_LISTED,
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
/// rows outside the date, and more than [`OUTSIDE_ROWS_FLOOR`] of them, means the file is not the date it
/// claims to be. (The floor keeps a quiet symbol's few late trades from looking like a large share.)
pub const OUTSIDE_ROWS_FLOOR: u64 = 50;

pub fn rows_inside_date(files: &[FileProfile], max_share: f64) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::ROWS_INSIDE_DATE,
        Family::Completeness,
        "rows whose exchange time lies outside the date stay a small share of each file",
        Threshold::ZERO_TOLERANCE,
    );
    for file in files {
        let outside = file.rows_before_day + file.rows_after_day;
        if outside <= OUTSIDE_ROWS_FLOOR || (outside as f64) <= max_share * file.rows as f64 {
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
