//! The candles stage: 1-minute candles of a date from its verified trades files on disk, with the
//! per-file profile (grids, duplicate ids, arrival order) and candles built directly at coarser
//! intervals, which validation compares with roll-ups of the 1-minute candles.
//!
//! Files are streamed (constant memory per file, plus the file's trade ids, a few bits each, for
//! duplicate detection); only trades whose exchange time falls inside the date are bucketed. Rows with an
//! exchange time before the date (Tardis splits files by arrival time, so a file starts with late trades of
//! the previous day) and after it are counted and reported, never attributed to another date: a date's
//! partition is written only by that date's run.
//!
//! Each file is decompressed on one thread while another parses it and builds its candles; the files of a
//! day are spread over the cores the process may use (one file per worker at a time). The result does not
//! depend on the number of workers: files are merged in (exchange, symbol) order.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::read::GzDecoder;
use market::candle::Placement;
use market::checks::{FileProfile, TradeProfiler};
use market::{Candle, CandleBuilder, Exchange, Instrument, Interval, Symbol, TradingDay};

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

/// The candles of one trades file and what went into them.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCandles {
    /// 1-minute candles, by open time.
    pub candles: Vec<Candle>,
    /// Candles built straight from the trades at 5m, 1h and 1d, in that order.
    pub direct: [(Interval, Vec<Candle>); 3],
    pub profile: FileProfile,
    pub trades_in_day: u64,
    pub rows_before_day: u64,
    pub rows_after_day: u64,
}

impl CandleSet {
    /// No file yet: every interval present, no candles.
    fn empty() -> CandleSet {
        CandleSet {
            candles: Vec::new(),
            direct: COARSER.iter().map(|i| (*i, Vec::new())).collect(),
            profiles: Vec::new(),
            trades_in_day: 0,
            rows_before_day: 0,
            rows_after_day: 0,
        }
    }
}

