//! Where the mock's files and metadata come from: a seeded [`Generator`] (files generated per request, a
//! bounded cache for repeats) or a replay directory of real files. Both answer the same questions, so the
//! routes, auth and faults do not care which one is behind them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use fixtures::{DataType, ExchangeSpec, Generator, SymbolGroup};
use market::{Exchange, InstrumentKind, Symbol, TradingDay};
use serde_json::Value;

use super::options::{QuietFile, TardisOptions};
use super::paths::DatasetPath;
use super::replay::ReplayDir;
use super::wire::{self, ExchangeEntry, SymbolEntry};

/// A status and a message for the `{code, message}` body.
pub(super) type Failure = (u16, String);

fn not_found(message: String) -> Failure {
    (404, message)
}

fn day_start(day: TradingDay) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(day.start_us()).expect("day starts are valid instants")
}

/// The files and metadata behind one mock.
pub(super) enum Source {
    Generated { generator: Arc<Generator>, cache: FileCache },
    Replay(ReplayDir),
}

/// What a datasets request needs besides its path.
pub(super) struct DatasetContext<'a> {
    pub(super) options: &'a TardisOptions,
    /// `MockTardis::set_exported_until` in replay mode.
    pub(super) exported_until_override: Option<DateTime<Utc>>,
}

impl Source {
    pub(super) fn generator(&self) -> Option<Arc<Generator>> {
        match self {
            Source::Generated { generator, .. } => Some(generator.clone()),
            Source::Replay(_) => None,
        }
    }

    /// Whether the datasets API knows this exchange id.
    pub(super) fn knows_exchange(&self, exchange: &str) -> bool {
        match self {
            Source::Generated { generator, .. } => {
                Exchange::parse(exchange).is_ok_and(|e| generator.universe().exchange(&e).is_some())
            }
            Source::Replay(dir) => dir.exchange(exchange).is_some(),
        }
    }

    /// Every exchange's details, in a stable order.
    pub(super) fn exchange_entries(&self, context: &DatasetContext<'_>) -> Vec<ExchangeEntry> {
        match self {
            Source::Generated { generator, .. } => generator
                .universe()
                .exchanges()
                .iter()
                .map(|spec| {
                    generated_entry(spec, context.exported_until_override.unwrap_or(context.options.exported_until))
                })
                .collect(),
            Source::Replay(dir) => {
                dir.exchanges().filter_map(|(exchange, _)| self.exchange_entry(exchange.as_str(), context)).collect()
            }
        }
    }

    pub(super) fn exchange_entry(&self, exchange: &str, context: &DatasetContext<'_>) -> Option<ExchangeEntry> {
        match self {
            Source::Generated { generator, .. } => {
                let spec = generator.universe().exchange(&Exchange::parse(exchange).ok()?)?;
                let exported_until = context.exported_until_override.unwrap_or(context.options.exported_until);
                Some(generated_entry(spec, exported_until))
            }
            Source::Replay(dir) => {
                let files = dir.exchange(exchange)?;
                let first = files.first_day().map_or(DateTime::<Utc>::UNIX_EPOCH, day_start);
                let exported_until = context.exported_until_override.or(files.exported_until()).unwrap_or(first);
                let instruments = files.instruments.as_deref().unwrap_or_default();
                let kind_of = |dataset_id: &str| -> Option<String> {
                    if let Some(group) = SymbolGroup::parse(dataset_id) {
                        return Some(group.kind().as_str().to_owned());
                    }
                    instruments
                        .iter()
                        .find(|i| {
                            i.get("datasetId").or_else(|| i.get("id")).and_then(Value::as_str) == Some(dataset_id)
                        })
                        .and_then(|i| i.get("type")?.as_str().map(str::to_owned))
                };
                let dataset_symbols: Vec<SymbolEntry> = files
                    .symbols()
                    .into_iter()
                    .map(|(id, (first_day, data_types))| SymbolEntry {
                        id: id.to_owned(),
                        kind: kind_of(id),
                        available_since: day_start(first_day),
                        available_to: None,
                        data_types: Some(data_types.into_iter().map(str::to_owned).collect()),
                    })
                    .collect();
                let available_symbols = if instruments.is_empty() {
                    dataset_symbols.iter().map(|s| SymbolEntry { data_types: None, ..s.clone() }).collect()
                } else {
                    instruments.iter().filter_map(|i| replayed_symbol(i, first)).collect()
                };
                Some(ExchangeEntry {
                    id: exchange.to_owned(),
                    name: wire::known_name(exchange).unwrap_or(exchange).to_owned(),
                    available_since: first,
                    exported_until,
                    available_symbols,
                    dataset_symbols,
                })
            }
        }
    }

