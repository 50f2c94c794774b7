//! The candles of a date: 1-minute candles from its trades files, with the per-file profile (grids,
//! duplicate ids, arrival order) and candles built directly at coarser intervals, which validation compares
//! with roll-ups of the 1-minute candles.
//!
//! A run builds each file's candles in the same pass that verifies the downloaded file ([`download`]; on
//! disk, [`inspect`]); the candles stage then only merges them ([`assemble`]). [`build`] reads files again,
//! for files edited after their download (the harness's defects) and the benchmarks.
//!
//! Files are streamed (constant memory per file, plus the file's trade ids, a few bits each, for
//! duplicate detection); only trades whose exchange time falls inside the date are bucketed. Rows with an
//! exchange time before the date (Tardis splits files by arrival time, so a file starts with late trades of
//! the previous day) and after it are counted and reported, never attributed to another date: a date's
//! partition is written only by that date's run.
//!
//! Each file is decompressed on one thread while another parses it and builds its candles. A run's
//! downloads overlap, so their passes share the cores; [`build`] spreads a day's files over the cores the
//! process may use (one file per worker at a time). The result does not depend on the order files are read
//! in or the number of workers: files are merged in (exchange, symbol) order.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flate2::read::GzDecoder;
use market::candle::Placement;
use market::checks::{FileProfile, TradeProfiler};
use market::{Candle, CandleBuilder, Exchange, Instrument, Interval, Symbol, Trade, TradingDay};

use crate::tardis::trades_csv::{self, CsvError, ReadStats};
use crate::tardis::{self, DownloadedFile, FileRead, Pass, TardisClient, TardisError};

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

impl CandleError {
    /// What a failure to read the file at `path` becomes.
    fn reading(path: &Path) -> impl Fn(CsvError) -> CandleError + Copy + '_ {
        move |source| CandleError { path: path.display().to_string(), source }
    }
}

const COARSER: [Interval; 3] = [Interval::M5, Interval::H1, Interval::D1];

/// A downloaded trades file and its candles, built in the pass that verified it.
#[derive(Debug, Clone, PartialEq)]
pub struct DayFile {
    pub file: DownloadedFile,
    pub candles: FileCandles,
}

/// The builders one file's trades go through: 1-minute and coarser candles, and the file's profile.
struct FileBuilder {
    minutes: CandleBuilder,
    coarser: [CandleBuilder; 3],
    profiler: TradeProfiler,
    trades_in_day: u64,
}

impl FileBuilder {
    fn new(exchange: &Exchange, symbol: &Symbol, day: TradingDay, increments: Option<(f64, f64)>) -> FileBuilder {
        FileBuilder {
            minutes: CandleBuilder::new(exchange.clone(), symbol.clone(), day),
            coarser: COARSER.map(|i| CandleBuilder::with_interval(exchange.clone(), symbol.clone(), day, i)),
            profiler: TradeProfiler::new(exchange.clone(), symbol.clone(), day, increments),
            trades_in_day: 0,
        }
    }

    fn trade(&mut self, line: u64, trade: &Trade, id: &[u8]) {
        self.profiler.trade(line, trade, id);
        if self.minutes.push(trade) == Placement::InDay {
            self.trades_in_day += 1;
            for builder in &mut self.coarser {
                builder.push(trade);
            }
        }
    }

    fn finish(mut self, stats: Option<&ReadStats>) -> FileCandles {
        if let Some(stats) = stats {
            let samples: Vec<(u64, String)> = stats.reject_samples.iter().map(|r| (r.line, r.reason.clone())).collect();
            self.profiler.rejected(stats.rejected, &samples);
        }
        let (rows_before_day, rows_after_day) = (self.minutes.before_day(), self.minutes.after_day());
        let [m5, h1, d1] = self.coarser.map(CandleBuilder::finish);
        FileCandles {
            candles: self.minutes.finish(),
            direct: [(Interval::M5, m5), (Interval::H1, h1), (Interval::D1, d1)],
            profile: self.profiler.finish(),
            trades_in_day: self.trades_in_day,
            rows_before_day,
            rows_after_day,
        }
    }
}

/// The one pass over a trades file: read through (as a download verifies it) while its candles are built.
fn pass(
    path: &Path,
    exchange: &Exchange,
    symbol: &Symbol,
    day: TradingDay,
    increments: Option<(f64, f64)>,
) -> Result<(FileRead, FileCandles), CsvError> {
    let mut builder = FileBuilder::new(exchange, symbol, day, increments);
    let stats = tardis::read_file(path, exchange, symbol, |line, trade, id| builder.trade(line, trade, id))?;
    let candles = builder.finish(Some(&stats));
    // The minute builder has counted the rows outside the day: the pass's record takes its counts.
    let read = FileRead { stats, rows_before_day: candles.rows_before_day, rows_after_day: candles.rows_after_day };
    Ok((read, candles))
}

/// The candles of the trades file at `path` (gzip CSV) of (exchange, symbol, day): what the stage builds of
/// each file, and what `pipeline candles` runs. `increments`: (tick, lot) when known, to check the grids.
/// Torn rows are counted as rejected here, not failed on.
pub fn build_file(
    path: &Path,
    exchange: &Exchange,
    symbol: &Symbol,
    day: TradingDay,
    increments: Option<(f64, f64)>,
) -> Result<FileCandles, CandleError> {
    let err = CandleError::reading(path);
    // A file of no bytes at all is a day without trades (what an empty body leaves).
    let empty = std::fs::metadata(path).map_err(|source| err(CsvError::Io { line: 0, source }))?.len() == 0;
    if empty {
        return Ok(FileBuilder::new(exchange, symbol, day, increments).finish(None));
    }
    Ok(pass(path, exchange, symbol, day, increments).map_err(err)?.1)
}

