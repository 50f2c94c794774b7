//! Both fakes as standalone servers (`harness mocks serve`), so any pipeline (ours from a shell, an external
//! one, the vendors' own clients) can be pointed at them; and one generated trades file written to disk
//! (`harness mocks trades-file`), sized by its row count, for benchmarks that read a file rather than a server.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fakes::bigquery::FakeBigQuery;
use fakes::tardis::{MockTardis, TardisOptions};
use fixtures::{Generator, Universe};
use flate2::{Compression, GzBuilder};
use market::{DateRange, Exchange, Symbol, TradingDay};

use pipeline::Selection;

use crate::environment::{Endpoints, command_vars, environment, exports};
use crate::faults::Armed;
use crate::run::RunError;
use crate::scenario::Scenario;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The address both fakes listen on: loopback by default; `0.0.0.0` in a container, for its neighbours.
    pub listen: IpAddr,
    pub port_tardis: u16,
    pub port_bigquery: u16,
    pub seed: u64,
    pub days: DateRange,
    pub activity: f64,
    /// Edge-case episodes per symbol and day of the generated market.
    pub edge_cases: f64,
    /// Replay captured Tardis files from this directory instead of generating them (`--replay-dir`).
    pub replay_dir: Option<PathBuf>,
    /// A fault scenario armed before both fakes (`--faults`): the ports are then its fronts'.
    pub faults: Option<Scenario>,
}

/// Both fakes, running.
pub struct Mocks {
    pub tardis: MockTardis,
    pub bigquery: FakeBigQuery,
    /// The pairs served: the generated market's, or those of the replayed trades files (if any).
    pub symbols: Option<Selection>,
    /// The fault scenario's fronts, on the ports asked for, when there is one.
    pub armed: Option<Armed>,
}

fn bind(ip: IpAddr, port: u16, what: &'static str) -> Result<TcpListener, RunError> {
    let address = SocketAddr::new(ip, port);
    let listen = |source| RunError::Listen { what, address, source };
    let listener = TcpListener::bind(address).map_err(listen)?;
    listener.set_nonblocking(true).map_err(listen)?;
    Ok(listener)
}

impl Mocks {
    pub async fn start(options: &ServeOptions) -> Result<Mocks, RunError> {
        // With a scenario, its fronts take the ports asked for and the fakes sit behind them on free ones.
        let (fronts, port_tardis, port_bigquery) = match &options.faults {
            Some(_) => {
                let tardis = tokio::net::TcpListener::from_std(bind(
                    options.listen,
                    options.port_tardis,
                    "fault front of the mock Tardis",
                )?);
                let bigquery = tokio::net::TcpListener::from_std(bind(
                    options.listen,
                    options.port_bigquery,
                    "fault front of the fake BigQuery",
                )?);
                let address = SocketAddr::new(options.listen, 0);
                let listen = |what| move |source| RunError::Listen { what, address, source };
                (Some((tardis.map_err(listen("fault front"))?, bigquery.map_err(listen("fault front"))?)), 0, 0)
            }
            None => (None, options.port_tardis, options.port_bigquery),
        };
        let listener = bind(options.listen, port_tardis, "mock Tardis")?;
        let (tardis, symbols) = match &options.replay_dir {
            Some(dir) => {
                // The days served and exportedUntil come from the files.
                let tardis_options = TardisOptions::exported_through(options.days.end());
                let tardis = MockTardis::start_replay(Some(listener), dir, tardis_options)
                    .await
                    .map_err(|source| RunError::Replay { path: dir.clone(), source })?;
                (tardis, crate::external::replay_selection(dir))
            }
            None => {
                let universe = Universe::default_universe();
                let symbols = Selection::from_pairs(universe.pairs());
                let generator = Arc::new(
                    Generator::new(options.seed, universe)
                        .with_activity(options.activity)
                        .with_edge_cases(options.edge_cases),
                );
                let mut tardis_options = TardisOptions::exported_through(options.days.end());
                tardis_options.available_from = Some(options.days.start());
                (MockTardis::start_on(listener, generator, tardis_options).await, Some(symbols))
            }
        };
        let bigquery = FakeBigQuery::start_on(bind(options.listen, port_bigquery, "fake BigQuery")?).await;
        let armed = match &options.faults {
            Some(scenario) => {
                Some(Armed::arm(scenario, options.days.end(), options.seed, (&tardis, &bigquery), fronts, None).await?)
            }
            None => None,
        };
        Ok(Mocks { tardis, bigquery, symbols, armed })
    }

