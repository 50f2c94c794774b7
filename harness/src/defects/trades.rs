//! Trades files as a defective pipeline mishandles them: read as rows of fields, edited, written back as a
//! gzip CSV beside the original and verified as a download would be, so the pipeline's own candle builder
//! then builds from what the defect kept.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use market::TradingDay;
use pipeline::candles::CandleError;
use pipeline::tardis::trades_csv::CsvError;
use pipeline::tardis::{self, DownloadedFile};

/// Field positions of a Tardis trades row (`exchange,symbol,timestamp,local_timestamp,id,side,price,amount`).
pub const TIMESTAMP: usize = 2;
pub const LOCAL_TIMESTAMP: usize = 3;
pub const ID: usize = 4;
pub const SIDE: usize = 5;
pub const PRICE: usize = 6;
pub const AMOUNT: usize = 7;

/// One row of a trades file, split on commas (trades rows have no quoted fields).
pub type Fields = Vec<String>;

fn error(file: &DownloadedFile, source: CsvError) -> CandleError {
    CandleError { path: file.path.display().to_string(), source }
}

fn io(file: &DownloadedFile, line: u64) -> impl Fn(std::io::Error) -> CandleError + '_ {
    move |source| error(file, CsvError::Io { line, source })
}

/// The header line and the rows of `file`, in file order.
pub fn read(file: &DownloadedFile) -> Result<(String, Vec<Fields>), CandleError> {
    let reader = std::fs::File::open(&file.path).map_err(io(file, 0))?;
    let mut lines = BufReader::new(GzDecoder::new(reader)).lines();
    let header = lines.next().transpose().map_err(io(file, 1))?.unwrap_or_default();
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(io(file, n as u64 + 2))?;
        if !line.is_empty() {
            rows.push(line.split(',').map(str::to_owned).collect());
        }
    }
    Ok((header, rows))
}

/// The exchange time of a row in microseconds, if it parses.
pub fn exchange_time(row: &Fields) -> Option<i64> {
    row.get(TIMESTAMP)?.parse().ok()
}

/// Writes `rows` under `header` beside `file` (its name tagged with `tag`) and verifies the result as a
/// download of `day`, which is what the candle builder then reads.
pub fn write(
    file: &DownloadedFile,
    day: TradingDay,
    tag: &str,
    header: &str,
    rows: &[Fields],
) -> Result<DownloadedFile, CandleError> {
    let name = format!("{}.{tag}.{day}.csv.gz", file.symbol);
    let path: PathBuf = file.path.with_file_name(name);
    let out = std::fs::File::create(&path).map_err(io(file, 0))?;
    let mut gz = GzEncoder::new(std::io::BufWriter::new(out), Compression::fast());
    writeln!(gz, "{header}").map_err(io(file, 0))?;
    for row in rows {
        writeln!(gz, "{}", row.join(",")).map_err(io(file, 0))?;
    }
    gz.finish().and_then(|mut w| w.flush()).map_err(io(file, 0))?;
    tardis::inspect(&path, &file.exchange, &file.symbol, day).map_err(|source| error(file, source))
}
