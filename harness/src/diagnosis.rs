//! Naming the mistake behind wrong candles: when landed candles differ from the truth, known mistakes are
//! re-enacted on the generated trades, and a mistake whose candles match what landed (far better than the truth
//! does) is named in the finding. External pipelines cannot say what they did; this says what they most
//! likely did.
//!
//! It only runs on failure and never changes a score: a diagnosis is one more sample on
//! `consistency.candles_equal_truth`. It does not use `market::CandleBuilder` (the mistakes need other rules).

use std::collections::{BTreeMap, HashSet};

use fixtures::{Generator, TradeId};
use market::checks::{self, Sample};
use market::{Candle, Exchange, MINUTE_US, Side, TradingDay};

/// Which timestamp decides the minute (and the date) of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// The contract: the exchange `timestamp`.
    Exchange,
    /// Tardis' `local_timestamp`, when the trade arrived.
    Arrival,
}

/// How open and close are chosen within a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    /// The contract: smallest exchange time (first on ties), largest (last on ties).
    ByTime,
    /// The first and the last row of the minute in file (arrival) order.
    FileOrder,
}

/// Which trades count as duplicates of one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// The contract: none (ids are unique per symbol only, and duplicates within a symbol still count).
    Kept,
    /// A trade whose (exchange, id) was seen before, in any symbol of the exchange (files in exchange, symbol
    /// order), is dropped.
    DedupedPerExchange,
}

/// A known way to get candles wrong.
#[derive(Debug, Clone, Copy)]
struct Mistake {
    finding: &'static str,
    clock: Clock,
    ends: Ends,
    ids: Ids,
    /// Added to every open_time (a time-zone bug); candles pushed out of the date are lost.
    shift_us: i64,
    /// Trades smaller than this many lots are dropped as dust (0: none).
    dust_lots: f64,
}

const MISTAKES: [Mistake; 5] = [
    Mistake {
        finding: "bucketing trades by local_timestamp (arrival time) instead of the exchange timestamp",
        clock: Clock::Arrival,
        ends: Ends::ByTime,
        ids: Ids::Kept,
        shift_us: 0,
        dust_lots: 0.0,
    },
    Mistake {
        finding: "taking open and close as the first and last trade in file (arrival) order instead of by \
                  exchange timestamp",
        clock: Clock::Exchange,
        ends: Ends::FileOrder,
        ids: Ids::Kept,
        shift_us: 0,
        dust_lots: 0.0,
    },
    Mistake {
        finding: "deduplicating trades by (exchange, id) across symbols (trade ids are unique per symbol only: \
                  Binance's are per-symbol sequences)",
        clock: Clock::Exchange,
        ends: Ends::ByTime,
        ids: Ids::DedupedPerExchange,
        shift_us: 0,
        dust_lots: 0.0,
    },
    Mistake {
        finding: "writing open_time one hour late (a local time zone taken for UTC)",
        clock: Clock::Exchange,
        ends: Ends::ByTime,
        ids: Ids::Kept,
        shift_us: 60 * MINUTE_US,
        dust_lots: 0.0,
    },
    Mistake {
        finding: "dropping trades smaller than twice the lot size as dust (every trade counts, the minimum lot too)",
        clock: Clock::Exchange,
        ends: Ends::ByTime,
        ids: Ids::Kept,
        shift_us: 0,
        dust_lots: 2.0,
    },
];

#[derive(Debug, Clone, Copy)]
struct Bucket {
    open_key: i64,
    open: f64,
    close_key: i64,
    close: f64,
    high: f64,
    low: f64,
    volume: f64,
    quote_volume: f64,
    trade_count: u64,
    buy_volume: f64,
    sell_volume: f64,
}

