//! Replay mode: real Tardis files from a directory laid out like the datasets API,
//! `{dir}/{exchange}/{dataType}/{YYYY}/{MM}/{DD}/{SYMBOL}.csv.gz` (or `.csv`, gzipped when served), with an
//! optional `{dir}/{exchange}/instruments.json` (a Tardis-shaped array), so that captured production files
//! can go through the pipeline.
//!
//! The tree is scanned once at start for the metadata endpoints (exchanges, symbols, data types, days);
//! files are looked up on disk at each request, never cached, and a `.gz` file is served byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use flate2::{Compression, GzBuilder};
use market::{Exchange, Symbol, TradingDay};
use serde_json::Value;

/// Why a replay directory cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read the replay directory {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the replay directory {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("{path} is not a Tardis instruments array: {reason}")]
    Instruments { path: PathBuf, reason: String },
}

/// The scanned tree.
#[derive(Debug, Clone)]
pub(super) struct ReplayDir {
    root: PathBuf,
    exchanges: BTreeMap<Exchange, ReplayExchange>,
}

/// One exchange's files and instruments.
#[derive(Debug, Clone, Default)]
pub(super) struct ReplayExchange {
    /// data type → symbol → days with a file.
    files: BTreeMap<String, BTreeMap<String, BTreeSet<TradingDay>>>,
    /// `instruments.json`, when provided.
    pub(super) instruments: Option<Vec<Value>>,
}

fn read_dir(path: &Path) -> Result<Vec<fs::DirEntry>, ReplayError> {
    let read = |source| ReplayError::Read { path: path.to_owned(), source };
    fs::read_dir(path).map_err(read)?.collect::<Result<Vec<_>, _>>().map_err(read)
}

fn name(entry: &fs::DirEntry) -> String {
    entry.file_name().to_string_lossy().into_owned()
}

/// Directory names that are numbers of exactly `digits` digits.
fn numbered_dirs(path: &Path, digits: usize) -> Result<Vec<(u32, PathBuf)>, ReplayError> {
    Ok(read_dir(path)?
        .into_iter()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| {
            let text = name(&entry);
            let number = (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok());
            Some((number.flatten()?, entry.path()))
        })
        .collect())
}