    /// `export` lines for a shell: the pipeline's environment contract (without a database or a data
    /// directory, which are the user's) plus the variables the official clients read.
    pub fn exports(&self) -> String {
        let via = self.armed.as_ref().map(Armed::via);
        let env = environment(Endpoints {
            tardis: &self.tardis,
            bigquery: &self.bigquery,
            via: via.as_ref(),
            database_url: None,
            symbols: self.symbols.as_ref(),
            data_dir: None,
        });
        exports(&command_vars(&env))
    }
}

/// One generated Tardis trades file of about `trades` rows (`harness mocks trades-file`).
#[derive(Debug, Clone)]
pub struct TradesFileOptions {
    pub exchange: Exchange,
    pub symbol: Symbol,
    pub day: TradingDay,
    /// The row count asked for; the file holds about this many (see [`write_trades_file`]).
    pub trades: u64,
    pub seed: u64,
    /// Edge-case episodes per symbol and day of the generated market.
    pub edge_cases: f64,
    pub output: PathBuf,
}

/// A trades file written by [`write_trades_file`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TradesFile {
    pub path: PathBuf,
    pub exchange: Exchange,
    pub symbol: Symbol,
    pub day: TradingDay,
    pub seed: u64,
    /// The generator's activity that gave about the rows asked for.
    pub activity: f64,
    /// Rows in the file (the header not counted).
    pub trades: u64,
    /// Exchange-time hours that reached the generator's cap of 999,999 rows (their last minutes have no trades):
    /// only files of tens of millions of trades a day have any.
    pub capped_hours: u32,
    /// Size of the CSV text and of the gzip file.
    pub csv_bytes: u64,
    pub gzip_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TradesFileError {
    #[error("unknown exchange {exchange} (the generated market has {known})")]
    UnknownExchange { exchange: Exchange, known: String },
    #[error("unknown symbol {symbol} on {exchange} (the generated market trades {known} there)")]
    UnknownSymbol { exchange: Exchange, symbol: Symbol, known: String },
    #[error("{exchange}:{symbol} is not listed on {day}")]
    NotListed { exchange: Exchange, symbol: Symbol, day: TradingDay },
    #[error("{exchange}:{symbol} has no trades on {day} in the generated market")]
    NoTrades { exchange: Exchange, symbol: Symbol, day: TradingDay },
    #[error("--trades must be at least 1")]
    NoRowsAsked,
    #[error("failed to write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes the trades file of (exchange, symbol, day) that the generated market would hold at the activity that
/// gives about `options.trades` rows: the gzip bytes the mock Tardis serves for that market (mtime 0, default
/// level). The activity is scaled linearly from the row count of a pilot day at activity 1.0, so the count is
/// approximate (within a few percent); when the busiest hours would come near the generator's cap of a million
/// rows an hour (files of tens of millions of trades), the rows are counted at the estimate and the activity raised
/// until the count is within 2 % (four times at most). The file is written beside `output` under a temporary name
/// and renamed into place, so `output` is either absent or complete; memory stays flat whatever the size (the rows
/// are a stream).
pub fn write_trades_file(options: &TradesFileOptions) -> Result<TradesFile, TradesFileError> {
    let TradesFileOptions { exchange, symbol, day, .. } = options;
    if options.trades == 0 {
        return Err(TradesFileError::NoRowsAsked);
    }
    let universe = Universe::default_universe();
    let Some(exchange_spec) = universe.exchange(exchange) else {
        let known: Vec<&str> = universe.exchanges().iter().map(|spec| spec.exchange.as_str()).collect();
        return Err(TradesFileError::UnknownExchange { exchange: exchange.clone(), known: known.join(", ") });
    };
    if universe.symbol(exchange, symbol).is_none() {
        let known: Vec<&str> = exchange_spec.symbols.iter().map(|spec| spec.symbol().as_str()).collect();
        return Err(TradesFileError::UnknownSymbol {
            exchange: exchange.clone(),
            symbol: symbol.clone(),
            known: known.join(", "),
        });
    }
    let generator = Generator::new(options.seed, universe).with_edge_cases(options.edge_cases);
    let not_listed = || TradesFileError::NotListed { exchange: exchange.clone(), symbol: symbol.clone(), day: *day };
    let census = |activity: f64| {
        let rows = generator.clone().with_activity(activity).trade_rows(exchange, symbol, *day);
        rows.map(Census::of).ok_or_else(not_listed)
    };
    let pilot = census(1.0)?;
    if pilot.rows == 0 {
        return Err(TradesFileError::NoTrades { exchange: exchange.clone(), symbol: symbol.clone(), day: *day });
    }
    let (target, hour_cap) = (exact(options.trades), exact(GENERATOR_HOUR_CAP));
    let mut activity = target / exact(pilot.rows);
    // Rows grow with the activity (to a few percent) while no hour comes near the generator's cap; past that the
    // capped hours stop growing, so the file is counted at the estimate and the estimate raised, until within 2 %.
    let mut capped_hours = 0;
    if exact(pilot.fullest_hour) * activity > hour_cap / 2.0 {
        let mut at = census(activity)?;
        for _ in 0..4 {
            let ratio = target / exact(at.rows);
            if (ratio - 1.0).abs() <= 0.02 {
                break;
            }
            activity *= ratio;
            at = census(activity)?;
        }
        capped_hours = at.capped_hours;
    }
    let generator = generator.with_activity(activity);

    let output = &options.output;
    let io = |source| TradesFileError::Io { path: output.clone(), source };
    let dir = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = output.file_name().map_or_else(|| "trades".into(), |n| n.to_string_lossy().into_owned());
    let partial =
        tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".partial").tempfile_in(dir).map_err(io)?;
    let mut encoder =
        GzBuilder::new().mtime(0).write(BufWriter::with_capacity(1 << 20, partial.as_file()), Compression::default());
    let mut csv = CountingWriter { inner: &mut encoder, bytes: 0 };
    let trades = generator.write_trades_csv(exchange, symbol, *day, &mut csv).ok_or_else(not_listed)?.map_err(io)?;
    let csv_bytes = csv.bytes;
    encoder.finish().and_then(|mut out| out.flush()).map_err(io)?;
    partial.as_file().sync_all().map_err(io)?;
    let gzip_bytes = partial.as_file().metadata().map_err(io)?.len();
    // A temporary file is private (0600); the file it becomes is an ordinary one.
    partial.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    partial.persist(output).map_err(|err| io(err.error))?;
    Ok(TradesFile {
        path: output.clone(),
        exchange: exchange.clone(),
        symbol: symbol.clone(),
        day: *day,
        seed: options.seed,
        activity,
        trades,
        capped_hours,
        csv_bytes,
        gzip_bytes,
    })
}