    /// The instruments of `exchange` in Tardis' JSON shape.
    pub(super) fn instruments(&self, exchange: &str) -> Result<Vec<Value>, Failure> {
        let unknown = || not_found(format!("Unknown exchange '{exchange}'"));
        match self {
            Source::Generated { generator, .. } => {
                let exchange = Exchange::parse(exchange).map_err(|_| unknown())?;
                let spec = generator.universe().exchange(&exchange).ok_or_else(unknown)?;
                Ok(spec.listed().map(wire::instrument).collect())
            }
            Source::Replay(dir) => {
                let files = dir.exchange(exchange).ok_or_else(unknown)?;
                files.instruments.clone().ok_or_else(|| {
                    not_found(format!(
                        "No instruments were provided for {exchange} in the replay directory \
                         (expected a Tardis instruments array in {exchange}/instruments.json)"
                    ))
                })
            }
        }
    }

    /// The gzip file of a datasets request whose exchange is known, date valid and caller authorised.
    pub(super) fn dataset(
        &self,
        path: &DatasetPath,
        day: TradingDay,
        context: &DatasetContext<'_>,
    ) -> Result<Vec<u8>, Failure> {
        let exchange =
            Exchange::parse(&path.exchange).map_err(|_| not_found(format!("Unknown exchange '{}'", path.exchange)))?;
        let data_type_missing = || not_found(format!("Data type '{}' is not available for {exchange}", path.data_type));
        let symbol_text =
            path.symbol().ok_or_else(|| not_found(format!("Unknown file '{}': expected SYMBOL.csv.gz", path.file)))?;
        let unknown_symbol = || not_found(format!("Unknown symbol '{symbol_text}' for {exchange}"));
        // Dataset ids are upper case with '-' for '/' and ':'; the API does not normalise them for the client.
        let symbol =
            Symbol::parse(symbol_text).ok().filter(|s| s.as_str() == symbol_text).ok_or_else(unknown_symbol)?;
        match self {
            Source::Generated { generator, cache } => {
                let data_type = DataType::parse(&path.data_type).ok_or_else(data_type_missing)?;
                let file = generated_file(generator, &exchange, &symbol, data_type)?;
                check_served(day, context, context.options.exported_until)?;
                if let Some(quiet) = context.options.quiet_file(exchange.as_str(), symbol.as_str(), day) {
                    return Ok(quiet_gzip(quiet, Some(data_type)));
                }
                let symbols = match file {
                    FileKind::Single => vec![symbol.clone()],
                    FileKind::Group(group) => generator
                        .group_symbols(&exchange, group, day)
                        .into_iter()
                        .filter(|s| context.options.quiet_file(exchange.as_str(), s.as_str(), day).is_none())
                        .collect(),
                };
                let key = CacheKey { data_type, exchange: exchange.clone(), file: symbol.clone(), symbols, day };
                let bytes = cache.get_or_make(key, |key| match file {
                    FileKind::Single => generator.csv_gz(data_type, &exchange, &symbol, day),
                    // Every member of the group is quiet that day: the group file is an empty gzip.
                    FileKind::Group(group) if key.symbols.is_empty() => {
                        (!generator.group_symbols(&exchange, group, day).is_empty())
                            .then(|| quiet_gzip(QuietFile::EmptyGzip, None))
                    }
                    FileKind::Group(_) => generator.grouped_csv_gz(data_type, &exchange, &key.symbols, day),
                });
                let bytes =
                    bytes.ok_or_else(|| not_found(format!("{symbol} of {exchange} is not available on {day}")))?;
                Ok(bytes.as_ref().clone())
            }
            Source::Replay(dir) => {
                let files = dir
                    .exchange(exchange.as_str())
                    .ok_or_else(|| not_found(format!("Unknown exchange '{exchange}'")))?;
                if !files.has_data_type(&path.data_type) {
                    return Err(data_type_missing());
                }
                if !files.has_symbol(&path.data_type, symbol.as_str()) {
                    return Err(unknown_symbol());
                }
                let exported_until =
                    context.exported_until_override.or(files.exported_until()).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
                check_served(day, context, exported_until)?;
                if let Some(quiet) = context.options.quiet_file(exchange.as_str(), symbol.as_str(), day) {
                    return Ok(quiet_gzip(quiet, DataType::parse(&path.data_type)));
                }
                match dir.read(&exchange, &path.data_type, &symbol, day) {
                    Ok(Some(bytes)) => Ok(bytes),
                    Ok(None) => Err(not_found(format!(
                        "No {} file for {symbol} of {exchange} on {day} in the replay directory",
                        path.data_type
                    ))),
                    Err(err) => Err((500, format!("cannot read the replayed file: {err}"))),
                }
            }
        }
    }
}