impl FileCandles {
    /// The candles at `interval`: the 1-minute ones, or those built straight from the trades.
    pub fn at(&self, interval: Interval) -> &[Candle] {
        match interval {
            Interval::M1 => &self.candles,
            coarser => self.direct.iter().find(|(i, _)| *i == coarser).map_or(&[], |(_, c)| c.as_slice()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("failed to read {path}: {source}")]
pub struct CandleError {
    pub path: String,
    #[source]
    pub source: CsvError,
}

const COARSER: [Interval; 3] = [Interval::M5, Interval::H1, Interval::D1];

/// The candles of the trades file at `path` (gzip CSV) of (exchange, symbol, day): what the stage does with
/// each file, and what `pipeline candles` runs. `increments`: (tick, lot) when known, to check the grids.
pub fn build_file(
    path: &Path,
    exchange: &Exchange,
    symbol: &Symbol,
    day: TradingDay,
    increments: Option<(f64, f64)>,
) -> Result<FileCandles, CandleError> {
    let err = |source| CandleError { path: path.display().to_string(), source };
    let handle = std::fs::File::open(path).map_err(|source| err(CsvError::Io { line: 0, source }))?;
    // A file of no bytes at all is a day without trades (what an empty body leaves).
    let empty = handle.metadata().map_err(|source| err(CsvError::Io { line: 0, source }))?.len() == 0;
    let mut minutes = CandleBuilder::new(exchange.clone(), symbol.clone(), day);
    let mut coarser = COARSER.map(|i| CandleBuilder::with_interval(exchange.clone(), symbol.clone(), day, i));
    let mut profiler = TradeProfiler::new(exchange.clone(), symbol.clone(), day, increments);
    let mut trades_in_day = 0u64;
    if !empty {
        let reader = GzDecoder::new(BufReader::with_capacity(1 << 16, handle));
        let stats = trades_csv::read_trades_in_background(reader, exchange, symbol, |line, trade, id| {
            profiler.trade(line, trade, id);
            if minutes.push(trade) == Placement::InDay {
                trades_in_day += 1;
                for builder in &mut coarser {
                    builder.push(trade);
                }
            }
        })
        .map_err(err)?;
        let samples: Vec<(u64, String)> = stats.reject_samples.iter().map(|r| (r.line, r.reason.clone())).collect();
        profiler.rejected(stats.rejected, &samples);
    }
    let (rows_before_day, rows_after_day) = (minutes.before_day(), minutes.after_day());
    let [m5, h1, d1] = coarser.map(CandleBuilder::finish);
    Ok(FileCandles {
        candles: minutes.finish(),
        direct: [(Interval::M5, m5), (Interval::H1, h1), (Interval::D1, d1)],
        profile: profiler.finish(),
        trades_in_day,
        rows_before_day,
        rows_after_day,
    })
}

/// What a trades file says it is, from its first row: exchange, symbol, and the date its rows arrived on
/// (Tardis splits files by arrival time, so the first row's `local_timestamp` is on the file's date).
/// `None` for a file without rows.
pub fn identify_file(path: &Path) -> Result<Option<(Exchange, Symbol, TradingDay)>, CandleError> {
    let err = |source| CandleError { path: path.display().to_string(), source };
    let handle = std::fs::File::open(path).map_err(|source| err(CsvError::Io { line: 0, source }))?;
    let mut lines = std::io::BufRead::lines(BufReader::new(GzDecoder::new(handle)));
    let mut next = |line: u64| lines.next().transpose().map_err(|source| err(CsvError::Io { line, source }));
    let Some(header) = next(1)? else { return Ok(None) };
    if header.trim_end_matches('\r') != trades_csv::TRADES_HEADER {
        return Err(err(CsvError::Header { found: header }));
    }
    let Some(row) = next(2)? else { return Ok(None) };
    let malformed = |reason: String| err(CsvError::Malformed { line: 2, reason });
    let fields: Vec<&str> = row.trim_end_matches('\r').split(',').collect();
    let [exchange, symbol, _, local, ..] = fields[..] else {
        return Err(malformed(format!("expected 8 fields, found {}", fields.len())));
    };
    let exchange = Exchange::parse(exchange).map_err(|e| malformed(e.to_string()))?;
    let symbol = Symbol::parse(symbol).map_err(|e| malformed(e.to_string()))?;
    let local: i64 = local.parse().map_err(|_| malformed(format!("local_timestamp {local:?} is not an integer")))?;
    // Up to the end of year 9999, in µs since the epoch.
    if !(0..253_402_300_800_000_000).contains(&local) {
        return Err(malformed(format!("local_timestamp {local} is not a date between 1970 and 9999")));
    }
    Ok(Some((exchange, symbol, TradingDay::containing(local))))
}

/// Builds the candles of every file, on as many workers as the process has cores (and files). Files must
/// be verified downloads (see `tardis::download`).
pub fn build(files: &[DownloadedFile], increments: &Increments) -> Result<CandleSet, CandleError> {
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    build_with_workers(files, increments, workers)
}

/// [`build`] on at most `workers` threads (each file also has its decompressing thread).
pub fn build_with_workers(
    files: &[DownloadedFile],
    increments: &Increments,
    workers: usize,
) -> Result<CandleSet, CandleError> {
    let mut ordered: Vec<&DownloadedFile> = files.iter().collect();
    ordered.sort_by(|a, b| (&a.exchange, &a.symbol).cmp(&(&b.exchange, &b.symbol)));
    let one = |file: &DownloadedFile| {
        let known = increments.get(&(file.exchange.clone(), file.symbol.clone())).copied();
        build_file(&file.path, &file.exchange, &file.symbol, file.day, known)
    };
    let results: Vec<Mutex<Option<Result<FileCandles, CandleError>>>> =
        ordered.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(file) = ordered.get(i) else { return };
            let result = one(file);
            let failed = result.is_err();
            *results[i].lock().expect("no worker panics while holding it") = Some(result);
            if failed {
                // The stage fails on the first bad file: the others need not be read.
                next.store(ordered.len(), Ordering::Relaxed);
                return;
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..workers.clamp(1, ordered.len().max(1)) {
            scope.spawn(work);
        }
        work();
    });

    let mut set = CandleSet::empty();
    for slot in results {
        // A file after a failed one was never read: the failure is what the stage reports.
        let Some(result) = slot.into_inner().expect("no worker panics while holding it") else { continue };
        let file = result?;
        set.trades_in_day += file.trades_in_day;
        set.rows_before_day += file.rows_before_day;
        set.rows_after_day += file.rows_after_day;
        set.candles.extend(file.candles);
        for ((_, list), (_, built)) in set.direct.iter_mut().zip(file.direct) {
            list.extend(built);
        }
        set.profiles.push(file.profile);
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

    /// The stage as it was before the byte reader and the workers: one file after the other, read by the
    /// general CSV reader on this thread. The stage must give the very same set.
    fn build_reference(files: &[DownloadedFile], increments: &Increments) -> CandleSet {
        let mut set = CandleSet::empty();
        let mut ordered: Vec<&DownloadedFile> = files.iter().collect();
        ordered.sort_by(|a, b| (&a.exchange, &a.symbol).cmp(&(&b.exchange, &b.symbol)));
        for file in ordered {
            let (exchange, symbol, day) = (&file.exchange, &file.symbol, file.day);
            let mut minutes = CandleBuilder::new(exchange.clone(), symbol.clone(), day);
            let mut coarser: Vec<CandleBuilder> = COARSER
                .iter()
                .map(|i| CandleBuilder::with_interval(exchange.clone(), symbol.clone(), day, *i))
                .collect();
            let known = increments.get(&(exchange.clone(), symbol.clone())).copied();
            let mut profiler = TradeProfiler::new(exchange.clone(), symbol.clone(), day, known);
            let mut in_day = 0u64;
            let handle = std::fs::File::open(&file.path).expect("readable");
            let stats =
                trades_csv::read_trades_reference(GzDecoder::new(handle), exchange, symbol, |line, trade, id| {
                    profiler.trade(line, trade, id);
                    if minutes.push(trade) == Placement::InDay {
                        in_day += 1;
                        for builder in &mut coarser {
                            builder.push(trade);
                        }
                    }
                })
                .expect("a verified file");
            let samples: Vec<(u64, String)> = stats.reject_samples.iter().map(|r| (r.line, r.reason.clone())).collect();
            profiler.rejected(stats.rejected, &samples);
            set.trades_in_day += in_day;
            set.rows_before_day += minutes.before_day();
            set.rows_after_day += minutes.after_day();
            set.candles.extend(minutes.finish());
            for ((_, list), builder) in set.direct.iter_mut().zip(coarser) {
                list.extend(builder.finish());
            }
            set.profiles.push(profiler.finish());
        }
        set
    }

    #[test]
    fn the_stage_equals_the_sequential_general_reader_bit_for_bit_on_generated_days() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (seed, date) in [(1, "2024-06-03"), (42, "2024-06-08"), (7, "2024-02-29")] {
            let day = TradingDay::parse(date).expect("a date");
            let generator = fixtures::Generator::new(seed, fixtures::Universe::default_universe()).with_activity(0.05);
            let mut files = Vec::new();
            let mut increments = Increments::new();
            for spec in generator.universe().exchanges().iter().flat_map(|e| &e.symbols) {
                let (exchange, symbol) = (&spec.instrument.exchange, spec.symbol());
                let Some(gz) = generator.trades_csv_gz(exchange, symbol, day) else { continue };
                let path = dir.path().join(format!("{seed}-{exchange}-{symbol}.csv.gz"));
                std::fs::write(&path, gz).expect("written");
                files.push(tardis::inspect(&path, exchange, symbol, day).expect("a valid file"));
                let i = &spec.instrument;
                increments.insert((exchange.clone(), symbol.clone()), (i.price_increment, i.amount_increment));
            }
            assert!(files.len() >= 10, "a day of the default universe: {}", files.len());
            let expected = build_reference(&files, &increments);
            assert!(expected.trades_in_day > 10_000 && expected.profiles.iter().any(|p| p.duplicate_ids == 0));
            for workers in [1, 2, 5] {
                let built = build_with_workers(&files, &increments, workers).expect("built");
                assert!(built == expected, "seed {seed}, {workers} workers: the sets differ");
            }
        }
    }

    #[test]
    fn a_bad_file_fails_the_stage_naming_it_whatever_the_workers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = file(dir.path(), "binance-futures", "BTCUSDT", &[(MINUTE, "buy", 60_000.0, 1.0)]);
        let bad = file(dir.path(), "bitmex", "XBTUSD", &[(MINUTE, "buy", 60_000.0, 1.0)]);
        let gz = std::fs::read(&bad.path).expect("readable");
        std::fs::write(&bad.path, &gz[..gz.len() - 6]).expect("truncated");
        for workers in [1, 2] {
            let err = build_with_workers(&[bad.clone(), good.clone()], &known(&[]), workers).expect_err("truncated");
            assert!(err.path.ends_with("bitmex-XBTUSD.csv.gz"), "{err}");
        }
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
