//! Quality: is each value plausible on its own (invariants, grids, duplicates, spikes, staleness).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ids;
use super::outcome::{CheckOutcome, Family, MAX_SAMPLES, Sample, Threshold, group_by_pair, sample_of};
use crate::{Candle, Exchange, MINUTE_US, Symbol, Trade, TradeIds, TradingDay};

/// Quality: OHLC invariants, finite values, non-negative volumes, consistent flows.
pub fn ohlc_invariants(candles: &[Candle]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::OHLC_INVARIANTS,
        Family::Quality,
        "low ≤ open, close ≤ high; finite values; volume ≥ 0; buy + sell ≤ volume; trade count ≥ 1",
        Threshold::ZERO_TOLERANCE,
    );
    for c in candles {
        match ohlc_violation(c) {
            None => out.pass_one(),
            Some(detail) => out.fail_one(|| sample_of(c, detail)),
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

/// What one pass over a trades file found, row by row. Built by [`TradeProfiler`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileProfile {
    pub exchange: Exchange,
    pub symbol: Symbol,
    pub rows: u64,
    /// Rows that did not parse into a valid trade.
    pub rejected: u64,
    /// (line, reason) of some rejected rows.
    pub reject_samples: Vec<(u64, String)>,
    pub rows_before_day: u64,
    pub rows_after_day: u64,
    /// Rows whose arrival time is earlier than the previous row's (files are ordered by arrival).
    pub arrival_regressions: u64,
    /// Whether tick and lot sizes were known, so that grids were checked.
    pub grid_checked: bool,
    pub off_grid_prices: u64,
    pub off_grid_amounts: u64,
    /// Rows with a non-empty trade id.
    pub rows_with_id: u64,
    /// Rows whose non-empty id was already seen in the file.
    pub duplicate_ids: u64,
    /// Some offending rows (line and what is wrong), across the categories above.
    pub samples: Vec<(u64, String)>,
}

/// Accumulates a [`FileProfile`] over the rows of one file, in file order. Memory: the file's trade ids
/// ([`TradeIds`]: a few bits per id for the increasing integer ids exchanges give; duplicates can be
/// anywhere in a file), nothing else per row.
#[derive(Debug, Clone)]
pub struct TradeProfiler {
    profile: FileProfile,
    /// The day's bounds in µs (computed once: they are on every row's path).
    day_us: (i64, i64),
    increments: Option<(f64, f64)>,
    last_arrival: i64,
    ids: TradeIds,
}

/// Whether `value` is a whole multiple of `step`, allowing for the binary representation of decimals.
pub fn on_grid(value: f64, step: f64) -> bool {
    let units = value / step;
    (units - units.round()).abs() <= 1e-6 * units.abs().max(1.0)
}

impl TradeProfiler {
    /// `increments`: (price increment, amount increment) of the instrument, when known.
    pub fn new(exchange: Exchange, symbol: Symbol, day: TradingDay, increments: Option<(f64, f64)>) -> Self {
        TradeProfiler {
            profile: FileProfile {
                exchange,
                symbol,
                rows: 0,
                rejected: 0,
                reject_samples: Vec::new(),
                rows_before_day: 0,
                rows_after_day: 0,
                arrival_regressions: 0,
                grid_checked: increments.is_some(),
                off_grid_prices: 0,
                off_grid_amounts: 0,
                rows_with_id: 0,
                duplicate_ids: 0,
                samples: Vec::new(),
            },
            day_us: (day.start_us(), day.end_us()),
            increments,
            last_arrival: i64::MIN,
            ids: TradeIds::new(),
        }
    }

    fn note(&mut self, line: u64, what: String) {
        if self.profile.samples.len() < MAX_SAMPLES {
            self.profile.samples.push((line, what));
        }
    }

    /// A row that parsed: `id` is the raw id cell (empty when the exchange gives none).
    pub fn trade(&mut self, line: u64, trade: &Trade, id: &[u8]) {
        self.profile.rows += 1;
        if trade.exchange_ts_us < self.day_us.0 {
            self.profile.rows_before_day += 1;
        } else if trade.exchange_ts_us >= self.day_us.1 {
            self.profile.rows_after_day += 1;
        }
        if trade.local_ts_us < self.last_arrival {
            self.profile.arrival_regressions += 1;
            self.note(
                line,
                format!("arrival time {} before the previous row's {}", trade.local_ts_us, self.last_arrival),
            );
        }
        self.last_arrival = self.last_arrival.max(trade.local_ts_us);
        if let Some((price_step, amount_step)) = self.increments {
            if !on_grid(trade.price, price_step) {
                self.profile.off_grid_prices += 1;
                self.note(line, format!("price {} is not a multiple of the tick {price_step}", trade.price));
            }
            if !on_grid(trade.amount, amount_step) {
                self.profile.off_grid_amounts += 1;
                self.note(line, format!("amount {} is not a multiple of the lot {amount_step}", trade.amount));
            }
        }
        if !id.is_empty() {
            self.profile.rows_with_id += 1;
            if !self.ids.insert(id) {
                self.profile.duplicate_ids += 1;
                let text = String::from_utf8_lossy(id).into_owned();
                self.note(line, format!("trade id {text} seen before in the file"));
            }
        }
    }

    /// `count` rows that did not parse, with (line, reason) of some of them.
    pub fn rejected(&mut self, count: u64, samples: &[(u64, String)]) {
        self.profile.rows += count;
        self.profile.rejected += count;
        let room = MAX_SAMPLES.saturating_sub(self.profile.reject_samples.len());
        self.profile.reject_samples.extend(samples.iter().take(room).cloned());
    }

    #[must_use]
    pub fn finish(self) -> FileProfile {
        self.profile
    }
}

fn profile_samples(out: &mut CheckOutcome, file: &FileProfile, keep: impl Fn(&str) -> bool) {
    for (line, what) in file.samples.iter().filter(|(_, w)| keep(w)) {
        out.sample(Sample::pair(&file.exchange, &file.symbol, format!("line {line}: {what}")));
    }
}

/// Quality: every row of every downloaded file parsed into a valid trade.
pub fn rows_parsed(files: &[FileProfile]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::ROWS_PARSED,
        Family::Quality,
        "every CSV row parses into a trade with a positive price and amount",
        Threshold { fail_below: 0.999, warn_below: 1.0 },
    );
    for file in files {
        out.count(file.rows, file.rejected);
        for (line, reason) in &file.reject_samples {
            out.sample(Sample::pair(&file.exchange, &file.symbol, format!("line {line}: {reason}")));
        }
    }
    out
}