/// Whether a request names one symbol's file or a grouped one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Single,
    Group(SymbolGroup),
}

/// What a generated datasets symbol is: a known instrument with this data type, or a group the exchange has
/// instruments for.
fn generated_file(
    generator: &Generator,
    exchange: &Exchange,
    symbol: &Symbol,
    data_type: DataType,
) -> Result<FileKind, Failure> {
    let universe = generator.universe();
    let spec = universe.exchange(exchange).ok_or_else(|| not_found(format!("Unknown exchange '{exchange}'")))?;
    if let Some(instrument) = universe.symbol(exchange, symbol).map(|s| &s.instrument) {
        if !data_type.available_for(instrument.kind) {
            return Err(not_found(format!("Data type '{data_type}' is not available for {symbol} of {exchange}")));
        }
        return Ok(FileKind::Single);
    }
    let group = SymbolGroup::parse(symbol.as_str())
        .filter(|group| spec.symbols.iter().any(|s| s.instrument.kind == group.kind()))
        .ok_or_else(|| not_found(format!("Unknown symbol '{symbol}' for {exchange}")))?;
    if !data_type.available_for(group.kind()) {
        return Err(not_found(format!("Data type '{data_type}' is not available for {symbol} of {exchange}")));
    }
    Ok(FileKind::Group(group))
}

/// Days before `available_from` or after the export horizon are not served.
fn check_served(day: TradingDay, context: &DatasetContext<'_>, exported_until: DateTime<Utc>) -> Result<(), Failure> {
    if let Some(first) = context.options.available_from.filter(|first| day < *first) {
        return Err(not_found(format!("Data for {day} is not available (this server starts at {first})")));
    }
    if day.end_us() > exported_until.timestamp_micros() {
        return Err(not_found(format!(
            "Data for {day} is not available yet (exported until {})",
            wire::iso(exported_until)
        )));
    }
    Ok(())
}

