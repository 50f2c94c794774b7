//! Downloading one day's trades file: streamed to disk, verified (gzip CRC and length, CSV header and
//! rows) and only then moved into place, so a file at its final path is always complete.
//!
//! A truncated or corrupt body is downloaded again. Memory does not grow with file size: the body is
//! written chunk by chunk and verified by streaming it back through the decoder (on a second thread, while
//! this one parses). The candles stage reads the file once more: see ARCHITECTURE.md ("One file, two
//! passes") for what that second pass costs and why it is still there.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use market::{Exchange, Symbol, TradingDay};
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

/// Counts of one pass over a verified file.
struct Verified {
    stats: ReadStats,
    before: u64,
    after: u64,
}

/// Decodes a whole gzip trades file from `path`: fails on a bad gzip (CRC, length, truncation), a bad header or
/// a row whose structure is broken. Zero bytes is not a gzip file: a day without trades is an empty *gzip*.
fn verify(path: &Path, exchange: &Exchange, symbol: &Symbol, day: TradingDay) -> Result<Verified, CsvError> {
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
    let (start, end) = (day.start_us(), day.end_us());
    let (mut before, mut after) = (0, 0);
    let stats = trades_csv::read_trades_in_background(GzDecoder::new(chained), exchange, symbol, |_, t, _| {
        if t.exchange_ts_us < start {
            before += 1;
        } else if t.exchange_ts_us >= end {
            after += 1;
        }
    })?;
    if let Some(row) = &stats.first_malformed {
        return Err(CsvError::Malformed { line: row.line, reason: row.reason.clone() });
    }
    Ok(Verified { stats, before, after })
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
    let bytes = std::fs::metadata(path).map_err(|source| CsvError::Io { line: 0, source })?.len();
    let verified = verify(path, exchange, symbol, day)?;
    Ok(DownloadedFile {
        exchange: exchange.clone(),
        symbol: symbol.clone(),
        day,
        path: path.to_path_buf(),
        bytes,
        stats: verified.stats,
        rows_before_day: verified.before,
        rows_after_day: verified.after,
        attempts: 0,
    })
}

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
        let url = self.trades_url(exchange, symbol, day);
        let dest = trades_path(data_dir, exchange, symbol, day);
        let dir = dest.parent().expect("trades paths have a parent directory").to_path_buf();
        tokio::fs::create_dir_all(&dir).await.map_err(|source| TardisError::Io { path: dir.clone(), source })?;
        let partial = dest.with_extension(format!("gz.partial-{}", std::process::id()));

        let url_ref = &url;
        let partial_ref = &partial;
        let result = self
            .with_retries(url_ref, |attempt| async move {
                let mut response = self.send(url_ref, attempt).await?;
                let io = |source| Attempt::Final(TardisError::Io { path: partial_ref.clone(), source });
                let mut file = tokio::fs::File::create(partial_ref).await.map_err(io)?;
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
                file.flush().await.map_err(io)?;
                file.sync_all().await.map_err(io)?;
                drop(file);

                let (path, ex, sy) = (partial_ref.clone(), exchange.clone(), symbol.clone());
                let verified =
                    tokio::task::spawn_blocking(move || verify(&path, &ex, &sy, day)).await.map_err(|err| {
                        Attempt::Final(TardisError::Io {
                            path: partial_ref.clone(),
                            source: std::io::Error::other(err),
                        })
                    })?;
                match verified {
                    Ok(v) => Ok((v, bytes, attempt)),
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

        let (verified, bytes, attempts) = match result {
            Ok(ok) => ok,
            Err(err) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(err);
            }
        };
        tokio::fs::rename(&partial, &dest).await.map_err(|source| TardisError::Io { path: dest.clone(), source })?;
        tracing::debug!(%exchange, %symbol, %day, bytes, rows = verified.stats.rows, attempts, "Trades file downloaded.");
        Ok(DownloadedFile {
            exchange: exchange.clone(),
            symbol: symbol.clone(),
            day,
            path: dest,
            bytes,
            stats: verified.stats,
            rows_before_day: verified.before,
            rows_after_day: verified.after,
            attempts,
        })
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