/// Quality: prices sit on the instrument's tick grid and amounts on its lot grid.
pub fn trades_on_grid(files: &[FileProfile]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::TRADES_ON_GRID,
        Family::Quality,
        "prices are multiples of priceIncrement and amounts of amountIncrement",
        Threshold { fail_below: 0.99, warn_below: 1.0 },
    );
    for file in files.iter().filter(|f| f.grid_checked) {
        let valid = file.rows - file.rejected;
        let bad = (file.off_grid_prices + file.off_grid_amounts).min(valid);
        out.count(valid, bad);
        profile_samples(&mut out, file, |w| w.contains("not a multiple"));
    }
    out
}

/// Quality: a trade id appears once per file. Only rows with an id count: identical-looking trades
/// with different ids (or without ids) are real fills, not duplicates.
pub fn unique_trade_ids(files: &[FileProfile]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::UNIQUE_TRADE_IDS,
        Family::Quality,
        "no trade id repeats within a file (rows without ids are not compared)",
        Threshold::ZERO_TOLERANCE,
    );
    for file in files {
        out.count(file.rows_with_id, file.duplicate_ids);
        profile_samples(&mut out, file, |w| w.starts_with("trade id"));
    }
    out
}

/// Quality: files are ordered by arrival time, as Tardis writes them (exchange time may go backwards).
pub fn arrival_order(files: &[FileProfile]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::ARRIVAL_ORDER,
        Family::Quality,
        "rows are in non-decreasing local_timestamp order within each file",
        Threshold::ZERO_TOLERANCE,
    );
    for file in files {
        out.count(file.rows - file.rejected, file.arrival_regressions);
        profile_samples(&mut out, file, |w| w.starts_with("arrival time"));
    }
    out
}

/// Median and median absolute deviation (scaled by 1.4826 to estimate a standard deviation).
pub fn median_mad(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
    };
    let mut sorted = values.to_vec();
    let m = median(&mut sorted);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    Some((m, 1.4826 * median(&mut deviations)))
}