/// The gzip of a quiet file.
fn quiet_gzip(quiet: QuietFile, data_type: Option<DataType>) -> Vec<u8> {
    use std::io::Write;
    let text = match (quiet, data_type) {
        (QuietFile::HeaderOnly, Some(data_type)) => data_type.header(),
        _ => "",
    };
    let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

/// `availableSymbols` entry of a replayed instrument.
fn replayed_symbol(instrument: &Value, fallback_since: DateTime<Utc>) -> Option<SymbolEntry> {
    let instant = |key: &str| {
        instrument
            .get(key)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    Some(SymbolEntry {
        id: instrument.get("id")?.as_str()?.to_owned(),
        kind: instrument.get("type").and_then(Value::as_str).map(str::to_owned),
        available_since: instant("availableSince").unwrap_or(fallback_since),
        available_to: instant("availableTo"),
        data_types: None,
    })
}

/// The details of a generated exchange.
fn generated_entry(spec: &ExchangeSpec, exported_until: DateTime<Utc>) -> ExchangeEntry {
    let data_types = |kind: InstrumentKind| -> Vec<String> {
        DataType::ALL.into_iter().filter(|t| t.available_for(kind)).map(|t| t.as_str().to_owned()).collect()
    };
    let mut dataset_symbols: Vec<SymbolEntry> = spec
        .symbols
        .iter()
        .map(|s| SymbolEntry {
            id: s.instrument.dataset_id.as_str().to_owned(),
            kind: Some(s.instrument.kind.as_str().to_owned()),
            available_since: s.instrument.available_since,
            available_to: s.instrument.available_to,
            data_types: Some(data_types(s.instrument.kind)),
        })
        .collect();
    // Grouped symbols are listed beside the real ones, as Tardis does.
    for group in SymbolGroup::ALL {
        let members: Vec<_> = spec.symbols.iter().filter(|s| s.instrument.kind == group.kind()).collect();
        if let Some(since) = members.iter().map(|s| s.instrument.available_since).min() {
            dataset_symbols.push(SymbolEntry {
                id: group.as_str().to_owned(),
                kind: Some(group.kind().as_str().to_owned()),
                available_since: since,
                available_to: None,
                data_types: Some(data_types(group.kind())),
            });
        }
    }
    ExchangeEntry {
        id: spec.exchange.as_str().to_owned(),
        name: spec.name.clone(),
        available_since: day_start(spec.available_since),
        exported_until,
        available_symbols: spec
            .symbols
            .iter()
            .map(|s| SymbolEntry {
                id: s.instrument.id.clone(),
                kind: Some(s.instrument.kind.as_str().to_owned()),
                available_since: s.instrument.available_since,
                available_to: s.instrument.available_to,
                data_types: None,
            })
            .collect(),
        dataset_symbols,
    }
}

/// One generated file: the requested name and, for groups, the members merged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    data_type: DataType,
    exchange: Exchange,
    file: Symbol,
    symbols: Vec<Symbol>,
    day: TradingDay,
}

/// Generated files kept for repeated requests (reruns, retries, concurrent workers), oldest dropped first.
/// Per mock, so that two mocks with different generators never share a file.
#[derive(Debug, Default)]
pub(super) struct FileCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    files: HashMap<CacheKey, Arc<Vec<u8>>>,
    order: VecDeque<CacheKey>,
    bytes: usize,
}

const CACHE_FILES: usize = 64;
const CACHE_BYTES: usize = 256 << 20;

impl FileCache {
    fn get_or_make(&self, key: CacheKey, make: impl FnOnce(&CacheKey) -> Option<Vec<u8>>) -> Option<Arc<Vec<u8>>> {
        let lock = || self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bytes) = lock().files.get(&key) {
            return Some(bytes.clone());
        }
        // Generated outside the lock: other files are served meanwhile.
        let bytes = Arc::new(make(&key)?);
        let mut inner = lock();
        while !inner.order.is_empty() && (inner.order.len() >= CACHE_FILES || inner.bytes + bytes.len() > CACHE_BYTES) {
            if let Some(old) = inner.order.pop_front()
                && let Some(dropped) = inner.files.remove(&old)
            {
                inner.bytes -= dropped.len();
            }
        }
        if bytes.len() <= CACHE_BYTES && !inner.files.contains_key(&key) {
            inner.bytes += bytes.len();
            inner.order.push_back(key.clone());
            inner.files.insert(key, bytes.clone());
        }
        Some(bytes)
    }
}