/// Downloads the trades file of (exchange, symbol, day) into `data_dir` and builds its candles in the pass
/// that verifies it: the candles stage's work, done as each file arrives (see `tardis::download`).
pub async fn download(
    tardis: &TardisClient,
    exchange: &Exchange,
    symbol: &Symbol,
    day: TradingDay,
    data_dir: &Path,
    increments: Option<(f64, f64)>,
) -> Result<DayFile, TardisError> {
    let (ex, sy) = (exchange.clone(), symbol.clone());
    let build: Pass<FileCandles> = Arc::new(move |path| pass(path, &ex, &sy, day, increments));
    let (file, candles) = tardis.download_trades_with(exchange, symbol, day, data_dir, build).await?;
    Ok(DayFile { file, candles })
}

/// A trades file already on disk, verified as a download would be, with its candles, in one pass.
pub fn inspect(
    path: &Path,
    exchange: &Exchange,
    symbol: &Symbol,
    day: TradingDay,
    increments: Option<(f64, f64)>,
) -> Result<DayFile, CandleError> {
    let err = CandleError::reading(path);
    let (read, candles) = pass(path, exchange, symbol, day, increments).map_err(err)?;
    let read = tardis::whole(read).map_err(err)?;
    Ok(DayFile { file: tardis::downloaded(path, exchange, symbol, day, read, 0), candles })
}

/// The candles of a day from its files' candles, already built: merged in (exchange, symbol) order.
pub fn assemble(files: &[DayFile]) -> CandleSet {
    let mut ordered: Vec<&DayFile> = files.iter().collect();
    ordered.sort_by(|a, b| (&a.file.exchange, &a.file.symbol).cmp(&(&b.file.exchange, &b.file.symbol)));
    merge(ordered.into_iter().map(|f| f.candles.clone()))
}

/// One set of the files' candles, in the order given.
fn merge(files: impl IntoIterator<Item = FileCandles>) -> CandleSet {
    let mut set = CandleSet::empty();
    for file in files {
        set.trades_in_day += file.trades_in_day;
        set.rows_before_day += file.rows_before_day;
        set.rows_after_day += file.rows_after_day;
        set.candles.extend(file.candles);
        for ((_, list), (_, built)) in set.direct.iter_mut().zip(file.direct) {
            list.extend(built);
        }
        set.profiles.push(file.profile);
    }
    set
}

/// What a trades file says it is, from its first row: exchange, symbol, and the date its rows arrived on
/// (Tardis splits files by arrival time, so the first row's `local_timestamp` is on the file's date).
/// `None` for a file without rows.
pub fn identify_file(path: &Path) -> Result<Option<(Exchange, Symbol, TradingDay)>, CandleError> {
    let err = CandleError::reading(path);
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

    // A file after a failed one was never read: the failure is what the stage reports.
    let built: Vec<FileCandles> = results
        .into_iter()
        .map_while(|slot| slot.into_inner().expect("no worker panics while holding it"))
        .collect::<Result<_, _>>()?;
    Ok(merge(built))
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
            // The download stage's way: one pass per file (verifying it and building its candles), merged.
            let passed: Vec<DayFile> = files
                .iter()
                .rev()
                .map(|f| {
                    let known = increments.get(&(f.exchange.clone(), f.symbol.clone())).copied();
                    inspect(&f.path, &f.exchange, &f.symbol, f.day, known).expect("a whole file")
                })
                .collect();
            assert!(assemble(&passed) == expected, "seed {seed}: the download passes' candles differ");
            let recorded: Vec<&DownloadedFile> = passed.iter().map(|p| &p.file).collect();
            assert_eq!(recorded, files.iter().rev().collect::<Vec<_>>(), "seed {seed}: what the pass verified");
        }
    }

    #[test]
    fn the_candles_of_a_verifying_pass_need_no_second_read_and_a_torn_file_fails_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rows = [(MINUTE, "buy", 60_000.0, 1.0), (2 * MINUTE, "sell", 60_001.0, 2.0)];
        let files =
            [file(dir.path(), "bitmex", "XBTUSD", &rows), file(dir.path(), "binance-futures", "BTCUSDT", &rows)];
        let increments = known(&[("bitmex", "XBTUSD"), ("binance-futures", "BTCUSDT")]);
        let expected = build(&files, &increments).expect("built");
        let passed: Vec<DayFile> = files
            .iter()
            .map(|f| inspect(&f.path, &f.exchange, &f.symbol, f.day, Some((0.5, 1.0))).expect("whole"))
            .collect();
        for f in &files {
            std::fs::remove_file(&f.path).expect("removed");
        }
        assert_eq!(assemble(&passed), expected, "merged from the passes alone, the files gone");

        // A torn row: `pipeline candles` counts it as rejected, a verifying pass refuses the file.
        let torn = dir.path().join("torn.csv.gz");
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        writeln!(gz, "{TRADES_HEADER}\nbitmex,XBTUSD,{0},{0},1,buy,1.5,1\nbitmex,XBTUSD,17", day().start_us())
            .expect("ok");
        std::fs::write(&torn, gz.finish().expect("gzip")).expect("written");
        let (exchange, symbol) = (Exchange::parse("bitmex").expect("ok"), Symbol::parse("XBTUSD").expect("ok"));
        let built = build_file(&torn, &exchange, &symbol, day(), None).expect("tolerated");
        assert_eq!((built.trades_in_day, built.profile.rejected), (1, 1));
        let err = inspect(&torn, &exchange, &symbol, day(), None).expect_err("torn");
        assert!(err.to_string().contains("line 3 is malformed"), "{err}");
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
