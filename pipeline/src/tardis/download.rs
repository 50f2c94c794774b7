//! Downloading one day's trades file: the body streamed to disk, then read through once by a caller's
//! pass (which verifies it: gzip CRC and length, CSV header and rows), and only then moved into place, so
//! a file at its final path has been read whole.
//!
//! A truncated or corrupt body is downloaded again. Memory does not grow with file size: the body is
//! written through a buffer, and the pass streams the file back through the decoder (on a second thread,
//! while another parses). The pipeline's pass also builds the file's candles (`candles::download`), so a
//! run decompresses and parses each file once. The file is not synced to disk before the rename: nothing
//! trusts a file on disk without reading it through again (a run downloads afresh; re-validation reads
//! every file it reuses), so a file a power cut tore is found, and fetched again, by the next reader.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::read::GzDecoder;
use market::{Exchange, Symbol, Trade, TradingDay};
use tokio::io::AsyncWriteExt;
use url::Url;

use super::TardisError;
use super::client::TardisClient;
use super::trades_csv::{self, CsvError, ReadStats};
use crate::retry::Attempt;

/// A verified trades file on disk.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DownloadedFile {
    pub exchange: Exchange,
    pub symbol: Symbol,
    pub day: TradingDay,
    pub path: PathBuf,
    /// Size of the gzip file.
    pub bytes: u64,
    pub stats: ReadStats,
    /// Rows whose exchange time is before the day (late trades of the day before).
    pub rows_before_day: u64,
    /// Rows whose exchange time is after the day (clock skew).
    pub rows_after_day: u64,
    /// HTTP attempts it took.
    pub attempts: u32,
}

/// Where the trades file of (exchange, symbol, day) lives under `data_dir`.
pub fn trades_path(data_dir: &Path, exchange: &Exchange, symbol: &Symbol, day: TradingDay) -> PathBuf {
    data_dir.join("trades").join(exchange.as_str()).join(day.to_string()).join(format!("{symbol}.csv.gz"))
}

/// What one pass over a whole trades file found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileRead {
    pub stats: ReadStats,
    /// Rows whose exchange time is before the day.
    pub rows_before_day: u64,
    /// Rows whose exchange time is after the day.
    pub rows_after_day: u64,
}

/// One pass over the gzip trades file at `path`, calling `on_trade(line, trade, id)` for every valid row in
/// file order: fails on a bad gzip (magic, CRC, length, truncation) or header. Rows whose structure is broken
/// are counted in `stats` (`first_malformed`), not failed on: a download fails on them ([`whole`]), while
/// `pipeline candles` reports them. Zero bytes is not a gzip file: a day without trades is an empty *gzip*.
/// Where the rows fall against the day is the caller's to count (the candle builders already do).
pub fn read_file(
    path: &Path,
    exchange: &Exchange,
    symbol: &Symbol,
    on_trade: impl FnMut(u64, &Trade, &[u8]),
) -> Result<ReadStats, CsvError> {
    let file = std::fs::File::open(path).map_err(|source| CsvError::Io { line: 0, source })?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut magic = [0u8; 2];
    let n = read_prefix(&mut reader, &mut magic).map_err(|source| CsvError::Io { line: 0, source })?;
    if n == 0 {
        let empty = "0 bytes, not a gzip file (a day without trades is an empty gzip, not an empty body)";
        return Err(CsvError::Io { line: 0, source: std::io::Error::other(empty) });
    }
    if n < 2 || magic != [0x1f, 0x8b] {
        return Err(CsvError::Io { line: 0, source: std::io::Error::other("not a gzip file (bad magic bytes)") });
    }
    let chained = std::io::Cursor::new(magic).chain(reader);
    trades_csv::read_trades_in_background(GzDecoder::new(chained), exchange, symbol, on_trade)
}