/// The generator stops an exchange-time hour of one symbol at this many rows (an hour's integer ids count its rows
/// within a stride of a million): files of tens of millions of trades a day reach it in their busiest hours.
const GENERATOR_HOUR_CAP: u64 = 999_999;

/// Rows of a generated file, of its fullest exchange-time hour, and the hours at the generator's cap.
struct Census {
    rows: u64,
    fullest_hour: u64,
    capped_hours: u32,
}

impl Census {
    fn of(rows: impl Iterator<Item = fixtures::TradeRow>) -> Census {
        let mut hours: BTreeMap<i64, u64> = BTreeMap::new();
        for row in rows {
            *hours.entry(row.timestamp_us.div_euclid(HOUR_US)).or_default() += 1;
        }
        let capped = hours.values().filter(|&&n| n >= GENERATOR_HOUR_CAP).count();
        Census {
            rows: hours.values().sum(),
            fullest_hour: hours.values().copied().max().unwrap_or(0),
            capped_hours: u32::try_from(capped).unwrap_or(u32::MAX),
        }
    }
}

const HOUR_US: i64 = 3_600_000_000;

/// A row count as an f64: counts are far below 2^53, so exactly.
#[allow(clippy::cast_precision_loss)]
fn exact(count: u64) -> f64 {
    count as f64
}

/// Counts the bytes written through it (the CSV text before compression).
struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
