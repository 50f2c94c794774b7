//! OHLCV candles built from trades, and roll-ups of 1-minute candles to coarser intervals.
//!
//! Rules (also in ARCHITECTURE.md): a trade belongs to the bucket of its **exchange** timestamp; a
//! bucket's open is the trade with the smallest exchange timestamp (the first in file order among
//! equal timestamps) and its close the trade with the largest (the last in file order among equal
//! timestamps), so out-of-order arrival does not change a candle; no candle exists for a minute
//! without trades; `vwap = quote_volume / volume` with `quote_volume = Σ price × amount`.
//! The builder only accepts trades whose exchange time falls inside its day; it counts the others.

use serde::{Deserialize, Serialize};

use crate::{DAY_US, Exchange, MINUTE_US, Side, Symbol, Trade, TradingDay};

/// Candle widths: 1 minute is built from trades, the others are rolled up from 1-minute candles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "1d")]
    D1,
}

impl Interval {
    pub const ALL: [Interval; 4] = [Interval::M1, Interval::M5, Interval::H1, Interval::D1];

    pub fn micros(self) -> i64 {
        match self {
            Interval::M1 => MINUTE_US,
            Interval::M5 => 5 * MINUTE_US,
            Interval::H1 => 60 * MINUTE_US,
            Interval::D1 => DAY_US,
        }
    }

    /// `1m`, `5m`, `1h` or `1d`.
    pub fn parse(input: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.as_str() == input)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::H1 => "1h",
            Interval::D1 => "1d",
        }
    }
}

/// Identity of a candle: one per (exchange, symbol, bucket start).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CandleKey {
    pub exchange: Exchange,
    pub symbol: Symbol,
    pub open_time_us: i64,
}

/// One OHLCV candle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    pub exchange: Exchange,
    pub symbol: Symbol,
    /// Bucket start, µs since the Unix epoch, UTC.
    pub open_time_us: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub quote_volume: f64,
    pub trade_count: u64,
    pub vwap: f64,
    pub buy_volume: f64,
    pub sell_volume: f64,
}

impl Candle {
    pub fn key(&self) -> CandleKey {
        CandleKey { exchange: self.exchange.clone(), symbol: self.symbol.clone(), open_time_us: self.open_time_us }
    }

    pub fn day(&self) -> TradingDay {
        TradingDay::containing(self.open_time_us)
    }
}

/// Running state of one bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    open_ts: i64,
    open: f64,
    close_ts: i64,
    close: f64,
    high: f64,
    low: f64,
    volume: f64,
    quote_volume: f64,
    trade_count: u64,
    buy_volume: f64,
    sell_volume: f64,
}

impl Bucket {
    fn new(trade: &Trade) -> Self {
        let mut bucket = Bucket {
            open_ts: trade.exchange_ts_us,
            open: trade.price,
            close_ts: trade.exchange_ts_us,
            close: trade.price,
            high: trade.price,
            low: trade.price,
            volume: 0.0,
            quote_volume: 0.0,
            trade_count: 0,
            buy_volume: 0.0,
            sell_volume: 0.0,
        };
        bucket.add_flow(trade);
        bucket
    }

    fn add(&mut self, trade: &Trade) {
        if trade.exchange_ts_us < self.open_ts {
            self.open_ts = trade.exchange_ts_us;
            self.open = trade.price;
        }
        if trade.exchange_ts_us >= self.close_ts {
            self.close_ts = trade.exchange_ts_us;
            self.close = trade.price;
        }
        self.high = self.high.max(trade.price);
        self.low = self.low.min(trade.price);
        self.add_flow(trade);
    }

    fn add_flow(&mut self, trade: &Trade) {
        self.volume += trade.amount;
        self.quote_volume += trade.price * trade.amount;
        self.trade_count += 1;
        match trade.side {
            Side::Buy => self.buy_volume += trade.amount,
            Side::Sell => self.sell_volume += trade.amount,
            Side::Unknown => {}
        }
    }
}

/// Where a trade fell relative to the builder's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    InDay,
    /// Exchange time before the day: the file is split by arrival time, so its first rows can be late
    /// trades of the previous day.
    BeforeDay,
    /// Exchange time after the day: only possible with clock skew between exchange and capture.
    AfterDay,
}

