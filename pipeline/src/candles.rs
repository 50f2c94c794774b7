//! The candles stage: 1-minute candles of a date from its verified trades files on disk.
//!
//! Files are streamed (constant memory per file); only trades whose exchange time falls inside the
//! date are bucketed. Rows with an exchange time before the date (Tardis splits files by arrival time,
//! so a file starts with late trades of the previous day) and after it are counted and reported, never
//! attributed to another date: a date's partition is written only by that date's run.

use std::io::BufReader;

use flate2::read::GzDecoder;
use market::{Candle, CandleBuilder};

use crate::tardis::DownloadedFile;
use crate::tardis::trades_csv::{self, CsvError};

/// The candles of a date and what went into them.
#[derive(Debug, Clone, PartialEq)]
pub struct CandleSet {
    /// Sorted by (exchange, symbol, open time).
    pub candles: Vec<Candle>,
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

/// Builds the candles of every file. Files must be verified downloads (see `tardis::download`).
pub fn build(files: &[DownloadedFile]) -> Result<CandleSet, CandleError> {
    let mut set = CandleSet { candles: Vec::new(), trades_in_day: 0, rows_before_day: 0, rows_after_day: 0 };
    let mut ordered: Vec<&DownloadedFile> = files.iter().collect();
    ordered.sort_by(|a, b| (&a.exchange, &a.symbol).cmp(&(&b.exchange, &b.symbol)));
    for file in ordered {
        let mut builder = CandleBuilder::new(file.exchange.clone(), file.symbol.clone(), file.day);
        let mut in_day = 0u64;
        let err = |source| CandleError { path: file.path.display().to_string(), source };
        if file.bytes > 0 {
            let handle = std::fs::File::open(&file.path).map_err(|source| err(CsvError::Io { line: 0, source }))?;
            let reader = GzDecoder::new(BufReader::with_capacity(1 << 16, handle));
            trades_csv::read_trades(reader, &file.exchange, &file.symbol, |trade| {
                if builder.push(trade) == market::candle::Placement::InDay {
                    in_day += 1;
                }
            })
            .map_err(err)?;
        }
        set.trades_in_day += in_day;
        set.rows_before_day += builder.before_day();
        set.rows_after_day += builder.after_day();
        set.candles.extend(builder.finish());
    }
    Ok(set)
}
