//! The candles stage: 1-minute candles of a date from its verified trades files on disk, with the
//! per-file profile (grids, duplicate ids, arrival order) and candles built directly at coarser
//! intervals, which validation compares with roll-ups of the 1-minute candles.
//!
//! Files are streamed (constant memory per file, plus one hash per trade id for duplicate detection);
//! only trades whose exchange time falls inside the date are bucketed. Rows with an exchange time before
//! the date (Tardis splits files by arrival time, so a file starts with late trades of the previous day)
//! and after it are counted and reported, never attributed to another date: a date's partition is
//! written only by that date's run.

use std::collections::HashMap;
use std::io::BufReader;

use flate2::read::GzDecoder;
use market::candle::Placement;
use market::checks::{FileProfile, TradeProfiler};
use market::{Candle, CandleBuilder, Exchange, Instrument, Interval, Symbol};

use crate::tardis::DownloadedFile;
use crate::tardis::trades_csv::{self, CsvError};

/// Tick and lot size per (exchange, symbol), from the instruments stage.
pub type Increments = HashMap<(Exchange, Symbol), (f64, f64)>;

/// The increments of `instruments`, keyed by the symbol their trade files carry (`dataset_id`).
pub fn increments(instruments: &[Instrument]) -> Increments {
    instruments
        .iter()
        .map(|i| ((i.exchange.clone(), i.dataset_id.clone()), (i.price_increment, i.amount_increment)))
        .collect()
}

/// The candles of a date and what went into them.
#[derive(Debug, Clone, PartialEq)]
pub struct CandleSet {
    /// Sorted by (exchange, symbol, open time).
    pub candles: Vec<Candle>,
    /// Candles built straight from the trades at 5m, 1h and 1d.
    pub direct: Vec<(Interval, Vec<Candle>)>,
    pub profiles: Vec<FileProfile>,
    /// Trades bucketed into candles.
    pub trades_in_day: u64,
    pub rows_before_day: u64,
    pub rows_after_day: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to read {path}: {source}")]
pub struct CandleError {
    pub path: String,
    #[source]
    pub source: CsvError,
}

const COARSER: [Interval; 3] = [Interval::M5, Interval::H1, Interval::D1];

/// Builds the candles of every file. Files must be verified downloads (see `tardis::download`).
pub fn build(files: &[DownloadedFile], increments: &Increments) -> Result<CandleSet, CandleError> {
    let mut set = CandleSet {
        candles: Vec::new(),
        direct: COARSER.iter().map(|i| (*i, Vec::new())).collect(),
        profiles: Vec::new(),
        trades_in_day: 0,
        rows_before_day: 0,
        rows_after_day: 0,
    };
    let mut ordered: Vec<&DownloadedFile> = files.iter().collect();
    ordered.sort_by(|a, b| (&a.exchange, &a.symbol).cmp(&(&b.exchange, &b.symbol)));
    for file in ordered {
        let (exchange, symbol, day) = (&file.exchange, &file.symbol, file.day);
        let mut minutes = CandleBuilder::new(exchange.clone(), symbol.clone(), day);
        let mut coarser: Vec<CandleBuilder> =
            COARSER.iter().map(|i| CandleBuilder::with_interval(exchange.clone(), symbol.clone(), day, *i)).collect();
        let mut profiler = TradeProfiler::new(
            exchange.clone(),
            symbol.clone(),
            day,
            increments.get(&(exchange.clone(), symbol.clone())).copied(),
        );
        let mut in_day = 0u64;
        let err = |source| CandleError { path: file.path.display().to_string(), source };
        if file.bytes > 0 {
            let handle = std::fs::File::open(&file.path).map_err(|source| err(CsvError::Io { line: 0, source }))?;
            let reader = GzDecoder::new(BufReader::with_capacity(1 << 16, handle));
            let stats = trades_csv::read_trades(reader, exchange, symbol, |line, trade, id| {
                profiler.trade(line, trade, id);
                if minutes.push(trade) == Placement::InDay {
                    in_day += 1;
                    for builder in &mut coarser {
                        builder.push(trade);
                    }
                }
            })
            .map_err(err)?;
            let samples: Vec<(u64, String)> = stats.reject_samples.iter().map(|r| (r.line, r.reason.clone())).collect();
            profiler.rejected(stats.rejected, &samples);
        }
        set.trades_in_day += in_day;
        set.rows_before_day += minutes.before_day();
        set.rows_after_day += minutes.after_day();
        set.candles.extend(minutes.finish());
        for ((_, list), builder) in set.direct.iter_mut().zip(coarser) {
            list.extend(builder.finish());
        }
        set.profiles.push(profiler.finish());
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use market::TradingDay;

    use super::*;
    use crate::tardis::{self, trades_csv::TRADES_HEADER};

    const MINUTE: i64 = 60_000_000;

    fn day() -> TradingDay {
        TradingDay::parse("2024-06-03").expect("a date")
    }

    /// A verified trades file of `rows` (`timestamp offset from the day's start in µs, side, price, amount`),
    /// arriving in the given order, a millisecond apart.
    fn file(dir: &Path, exchange: &str, symbol: &str, rows: &[(i64, &str, f64, f64)]) -> DownloadedFile {
        let (exchange, symbol) = (Exchange::parse(exchange).expect("ok"), Symbol::parse(symbol).expect("ok"));
        let path = dir.join(format!("{exchange}-{symbol}.csv.gz"));
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        writeln!(gz, "{TRADES_HEADER}").expect("written");
        for (n, (offset, side, price, amount)) in rows.iter().enumerate() {
            let time = day().start_us() + offset;
            let arrival = day().start_us() + 1000 * n as i64;
            writeln!(gz, "{exchange},{symbol},{time},{arrival},{n},{side},{price},{amount}").expect("written");
        }
        std::fs::write(&path, gz.finish().expect("gzip")).expect("written");
        tardis::inspect(&path, &exchange, &symbol, day()).expect("a valid file")
    }

    fn known(pairs: &[(&str, &str)]) -> Increments {
        pairs
            .iter()
            .map(|(e, s)| ((Exchange::parse(e).expect("ok"), Symbol::parse(s).expect("ok")), (0.5, 1.0)))
            .collect()
    }

    #[test]
    fn a_file_becomes_minute_candles_of_its_date_and_the_rows_outside_it_are_counted_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rows = [
            (-1_000_000, "buy", 90.0, 5.0), // a late trade of the day before
            (1_000_000, "buy", 100.0, 1.0),
            (30_000_000, "unknown", 95.0, 1.0),
            (2_000_000, "sell", 105.0, 2.0), // arrives after a later trade
            (5 * MINUTE + 1, "buy", 110.0, 3.0),
            (day().end_us() - day().start_us() + 1, "sell", 120.0, 1.0), // spills into the next day
        ];
        let files = [file(dir.path(), "binance-futures", "BTCUSDT", &rows)];
        let set = build(&files, &known(&[("binance-futures", "BTCUSDT")])).expect("built");
        assert_eq!((set.trades_in_day, set.rows_before_day, set.rows_after_day), (4, 1, 1));
        assert_eq!(set.candles.len(), 2, "{:?}", set.candles);
        let first = &set.candles[0];
        assert_eq!(first.open_time_us, day().start_us());
        assert_eq!((first.open, first.high, first.low, first.close), (100.0, 105.0, 95.0, 95.0));
        assert_eq!((first.trade_count, first.volume, first.buy_volume, first.sell_volume), (3, 4.0, 1.0, 2.0));
        assert_eq!(set.candles[1].open_time_us, day().start_us() + 5 * MINUTE);
        // The coarser intervals straight from the trades: 5m has both minutes apart, 1h and 1d one candle each.
        let counts: Vec<(Interval, usize, u64)> =
            set.direct.iter().map(|(i, c)| (*i, c.len(), c.iter().map(|c| c.trade_count).sum())).collect();
        assert_eq!(counts, [(Interval::M5, 2, 4), (Interval::H1, 1, 4), (Interval::D1, 1, 4)]);
        let profile = &set.profiles[0];
        assert_eq!((profile.rows, profile.rows_before_day, profile.rows_after_day), (6, 1, 1));
        assert!(profile.grid_checked);
        assert_eq!(profile.arrival_regressions, 0, "rows arrive in file order");
    }

    #[test]
    fn files_are_built_in_exchange_and_symbol_order_whatever_order_they_come_in() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = [
            file(dir.path(), "deribit", "BTC-PERPETUAL", &[(MINUTE, "buy", 60_000.0, 10.0)]),
            file(dir.path(), "binance-futures", "ETHUSDT", &[(2 * MINUTE, "sell", 3_000.0, 1.0)]),
            file(dir.path(), "binance-futures", "BTCUSDT", &[(3 * MINUTE, "buy", 60_000.0, 1.0)]),
        ];
        let set = build(&files, &known(&[])).expect("built");
        let order: Vec<(&str, &str)> = set.candles.iter().map(|c| (c.exchange.as_str(), c.symbol.as_str())).collect();
        assert_eq!(
            order,
            [("binance-futures", "BTCUSDT"), ("binance-futures", "ETHUSDT"), ("deribit", "BTC-PERPETUAL")]
        );
        let profiled: Vec<&str> = set.profiles.iter().map(|p| p.symbol.as_str()).collect();
        assert_eq!(profiled, ["BTCUSDT", "ETHUSDT", "BTC-PERPETUAL"]);
        assert!(set.profiles.iter().all(|p| !p.grid_checked), "no increments known: no grid check");
        assert_eq!(set.trades_in_day, 3);
    }