/// Builds the 1-minute candles of one (exchange, symbol, day) from trades in any order.
///
/// Memory is fixed (one slot per minute of the day), whatever the number of trades.
#[derive(Debug, Clone)]
pub struct CandleBuilder {
    exchange: Exchange,
    symbol: Symbol,
    /// The day's first microsecond (computed once: it is on every trade's path).
    start_us: i64,
    width_us: i64,
    buckets: Vec<Option<Bucket>>,
    before_day: u64,
    after_day: u64,
}

impl CandleBuilder {
    /// A builder of 1-minute candles.
    pub fn new(exchange: Exchange, symbol: Symbol, day: TradingDay) -> Self {
        CandleBuilder::with_interval(exchange, symbol, day, Interval::M1)
    }

    /// A builder of candles of any [`Interval`] directly from trades (validation compares these with
    /// roll-ups of the 1-minute candles).
    pub fn with_interval(exchange: Exchange, symbol: Symbol, day: TradingDay, interval: Interval) -> Self {
        let width_us = interval.micros();
        let n = usize::try_from(DAY_US / width_us).expect("a day holds a positive number of buckets");
        CandleBuilder {
            exchange,
            symbol,
            start_us: day.start_us(),
            width_us,
            buckets: vec![None; n],
            before_day: 0,
            after_day: 0,
        }
    }

    pub fn push(&mut self, trade: &Trade) -> Placement {
        let offset = trade.exchange_ts_us - self.start_us;
        if offset < 0 {
            self.before_day += 1;
            return Placement::BeforeDay;
        }
        if offset >= DAY_US {
            self.after_day += 1;
            return Placement::AfterDay;
        }
        let index = usize::try_from(offset / self.width_us).expect("offset is within the day");
        match &mut self.buckets[index] {
            Some(bucket) => bucket.add(trade),
            slot @ None => *slot = Some(Bucket::new(trade)),
        }
        Placement::InDay
    }

    /// Trades seen whose exchange time was before the day.
    pub fn before_day(&self) -> u64 {
        self.before_day
    }

    /// Trades seen whose exchange time was after the day.
    pub fn after_day(&self) -> u64 {
        self.after_day
    }

    /// The candles, ordered by open time.
    #[must_use]
    pub fn finish(self) -> Vec<Candle> {
        let start = self.start_us;
        let (exchange, symbol, width) = (self.exchange, self.symbol, self.width_us);
        self.buckets
            .into_iter()
            .enumerate()
            .filter_map(|(index, bucket)| {
                let b = bucket?;
                let index = i64::try_from(index).expect("bucket index fits i64");
                Some(Candle {
                    exchange: exchange.clone(),
                    symbol: symbol.clone(),
                    open_time_us: start + index * width,
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
                })
            })
            .collect()
    }
}