/// The candles of `day` as a pipeline making the `mistake`'s choices would build them from each file.
fn candles(generator: &Generator, day: TradingDay, mistake: &Mistake) -> Vec<Candle> {
    let Mistake { clock, ends, ids, shift_us, dust_lots, .. } = *mistake;
    let mut out = Vec::new();
    let mut pairs = generator.universe().pairs();
    pairs.sort();
    let mut seen: HashSet<(Exchange, String)> = HashSet::new();
    for (exchange, symbol) in pairs {
        let Some(rows) = generator.trade_rows(&exchange, &symbol, day) else { continue };
        let lot = generator
            .universe()
            .exchanges()
            .iter()
            .filter(|e| e.exchange == exchange)
            .flat_map(|e| &e.symbols)
            .find(|s| s.symbol() == &symbol)
            .map_or(0.0, |s| s.instrument.amount_increment);
        let mut minutes: BTreeMap<i64, Bucket> = BTreeMap::new();
        for (position, row) in rows.enumerate() {
            if ids == Ids::DedupedPerExchange
                && row.id != TradeId::None
                && !seen.insert((exchange.clone(), row.id.to_string()))
            {
                continue;
            }
            let trade = row.to_trade();
            if trade.amount < dust_lots * lot {
                continue;
            }
            let at = match clock {
                Clock::Exchange => trade.exchange_ts_us,
                Clock::Arrival => trade.local_ts_us,
            };
            if !day.contains_us(at) {
                continue;
            }
            // The order open and close are judged by: time, or position in the file.
            let key = match ends {
                Ends::ByTime => at,
                Ends::FileOrder => i64::try_from(position).unwrap_or(i64::MAX),
            };
            let minute = day.start_us() + (at - day.start_us()) / MINUTE_US * MINUTE_US;
            let bucket = minutes.entry(minute).or_insert(Bucket {
                open_key: key,
                open: trade.price,
                close_key: key,
                close: trade.price,
                high: trade.price,
                low: trade.price,
                volume: 0.0,
                quote_volume: 0.0,
                trade_count: 0,
                buy_volume: 0.0,
                sell_volume: 0.0,
            });
            if key < bucket.open_key {
                (bucket.open_key, bucket.open) = (key, trade.price);
            }
            if key >= bucket.close_key {
                (bucket.close_key, bucket.close) = (key, trade.price);
            }
            bucket.high = bucket.high.max(trade.price);
            bucket.low = bucket.low.min(trade.price);
            bucket.volume += trade.amount;
            bucket.quote_volume += trade.price * trade.amount;
            bucket.trade_count += 1;
            match trade.side {
                Side::Buy => bucket.buy_volume += trade.amount,
                Side::Sell => bucket.sell_volume += trade.amount,
                Side::Unknown => {}
            }
        }
        let shifted = minutes.into_iter().map(|(minute, b)| (minute + shift_us, b));
        out.extend(shifted.filter(|(open_time_us, _)| day.contains_us(*open_time_us)).map(|(open_time_us, b)| {
            Candle {
                exchange: exchange.clone(),
                symbol: symbol.clone(),
                open_time_us,
                open: b.open,
                high: b.high,
                low: b.low,
                close: b.close,
                volume: b.volume,
                quote_volume: b.quote_volume,
                trade_count: b.trade_count,
                vwap: b.quote_volume / b.volume,
                buy_volume: b.buy_volume,
                sell_volume: b.sell_volume,
            }
        }));
    }
    out
}

/// A sample naming the known mistake that explains `landed` when `differences` candles differ from the truth:
/// one whose candles leave at most a tenth of those differences (none at all for a plain statement).
pub fn diagnose(generator: &Generator, day: TradingDay, landed: &[Candle], differences: u64) -> Option<Sample> {
    if differences == 0 {
        return None;
    }
    let (mistake, left) = MISTAKES
        .iter()
        .map(|m| (m, checks::candles_match(&candles(generator, day, m), landed, 1e-9).failed))
        .min_by_key(|(_, left)| *left)?;
    let detail = if left == 0 {
        format!("diagnosis: the landed candles are exactly what {} gives", mistake.finding)
    } else if left.saturating_mul(10) <= differences {
        format!("diagnosis: only {left} of {differences} differences remain when {}", mistake.finding)
    } else {
        return None;
    };
    Some(Sample::general(detail))
}