    #[test]
    fn an_empty_file_is_a_day_without_candles_but_with_a_profile() {
        let dir = tempfile::tempdir().expect("temp dir");
        // What a download of a day without trades leaves when the body is empty: a file of no bytes at all.
        let mut empty = file(dir.path(), "bitmex", "XBTUSD", &[]);
        std::fs::write(&empty.path, b"").expect("emptied");
        empty.bytes = 0;
        let set = build(&[empty], &known(&[])).expect("built");
        assert!(set.candles.is_empty() && set.direct.iter().all(|(_, c)| c.is_empty()));
        assert_eq!(set.profiles.len(), 1);
        assert_eq!(set.trades_in_day, 0);
    }

    #[test]
    fn increments_are_keyed_by_the_symbol_trade_files_carry() {
        let instrument = Instrument {
            exchange: Exchange::parse("deribit").expect("ok"),
            id: "BTC-PERPETUAL".to_owned(),
            dataset_id: Symbol::parse("BTC-PERPETUAL").expect("ok"),
            base_currency: "BTC".to_owned(),
            quote_currency: "USD".to_owned(),
            kind: market::InstrumentKind::Perpetual,
            contract_type: None,
            active: true,
            available_since: chrono::DateTime::UNIX_EPOCH,
            available_to: None,
            price_increment: 0.5,
            amount_increment: 10.0,
            min_trade_amount: 10.0,
            inverse: true,
            contract_multiplier: None,
        };
        let found = increments(&[instrument]);
        let key = (Exchange::parse("deribit").expect("ok"), Symbol::parse("BTC-PERPETUAL").expect("ok"));
        assert_eq!(found.get(&key), Some(&(0.5, 10.0)));
    }
}