/// The robust z-score of `value` against a sample's median and scaled MAD (see [`median_mad`]): |value −
/// median| / mad, infinite when the sample has no spread but `value` differs from it, 0 when equal.
pub fn robust_z(value: f64, median: f64, mad: f64) -> f64 {
    let deviation = (value - median).abs();
    if mad > 0.0 {
        deviation / mad
    } else if deviation > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Quality: 1-minute log returns of the close whose robust z-score |r − median| / (1.4826·MAD) exceeds
/// `max_z` and whose size exceeds `min_move` (so that a symbol that barely moves does not flag its
/// first tick). Spikes are flagged, never "fixed": exchanges do print outliers.
pub fn price_spikes(candles: &[Candle], max_z: f64, min_move: f64) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::PRICE_SPIKES,
        Family::Quality,
        "no 1-minute close-to-close return is an outlier by robust z-score",
        Threshold { fail_below: 0.99, warn_below: 1.0 },
    );
    for (exchange, symbol, list) in group_by_pair(candles) {
        let returns: Vec<(i64, f64)> = list
            .windows(2)
            .filter(|w| w[0].close > 0.0 && w[1].close > 0.0)
            .map(|w| (w[1].open_time_us, (w[1].close / w[0].close).ln()))
            .collect();
        let values: Vec<f64> = returns.iter().map(|(_, r)| *r).collect();
        let Some((median, mad)) = median_mad(&values) else { continue };
        for (at, r) in returns {
            let z = robust_z(r, median, mad);
            if z > max_z && r.abs() > min_move {
                out.fail_one(|| Sample {
                    exchange: Some(exchange.clone()),
                    symbol: Some(symbol.clone()),
                    open_time_us: Some(at),
                    detail: format!(
                        "return {:+.4}% has robust z {z:.1} (median {median:+.6}, MAD {mad:.6}, limit {max_z})",
                        r * 100.0
                    ),
                });
            } else {
                out.pass_one();
            }
        }
    }
    out
}

/// Quality: a symbol whose close stays identical for `min_minutes` consecutive traded minutes while
/// other symbols of the same exchange trade in those minutes has a stale feed.
pub fn stale_prices(candles: &[Candle], min_minutes: usize) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::STALE_PRICES,
        Family::Quality,
        "no long run of an unchanged close while the exchange's other symbols trade",
        Threshold { fail_below: 0.9, warn_below: 1.0 },
    );
    let pairs = group_by_pair(candles);
    // How many symbols of each exchange traded in each minute.
    let mut active: HashMap<(&Exchange, i64), u32> = HashMap::new();
    for (exchange, _, list) in &pairs {
        for c in list {
            *active.entry((*exchange, c.open_time_us)).or_default() += 1;
        }
    }
    for (exchange, symbol, list) in &pairs {
        let mut run_start = 0;
        for i in 1..=list.len() {
            let continues = i < list.len()
                && list[i].close == list[i - 1].close
                && list[i].open_time_us - list[i - 1].open_time_us == MINUTE_US;
            if continues {
                continue;
            }
            let run = &list[run_start..i];
            // This symbol traded in each minute of the run: others did when more than one symbol did.
            let others_traded =
                run.iter().filter(|c| active.get(&(*exchange, c.open_time_us)).is_some_and(|n| *n > 1)).count();
            if run.len() >= min_minutes && others_traded >= min_minutes / 2 {
                out.fail_one(|| Sample {
                    exchange: Some((*exchange).clone()),
                    symbol: Some((*symbol).clone()),
                    open_time_us: Some(run[0].open_time_us),
                    detail: format!(
                        "close {} unchanged for {} minutes while other symbols traded",
                        run[0].close,
                        run.len()
                    ),
                });
            } else {
                out.pass_one();
            }
            run_start = i;
        }
    }
    out
}

/// A top-of-book quote.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub exchange: Exchange,
    pub symbol: Symbol,
    pub timestamp_us: i64,
    pub bid_price: f64,
    pub ask_price: f64,
}

/// Quality: quotes are not crossed (bid < ask). Locked books (bid = ask) count as crossed.
pub fn crossed_quotes(quotes: &[Quote]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::QUOTES_NOT_CROSSED,
        Family::Quality,
        "best bid is below best ask",
        Threshold { fail_below: 0.999, warn_below: 1.0 },
    );
    for q in quotes {
        if q.bid_price < q.ask_price {
            out.pass_one();
        } else {
            out.fail_one(|| Sample {
                exchange: Some(q.exchange.clone()),
                symbol: Some(q.symbol.clone()),
                open_time_us: Some(q.timestamp_us),
                detail: format!("bid {} ≥ ask {}", q.bid_price, q.ask_price),
            });
        }
    }
    out
}