/// The verifying pass alone: [`read_file`], counting the rows before and after `day`.
fn verify(path: &Path, exchange: &Exchange, symbol: &Symbol, day: TradingDay) -> Result<FileRead, CsvError> {
    let (start, end) = (day.start_us(), day.end_us());
    let (mut before, mut after) = (0, 0);
    let stats = read_file(path, exchange, symbol, |_, t, _| {
        if t.exchange_ts_us < start {
            before += 1;
        } else if t.exchange_ts_us >= end {
            after += 1;
        }
    })?;
    Ok(FileRead { stats, rows_before_day: before, rows_after_day: after })
}

/// `read` if the file is whole: no row torn in its structure.
pub fn whole(read: FileRead) -> Result<FileRead, CsvError> {
    match &read.stats.first_malformed {
        Some(row) => Err(CsvError::Malformed { line: row.line, reason: row.reason.clone() }),
        None => Ok(read),
    }
}

fn read_prefix(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Re-reads a trades file already on disk (from an earlier run) and returns what a download would have
/// reported. Used to re-validate a date without downloading it again.
pub fn inspect(path: &Path, exchange: &Exchange, symbol: &Symbol, day: TradingDay) -> Result<DownloadedFile, CsvError> {
    let read = whole(verify(path, exchange, symbol, day)?)?;
    Ok(downloaded(path, exchange, symbol, day, read, 0))
}

/// The record of the whole file at `path`, read as `read`, `attempts` HTTP attempts after it was asked for.
pub fn downloaded(
    path: &Path,
    exchange: &Exchange,
    symbol: &Symbol,
    day: TradingDay,
    read: FileRead,
    attempts: u32,
) -> DownloadedFile {
    DownloadedFile {
        exchange: exchange.clone(),
        symbol: symbol.clone(),
        day,
        path: path.to_path_buf(),
        bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
        stats: read.stats,
        rows_before_day: read.rows_before_day,
        rows_after_day: read.rows_after_day,
        attempts,
    }
}

/// A pass over a downloaded file, run on a blocking thread: what it found, and what else it built.
pub type Pass<R> = Arc<dyn Fn(&Path) -> Result<(FileRead, R), CsvError> + Send + Sync>;

impl TardisClient {
    /// The URL of the trades file of (exchange, symbol, day) in the datasets API.
    pub fn trades_url(&self, exchange: &Exchange, symbol: &Symbol, day: TradingDay) -> Url {
        Self::url(
            &self.config().datasets_url,
            &[
                exchange.as_str(),
                "trades",
                &format!("{:04}", day.year()),
                &format!("{:02}", day.month()),
                &format!("{:02}", day.day()),
                &format!("{symbol}.csv.gz"),
            ],
        )
    }

    /// Downloads and verifies the trades file of (exchange, symbol, day) into `data_dir`, replacing any
    /// previous copy atomically.
    pub async fn download_trades(
        &self,
        exchange: &Exchange,
        symbol: &Symbol,
        day: TradingDay,
        data_dir: &Path,
    ) -> Result<DownloadedFile, TardisError> {
        let (ex, sy) = (exchange.clone(), symbol.clone());
        let pass: Pass<()> = Arc::new(move |path| Ok((verify(path, &ex, &sy, day)?, ())));
        Ok(self.download_trades_with(exchange, symbol, day, data_dir, pass).await?.0)
    }

    /// [`TardisClient::download_trades`] with the file read through by `pass` (which must read it whole: its
    /// errors and torn rows are what fetch the body again), returning what the pass built as well.
    pub async fn download_trades_with<R: Send + 'static>(
        &self,
        exchange: &Exchange,
        symbol: &Symbol,
        day: TradingDay,
        data_dir: &Path,
        pass: Pass<R>,
    ) -> Result<(DownloadedFile, R), TardisError> {
        let url = self.trades_url(exchange, symbol, day);
        let dest = trades_path(data_dir, exchange, symbol, day);
        let dir = dest.parent().expect("trades paths have a parent directory").to_path_buf();
        tokio::fs::create_dir_all(&dir).await.map_err(|source| TardisError::Io { path: dir.clone(), source })?;
        let partial = dest.with_extension(format!("gz.partial-{}", std::process::id()));

        let url_ref = &url;
        let partial_ref = &partial;
        let pass_ref = &pass;
        let result = self
            .with_retries(url_ref, |attempt| async move {
                let mut response = self.send(url_ref, attempt).await?;
                let io = |source| Attempt::Final(TardisError::Io { path: partial_ref.clone(), source });
                let file = tokio::fs::File::create(partial_ref).await.map_err(io)?;
                // Each write to a tokio file is a hop to a blocking thread: a megabyte at a time, not a chunk.
                let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
                let mut bytes: u64 = 0;
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            bytes += chunk.len() as u64;
                            file.write_all(&chunk).await.map_err(io)?;
                        }
                        Ok(None) => break,
                        Err(err) => {
                            return Err(Attempt::retry(format!("body interrupted after {bytes} bytes: {err}")));
                        }
                    }
                }
                file.shutdown().await.map_err(io)?;
                drop(file);

                let (path, pass) = (partial_ref.clone(), Arc::clone(pass_ref));
                let read = tokio::task::spawn_blocking(move || pass(&path)).await.map_err(|err| {
                    Attempt::Final(TardisError::Io { path: partial_ref.clone(), source: std::io::Error::other(err) })
                })?;
                match read.and_then(|(read, built)| Ok((whole(read)?, built))) {
                    Ok((read, built)) => Ok((read, built, attempt)),
                    // A body that does not decompress is a transport accident: fetch it again.
                    Err(CsvError::Io { line, source }) => {
                        Err(Attempt::retry(format!("corrupt or truncated gzip ({bytes} bytes, line {line}): {source}")))
                    }
                    // Torn rows in a whole gzip: a bad copy on the way (fetch it again), or a bad file at the
                    // source (the retries run out and the date fails, naming the row).
                    Err(CsvError::Malformed { line, reason }) => {
                        Err(Attempt::retry(format!("malformed row at line {line} ({reason})")))
                    }
                    Err(err @ CsvError::Header { .. }) => {
                        Err(Attempt::Final(TardisError::BadFile { url: url_ref.to_string(), reason: err.to_string() }))
                    }
                }
            })
            .await;

        let (read, built, attempts) = match result {
            Ok(ok) => ok,
            Err(err) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(err);
            }
        };
        tokio::fs::rename(&partial, &dest).await.map_err(|source| TardisError::Io { path: dest.clone(), source })?;
        let file = downloaded(&dest, exchange, symbol, day, read, attempts);
        tracing::debug!(%exchange, %symbol, %day, bytes = file.bytes, rows = file.stats.rows, attempts, "Trades file downloaded.");
        Ok((file, built))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn ids() -> (Exchange, Symbol, TradingDay) {
        let day = TradingDay::parse("2024-06-01").expect("valid day");
        (Exchange::parse("bitmex").expect("ok"), Symbol::parse("XBTUSD").expect("ok"), day)
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).expect("in memory");
        encoder.finish().expect("in memory")
    }

    #[test]
    fn zero_bytes_is_not_a_day_without_trades_but_an_empty_gzip_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (exchange, symbol, day) = ids();
        let path = dir.path().join("XBTUSD.csv.gz");
        std::fs::write(&path, b"").expect("written");
        let err = inspect(&path, &exchange, &symbol, day).expect_err("0 bytes");
        assert!(err.to_string().contains("0 bytes, not a gzip file"), "{err}");
        std::fs::write(&path, gzip("")).expect("written");
        assert_eq!(inspect(&path, &exchange, &symbol, day).expect("a quiet day").stats.rows, 0);
    }

    #[test]
    fn a_torn_row_fails_verification_naming_its_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (exchange, symbol, day) = ids();
        let path = dir.path().join("XBTUSD.csv.gz");
        let text = format!(
            "{}\nbitmex,XBTUSD,1717200000000000,1717200000001000,1,buy,67000.1,0.01\nbitmex,XBTUSD,171\n",
            trades_csv::TRADES_HEADER
        );
        std::fs::write(&path, gzip(&text)).expect("written");
        let err = inspect(&path, &exchange, &symbol, day).expect_err("torn");
        assert_eq!(err.to_string(), "line 3 is malformed: expected 8 fields, found 3");
    }
}
