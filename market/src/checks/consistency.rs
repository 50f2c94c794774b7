//! Consistency: do two views of the same data agree (landed vs recomputed, rollups, counts).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::ids;
use super::outcome::{CheckOutcome, Family, Sample, Threshold, group_by_pair, join, order, sample_of};
use crate::{Candle, Exchange, Instrument, Interval, Symbol, rollup};

/// Consistency: each landed candle equals the expected one for its key: open, high, low and close
/// exactly, trade count equal, volumes and vwap within the relative tolerance. A key present only on
/// one side, or landed twice, is a mismatch.
pub fn candles_match(expected: &[Candle], actual: &[Candle], relative_tolerance: f64) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::CANDLES_MATCH_TRADES,
        Family::Consistency,
        "landed candles equal candles recomputed from the trades (OHLC exact, sums within tolerance)",
        Threshold::ZERO_TOLERANCE,
    );
    join(expected, actual, |want, got| match (want, got) {
        (Some(want), []) => out.fail_one(|| sample_of(want, "expected candle did not land".to_owned())),
        (Some(want), [got]) => match candle_difference(want, got, relative_tolerance) {
            None => out.pass_one(),
            Some(detail) => out.fail_one(|| sample_of(want, detail)),
        },
        (Some(want), many) => out.fail_one(|| sample_of(want, format!("landed {} times", many.len()))),
        (None, extra) => {
            if let Some(first) = extra.first() {
                out.fail_one(|| sample_of(first, "landed candle has no trades behind it".to_owned()));
            }
        }
    });
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

/// Consistency: 1-minute candles rolled up to each coarser interval equal candles built directly from
/// the trades at that interval. `direct` holds, per interval, the candles built from trades.
pub fn rollups_match(
    direct: &[(Interval, Vec<Candle>)],
    landed_1m: &[Candle],
    relative_tolerance: f64,
) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::ROLLUPS_MATCH_DIRECT,
        Family::Consistency,
        "1m candles rolled up to 5m, 1h and 1d equal candles built directly from the trades",
        Threshold::ZERO_TOLERANCE,
    );
    let owned;
    let sorted: &[Candle] = if landed_1m.is_sorted_by(|a, b| order(a, b).is_le()) {
        landed_1m
    } else {
        let mut copy = landed_1m.to_vec();
        copy.sort_by(order);
        owned = copy;
        &owned
    };
    for (interval, built) in direct {
        let rolled = rollup(sorted, *interval);
        let name = interval.as_str();
        join(built, &rolled, |want, got| match (want, got) {
            (Some(want), [got, ..]) => match candle_difference(want, got, relative_tolerance) {
                None => out.pass_one(),
                Some(detail) => out.fail_one(|| sample_of(want, format!("{name} roll-up: {detail}"))),
            },
            (Some(want), []) => out.fail_one(|| sample_of(want, format!("{name} bucket has trades but no 1m candles"))),
            (None, got) => {
                if let Some(first) = got.first() {
                    out.fail_one(|| sample_of(first, format!("{name} bucket from 1m candles has no trades")));
                }
            }
        });
    }
    out
}

/// The same count seen from several places (download, the run record in Postgres, BigQuery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountViews {
    /// What is counted, e.g. "trades in the day".
    pub what: String,
    /// (where, count) pairs; all must agree.
    pub views: Vec<(String, u64)>,
}

/// Consistency: every count agrees wherever it is recorded.
pub fn counts_agree(counts: &[CountViews]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::COUNTS_AGREE,
        Family::Consistency,
        "row counts agree between the download, the run record in Postgres and BigQuery",
        Threshold::ZERO_TOLERANCE,
    );
    for count in counts {
        let first = count.views.first().map(|(_, n)| *n);
        if count.views.iter().all(|(_, n)| Some(*n) == first) {
            out.pass_one();
        } else {
            let seen: Vec<String> = count.views.iter().map(|(w, n)| format!("{w} {n}")).collect();
            out.fail_one(|| Sample::general(format!("{}: {}", count.what, seen.join(", "))));
        }
    }
    out
}

/// Consistency: every landed candle's (exchange, symbol) exists in the instruments uploaded for the date.
pub fn candles_have_instruments(candles: &[Candle], instruments: &[Instrument]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::CANDLE_SYMBOLS_IN_INSTRUMENTS,
        Family::Consistency,
        "every candle's exchange/symbol is in the instruments table of the date",
        Threshold::ZERO_TOLERANCE,
    );
    let known: BTreeSet<(&Exchange, &Symbol)> = instruments.iter().map(|i| (&i.exchange, &i.dataset_id)).collect();
    let pairs: BTreeSet<(&Exchange, &Symbol)> = candles.iter().map(|c| (&c.exchange, &c.symbol)).collect();
    for (exchange, symbol) in pairs {
        if known.contains(&(exchange, symbol)) {
            out.pass_one();
        } else {
            out.fail_one(|| {
                Sample::pair(exchange, symbol, "candles for a symbol missing from the instruments table".to_owned())
            });
        }
    }
    out
}

/// Consistency: per minute and underlying (e.g. BTC), each exchange's close stays within `band`
/// (relative) of the median close across exchanges. Minutes with fewer than three exchanges are not
/// judged: with two, neither side can be called the outlier.
pub fn cross_exchange_divergence(
    candles: &[Candle],
    underlying: &HashMap<(Exchange, Symbol), String>,
    band: f64,
) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::CROSS_EXCHANGE_DIVERGENCE,
        Family::Consistency,
        "each exchange's close stays near the cross-exchange median of the same underlying",
        Threshold { fail_below: 0.99, warn_below: 1.0 },
    );
    // Underlyings numbered, so that sorting compares integers, not strings.
    let mut names: Vec<&str> = underlying.values().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut rows: Vec<(usize, i64, &Candle)> = Vec::with_capacity(candles.len());
    for (exchange, symbol, list) in group_by_pair(candles) {
        let Some(u) = underlying.get(&(exchange.clone(), symbol.clone())) else { continue };
        let index = names.binary_search(&u.as_str()).unwrap_or(0);
        rows.extend(list.iter().map(|c| (index, c.open_time_us, *c)));
    }
    rows.sort_unstable_by_key(|r| (r.0, r.1));
    let mut closes: Vec<f64> = Vec::new();
    for run in rows.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (name, at) = (names[run[0].0], run[0].1);
        let mut venues: Vec<&Exchange> = run.iter().map(|r| &r.2.exchange).collect();
        venues.sort_unstable();
        venues.dedup();
        if venues.len() < 3 {
            continue;
        }
        closes.clear();
        closes.extend(run.iter().map(|r| r.2.close));
        closes.sort_unstable_by(f64::total_cmp);
        let n = closes.len();
        let median = if n % 2 == 1 { closes[n / 2] } else { (closes[n / 2 - 1] + closes[n / 2]) / 2.0 };
        for c in run.iter().map(|r| r.2) {
            let deviation = (c.close - median).abs() / median;
            if deviation <= band {
                out.pass_one();
            } else {
                out.fail_one(|| Sample {
                    exchange: Some(c.exchange.clone()),
                    symbol: Some(c.symbol.clone()),
                    open_time_us: Some(at),
                    detail: format!(
                        "close {} is {:.2}% from the {name} median {median} (band {:.2}%)",
                        c.close,
                        deviation * 100.0,
                        band * 100.0
                    ),
                });
            }
        }
    }
    out
}
