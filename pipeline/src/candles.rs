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
