//! Consistency: do two views of the same data agree (landed vs recomputed, rollups, counts).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::outcome::{CheckOutcome, Family, Sample, Threshold, candle_sample};
use super::quality::median_mad;
use crate::{Candle, CandleKey, Exchange, Instrument, Interval, Symbol, rollup};

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

/// Consistency: 1-minute candles rolled up to each coarser interval equal candles built directly from
/// the trades at that interval. `direct` holds, per interval, the candles built from trades.
pub fn rollups_match(
    direct: &[(Interval, Vec<Candle>)],
    landed_1m: &[Candle],
    relative_tolerance: f64,
) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        "consistency.rollups_match_direct",
        Family::Consistency,
        "1m candles rolled up to 5m, 1h and 1d equal candles built directly from the trades",
        Threshold::ZERO_TOLERANCE,
    );
    let mut sorted = landed_1m.to_vec();
    sorted.sort_by(|a, b| a.key().cmp(&b.key()));
    for (interval, built) in direct {
        let rolled: BTreeMap<CandleKey, Candle> =
            rollup(&sorted, *interval).into_iter().map(|c| (c.key(), c)).collect();
        let built: BTreeMap<CandleKey, &Candle> = built.iter().map(|c| (c.key(), c)).collect();
        for key in rolled.keys().chain(built.keys().filter(|k| !rolled.contains_key(*k))) {
            let name = interval.as_str();
            match (built.get(key), rolled.get(key)) {
                (Some(want), Some(got)) => match candle_difference(want, got, relative_tolerance) {
                    None => out.pass_one(),
                    Some(detail) => out.fail_one(|| candle_sample(key, format!("{name} roll-up: {detail}"))),
                },
                (Some(_), None) => {
                    out.fail_one(|| candle_sample(key, format!("{name} bucket has trades but no 1m candles")))
                }
                (None, _) => {
                    out.fail_one(|| candle_sample(key, format!("{name} bucket from 1m candles has no trades")))
                }
            }
        }
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
        "consistency.counts_agree",
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
        "consistency.candle_symbols_in_instruments",
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
        "consistency.cross_exchange_divergence",
        Family::Consistency,
        "each exchange's close stays near the cross-exchange median of the same underlying",
        Threshold { fail_below: 0.99, warn_below: 1.0 },
    );
    let mut minutes: BTreeMap<(&str, i64), Vec<&Candle>> = BTreeMap::new();
    for c in candles {
        if let Some(u) = underlying.get(&(c.exchange.clone(), c.symbol.clone())) {
            minutes.entry((u.as_str(), c.open_time_us)).or_default().push(c);
        }
    }
    for ((name, at), list) in minutes {
        let venues: BTreeSet<&Exchange> = list.iter().map(|c| &c.exchange).collect();
        if venues.len() < 3 {
            continue;
        }
        let closes: Vec<f64> = list.iter().map(|c| c.close).collect();
        let Some((median, _)) = median_mad(&closes) else { continue };
        for c in list {
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