/// Rolls 1-minute candles up to `interval`. The input must be sorted by (exchange, symbol, open time),
/// as `CandleBuilder::finish` yields them; the output is sorted the same way.
pub fn rollup(candles: &[Candle], interval: Interval) -> Vec<Candle> {
    let width = interval.micros();
    let mut out: Vec<Candle> = Vec::new();
    for c in candles {
        let bucket_start = c.open_time_us - c.open_time_us.rem_euclid(width);
        match out.last_mut() {
            Some(acc) if acc.exchange == c.exchange && acc.symbol == c.symbol && acc.open_time_us == bucket_start => {
                acc.high = acc.high.max(c.high);
                acc.low = acc.low.min(c.low);
                acc.close = c.close;
                acc.volume += c.volume;
                acc.quote_volume += c.quote_volume;
                acc.trade_count += c.trade_count;
                acc.buy_volume += c.buy_volume;
                acc.sell_volume += c.sell_volume;
                acc.vwap = acc.quote_volume / acc.volume;
            }
            _ => out.push(Candle { open_time_us: bucket_start, ..c.clone() }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn day() -> TradingDay {
        TradingDay::parse("2024-06-01").expect("valid day")
    }

    fn builder() -> CandleBuilder {
        CandleBuilder::new(Exchange::parse("bitmex").expect("ok"), Symbol::parse("XBTUSD").expect("ok"), day())
    }

    fn trade(offset_us: i64, price: f64, amount: f64, side: Side) -> Trade {
        let ts = day().start_us() + offset_us;
        Trade { exchange_ts_us: ts, local_ts_us: ts + 1_000, side, price, amount }
    }

    #[test]
    fn open_and_close_follow_exchange_time_not_arrival_order() {
        let mut b = builder();
        // Arrival order: 20 s, 10 s, 50 s, 30 s within the first minute.
        for (offset_s, price) in [(20, 101.0), (10, 100.0), (50, 103.0), (30, 99.0)] {
            b.push(&trade(offset_s * 1_000_000, price, 1.0, Side::Buy));
        }
        let candles = b.finish();
        assert_eq!(candles.len(), 1);
        let c = &candles[0];
        assert_eq!((c.open, c.high, c.low, c.close), (100.0, 103.0, 99.0, 103.0));
        assert_eq!(c.trade_count, 4);
    }

    #[test]
    fn ties_on_exchange_time_take_first_open_and_last_close_in_file_order() {
        let mut b = builder();
        b.push(&trade(5, 10.0, 1.0, Side::Buy));
        b.push(&trade(5, 11.0, 1.0, Side::Sell));
        b.push(&trade(5, 12.0, 1.0, Side::Unknown));
        let c = &b.finish()[0];
        assert_eq!((c.open, c.close), (10.0, 12.0));
        assert_eq!((c.buy_volume, c.sell_volume, c.volume), (1.0, 1.0, 3.0));
    }

    #[test]
    fn trades_outside_the_day_are_counted_not_bucketed() {
        let mut b = builder();
        assert_eq!(b.push(&trade(-1, 1.0, 1.0, Side::Buy)), Placement::BeforeDay);
        assert_eq!(b.push(&trade(-DAY_US, 1.0, 1.0, Side::Buy)), Placement::BeforeDay);
        assert_eq!(b.push(&trade(DAY_US, 1.0, 1.0, Side::Buy)), Placement::AfterDay);
        assert_eq!(b.push(&trade(DAY_US - 1, 2.0, 1.0, Side::Buy)), Placement::InDay);
        assert_eq!(b.push(&trade(2 * DAY_US, 1.0, 1.0, Side::Buy)), Placement::AfterDay);
        assert_eq!(b.push(&trade(DAY_US + 5, 1.0, 1.0, Side::Buy)), Placement::AfterDay);
        assert_eq!((b.before_day(), b.after_day()), (2, 3));
        let candles = b.finish();
        assert_eq!(candles.len(), 1);
        assert_eq!(candles[0].open_time_us, day().end_us() - MINUTE_US);
    }

    #[test]
    fn minutes_without_trades_have_no_candle() {
        let mut b = builder();
        b.push(&trade(0, 1.0, 1.0, Side::Buy));
        b.push(&trade(3 * MINUTE_US + 7, 2.0, 1.0, Side::Buy));
        let times: Vec<i64> = b.finish().iter().map(|c| (c.open_time_us - day().start_us()) / MINUTE_US).collect();
        assert_eq!(times, [0, 3]);
    }

    fn arb_trades() -> impl Strategy<Value = Vec<Trade>> {
        prop::collection::vec(
            (
                0..DAY_US,
                1u32..100_000,
                1u32..1_000,
                prop_oneof![Just(Side::Buy), Just(Side::Sell), Just(Side::Unknown)],
            ),
            1..400,
        )
        .prop_map(|rows| {
            rows.into_iter()
                .map(|(offset, ticks, lots, side)| trade(offset, f64::from(ticks) * 0.5, f64::from(lots) * 0.001, side))
                .collect()
        })
    }

    fn build(trades: &[Trade]) -> Vec<Candle> {
        let mut b = builder();
        for t in trades {
            b.push(t);
        }
        b.finish()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn candles_respect_ohlc_invariants(trades in arb_trades()) {
            for c in build(&trades) {
                prop_assert!(c.low <= c.open && c.open <= c.high, "{c:?}");
                prop_assert!(c.low <= c.close && c.close <= c.high, "{c:?}");
                prop_assert!(c.low <= c.vwap * (1.0 + 1e-12) && c.vwap <= c.high * (1.0 + 1e-12), "{c:?}");
                prop_assert!(c.volume > 0.0 && c.buy_volume + c.sell_volume <= c.volume * (1.0 + 1e-12));
                prop_assert_eq!(c.open_time_us % MINUTE_US, 0);
            }
        }

        #[test]
        fn volume_and_trade_count_are_conserved(trades in arb_trades()) {
            let candles = build(&trades);
            let count: u64 = candles.iter().map(|c| c.trade_count).sum();
            prop_assert_eq!(count, trades.len() as u64);
            let volume: f64 = candles.iter().map(|c| c.volume).sum();
            let want: f64 = trades.iter().map(|t| t.amount).sum();
            prop_assert!((volume - want).abs() <= want * 1e-9);
        }

        #[test]
        fn arrival_order_does_not_change_candles_when_times_are_distinct(mut trades in arb_trades()) {
            trades.sort_by_key(|t| t.exchange_ts_us);
            trades.dedup_by_key(|t| t.exchange_ts_us);
            let forward = build(&trades);
            trades.reverse();
            let backward = build(&trades);
            prop_assert_eq!(forward.len(), backward.len());
            for (a, b) in forward.iter().zip(&backward) {
                prop_assert_eq!((a.open, a.high, a.low, a.close, a.trade_count), (b.open, b.high, b.low, b.close, b.trade_count));
                prop_assert!((a.volume - b.volume).abs() <= a.volume * 1e-9);
            }
        }

        #[test]
        fn building_at_an_interval_equals_rolling_up_minutes(trades in arb_trades()) {
            let minutes = build(&trades);
            for interval in [Interval::M5, Interval::H1, Interval::D1] {
                let mut direct = CandleBuilder::with_interval(
                    Exchange::parse("bitmex").expect("ok"), Symbol::parse("XBTUSD").expect("ok"), day(), interval);
                for t in &trades {
                    direct.push(t);
                }
                let direct = direct.finish();
                let rolled = rollup(&minutes, interval);
                prop_assert_eq!(direct.len(), rolled.len());
                let close = |a: f64, b: f64| (a - b).abs() <= a.abs().max(b.abs()) * 1e-9;
                for (d, r) in direct.iter().zip(&rolled) {
                    prop_assert_eq!((d.open_time_us, d.open, d.high, d.low, d.close, d.trade_count), (r.open_time_us, r.open, r.high, r.low, r.close, r.trade_count));
                    // Every sum, and vwap from them: (direct, rolled up).
                    for (name, d, r) in [
                        ("volume", d.volume, r.volume),
                        ("quote_volume", d.quote_volume, r.quote_volume),
                        ("buy_volume", d.buy_volume, r.buy_volume),
                        ("sell_volume", d.sell_volume, r.sell_volume),
                        ("vwap", d.vwap, r.vwap),
                    ] {
                        prop_assert!(close(d, r), "{:?} {} direct {} rolled up {}", interval, name, d, r);
                    }
                }
            }
        }

        #[test]
        fn rollups_equal_candles_built_directly(trades in arb_trades()) {
            let minutes = build(&trades);
            for interval in [Interval::M5, Interval::H1, Interval::D1] {
                let rolled = rollup(&minutes, interval);
                // Build directly by bucketing every trade at the coarser width.
                let mut direct: std::collections::BTreeMap<i64, (f64, f64, u64)> = Default::default();
                for t in &trades {
                    let start = t.exchange_ts_us - t.exchange_ts_us.rem_euclid(interval.micros());
                    let e = direct.entry(start).or_insert((f64::MIN, f64::MAX, 0));
                    e.0 = e.0.max(t.price);
                    e.1 = e.1.min(t.price);
                    e.2 += 1;
                }
                prop_assert_eq!(rolled.len(), direct.len());
                for c in &rolled {
                    let (high, low, n) = direct[&c.open_time_us];
                    prop_assert_eq!((c.high, c.low, c.trade_count), (high, low, n));
                }
            }
        }
    }
}