#[cfg(test)]
mod tests {
    use fixtures::Universe;

    use super::*;

    /// The contract's own rules, as a mistake that makes none.
    const CONTRACT: Mistake = Mistake {
        finding: "",
        clock: Clock::Exchange,
        ends: Ends::ByTime,
        ids: Ids::Kept,
        shift_us: 0,
        dust_lots: 0.0,
    };

    fn generator() -> Generator {
        Generator::new(3, Universe::default_universe()).with_activity(0.05)
    }

    fn day() -> TradingDay {
        TradingDay::parse("2024-06-03").expect("valid")
    }

    #[test]
    fn the_contract_rules_reproduce_the_truth_so_a_diagnosis_is_never_the_truth_itself() {
        let generator = generator();
        let truth: Vec<Candle> = generator.day_truth(day()).candles().cloned().collect();
        let rebuilt = candles(&generator, day(), &CONTRACT);
        assert_eq!(checks::candles_match(&truth, &rebuilt, 0.0).failed, 0);
        assert_eq!(truth.len(), rebuilt.len());
    }

    /// The diagnosis of the candles `mistake` makes of the generated trades, which differ from the truth (`why`).
    fn diagnosis_of(generator: &Generator, mistake: &Mistake, why: &str) -> String {
        let landed = candles(generator, day(), mistake);
        let truth: Vec<Candle> = generator.day_truth(day()).candles().cloned().collect();
        let differences = checks::candles_match(&truth, &landed, 1e-9).failed;
        assert!(differences > 0, "{why}");
        diagnose(generator, day(), &landed, differences).expect("a diagnosis").detail
    }

    #[test]
    fn candles_bucketed_by_arrival_time_are_named() {
        let generator = generator();
        let detail = diagnosis_of(&generator, &MISTAKES[0], "arrival-time bucketing changes some candles");
        assert!(detail.contains("bucketing trades by local_timestamp"), "{detail}");
    }

    #[test]
    fn open_and_close_in_file_order_are_named() {
        // Out-of-order exchange times inside one minute are rare: a realistic trade rate on busy symbols.
        let pairs = [("binance-futures", "BTCUSDT"), ("binance-futures", "ETHUSDT"), ("bitmex", "XBTUSD")];
        let pairs: Vec<_> = pairs
            .iter()
            .map(|(e, s)| (market::Exchange::parse(e).expect("id"), market::Symbol::parse(s).expect("id")))
            .collect();
        let generator = Generator::new(3, Universe::default_universe().restricted_to(&pairs));
        let detail = diagnosis_of(&generator, &MISTAKES[1], "some minute has its trades out of exchange-time order");
        assert!(detail.contains("first and last trade in file (arrival) order"), "{detail}");
    }

    #[test]
    fn trades_deduplicated_across_an_exchange_s_symbols_are_named() {
        let generator = generator();
        let detail = diagnosis_of(&generator, &MISTAKES[2], "Binance's symbols share trade ids");
        assert!(detail.contains("deduplicating trades by (exchange, id)"), "{detail}");
    }

    #[test]
    fn candles_an_hour_late_are_named() {
        let generator = generator();
        let detail = diagnosis_of(&generator, &MISTAKES[3], "the mistake changes some candles");
        assert!(detail.contains("open_time one hour late"), "{detail}");
    }

    #[test]
    fn trades_dropped_below_twice_the_lot_are_named() {
        let generator = generator();
        let detail = diagnosis_of(&generator, &MISTAKES[4], "the edge cases trade the minimum lot");
        assert!(detail.contains("smaller than twice the lot size"), "{detail}");
    }

    #[test]
    fn unrelated_differences_get_no_diagnosis() {
        let generator = generator();
        let mut landed: Vec<Candle> = generator.day_truth(day()).candles().cloned().collect();
        for candle in &mut landed {
            candle.vwap *= 1.01;
        }
        assert_eq!(diagnose(&generator, day(), &landed, landed.len() as u64), None);
    }
}