/// A data type directory name: letters, digits and `_` (`trades`, `incremental_book_L2`).
fn is_data_type_name(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The symbol of a file name, when it is an upper-case dataset id with a served extension.
fn file_symbol(file_name: &str) -> Option<&str> {
    let symbol = file_name.strip_suffix(".csv.gz").or_else(|| file_name.strip_suffix(".csv"))?;
    Symbol::parse(symbol).ok().filter(|s| s.as_str() == symbol).map(|_| symbol)
}

impl ReplayDir {
    pub(super) fn scan(root: &Path) -> Result<ReplayDir, ReplayError> {
        if !root.is_dir() {
            return Err(ReplayError::NotADirectory { path: root.to_owned() });
        }
        let mut exchanges = BTreeMap::new();
        for entry in read_dir(root)? {
            let Ok(exchange) = Exchange::parse(&name(&entry)) else { continue };
            if entry.path().is_dir() {
                exchanges.insert(exchange, ReplayExchange::scan(&entry.path())?);
            }
        }
        Ok(ReplayDir { root: root.to_owned(), exchanges })
    }

    pub(super) fn exchange(&self, exchange: &str) -> Option<&ReplayExchange> {
        self.exchanges.get(&Exchange::parse(exchange).ok()?)
    }

    pub(super) fn exchanges(&self) -> impl Iterator<Item = (&Exchange, &ReplayExchange)> {
        self.exchanges.iter()
    }

    /// The gzip file of a request: the `.csv.gz` as it is on disk, else the `.csv` gzipped now; `None` when
    /// neither exists. The parts must be validated names (they become path components).
    pub(super) fn read(
        &self,
        exchange: &Exchange,
        data_type: &str,
        symbol: &Symbol,
        day: TradingDay,
    ) -> io::Result<Option<Vec<u8>>> {
        let dir = self
            .root
            .join(exchange.as_str())
            .join(data_type)
            .join(format!("{:04}", day.year()))
            .join(format!("{:02}", day.month()))
            .join(format!("{:02}", day.day()));
        match fs::read(dir.join(format!("{symbol}.csv.gz"))) {
            Ok(bytes) => return Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let file = match fs::File::open(dir.join(format!("{symbol}.csv"))) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        // Streamed through the encoder: only the compressed bytes are held.
        let mut encoder = GzBuilder::new().mtime(0).write(Vec::new(), Compression::default());
        io::copy(&mut io::BufReader::new(file), &mut encoder)?;
        encoder.finish().map(Some)
    }
}

impl ReplayExchange {
    fn scan(dir: &Path) -> Result<ReplayExchange, ReplayError> {
        let mut exchange = ReplayExchange::default();
        for entry in read_dir(dir)? {
            let entry_name = name(&entry);
            if entry_name == "instruments.json" {
                exchange.instruments = Some(read_instruments(&entry.path())?);
                continue;
            }
            if !entry.path().is_dir() || !is_data_type_name(&entry_name) {
                continue;
            }
            let mut symbols: BTreeMap<String, BTreeSet<TradingDay>> = BTreeMap::new();
            for (year, year_dir) in numbered_dirs(&entry.path(), 4)? {
                for (month, month_dir) in numbered_dirs(&year_dir, 2)? {
                    for (day, day_dir) in numbered_dirs(&month_dir, 2)? {
                        let Some(day) = i32::try_from(year).ok().and_then(|y| TradingDay::from_ymd(y, month, day))
                        else {
                            continue;
                        };
                        for file in read_dir(&day_dir)? {
                            if let Some(symbol) = file_symbol(&name(&file)) {
                                symbols.entry(symbol.to_owned()).or_default().insert(day);
                            }
                        }
                    }
                }
            }
            if !symbols.is_empty() {
                exchange.files.insert(entry_name, symbols);
            }
        }
        Ok(exchange)
    }

    /// Whether `data_type` has any file for this exchange.
    pub(super) fn has_data_type(&self, data_type: &str) -> bool {
        self.files.contains_key(data_type)
    }

    /// Whether `symbol` has any file of `data_type`.
    pub(super) fn has_symbol(&self, data_type: &str, symbol: &str) -> bool {
        self.files.get(data_type).is_some_and(|symbols| symbols.contains_key(symbol))
    }

    fn all_days(&self) -> impl Iterator<Item = TradingDay> + '_ {
        self.files.values().flat_map(BTreeMap::values).flatten().copied()
    }

    /// The first day with a file.
    pub(super) fn first_day(&self) -> Option<TradingDay> {
        self.all_days().min()
    }

    /// The end of the last day with a file: this exchange's `exportedUntil`.
    pub(super) fn exported_until(&self) -> Option<DateTime<Utc>> {
        self.all_days().max().and_then(|day| DateTime::<Utc>::from_timestamp_micros(day.end_us()))
    }

    /// Every symbol with its first day and data types.
    pub(super) fn symbols(&self) -> BTreeMap<&str, (TradingDay, Vec<&str>)> {
        let mut out: BTreeMap<&str, (TradingDay, Vec<&str>)> = BTreeMap::new();
        for (data_type, symbols) in &self.files {
            for (symbol, days) in symbols {
                let Some(&first) = days.first() else { continue };
                let entry = out.entry(symbol.as_str()).or_insert((first, Vec::new()));
                entry.0 = entry.0.min(first);
                entry.1.push(data_type.as_str());
            }
        }
        out
    }
}

fn read_instruments(path: &Path) -> Result<Vec<Value>, ReplayError> {
    let invalid = |reason: String| ReplayError::Instruments { path: path.to_owned(), reason };
    let bytes = fs::read(path).map_err(|source| ReplayError::Read { path: path.to_owned(), source })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|err| invalid(err.to_string()))?;
    let Value::Array(items) = value else {
        return Err(invalid("expected a JSON array of instruments".to_owned()));
    };
    if let Some(position) = items.iter().position(|item| item.get("id").and_then(Value::as_str).is_none()) {
        return Err(invalid(format!("instrument {position} has no string \"id\"")));
    }
    Ok(items)
}
