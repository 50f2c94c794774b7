//! `harness mocks serve`: both fakes as standalone servers until SIGINT or SIGTERM, with their URLs and the
//! `export` lines a shell needs. `harness mocks trades-file`: one generated trades file of a given size on disk.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use market::{DateRange, Exchange, Symbol, TradingDay};
use pipeline::cli::Exit;
use pipeline::{Clock, SystemClock};

use crate::mocks::{Mocks, ServeOptions, TradesFile, TradesFileOptions, write_trades_file};
use crate::scenario::Scenario;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum MocksCommand {
    /// Start the mock Tardis and the fake BigQuery, print their URLs and the variables to export, serve until
    /// interrupted.
    Serve(ServeArgs),
    /// Write one generated Tardis trades file (gzip CSV with Tardis' header, the bytes the mock Tardis serves for
    /// that market) of about --trades rows, for benchmarks of one large file. The trade rate is scaled from a
    /// pilot day at activity 1.0 (counted again when the busiest hours would come near the generator's cap of a
    /// million rows an hour), so the count is approximate (within a few percent); the actual count is printed.
    /// Written under a temporary name beside --output and renamed: never a half-written file.
    #[command(
        after_help = "Examples:\n  harness mocks trades-file --date 2024-06-03 --trades 5000000 --output BTCUSDT.csv.gz\n  harness mocks trades-file --exchange bitmex --symbol XBTUSD --date 2024-06-03 --trades 20000 --seed 7 --output x.csv.gz --json"
    )]
    TradesFile(TradesFileArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct TradesFileArgs {
    #[arg(long, default_value = "binance-futures", value_parser = Exchange::parse)]
    pub exchange: Exchange,
    /// A symbol the generated market trades on --exchange (see `harness mocks serve`'s PIPELINE_SYMBOLS).
    #[arg(long, default_value = "BTCUSDT", value_parser = Symbol::parse)]
    pub symbol: Symbol,
    /// The file's day (UTC); it holds that day's trades as Tardis splits files, by arrival time.
    #[arg(long, value_parser = TradingDay::parse)]
    pub date: TradingDay,
    /// About this many rows.
    #[arg(long, default_value_t = 1_000_000)]
    pub trades: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Edge-case episodes per day (see `harness run --help`); 0 for none.
    #[arg(long, value_name = "PER_DAY", default_value_t = fixtures::DEFAULT_EDGE_CASES_PER_DAY, value_parser = super::edge_cases)]
    pub edge_cases: f64,
    /// Where to write the file (its directory must exist); replaced if present.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Print what was written as one JSON object (path, exchange, symbol, day, seed, activity, trades,
    /// capped_hours, csv_bytes, gzip_bytes).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address both fakes listen on: loopback by default; 0.0.0.0 (or a container's address) to serve other
    /// machines or containers, as in compose.yaml. The fakes check no credentials: never expose them beyond a
    /// private network.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub listen: std::net::IpAddr,
    /// Port of the mock Tardis (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port_tardis: u16,
    /// Port of the fake BigQuery (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port_bigquery: u16,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First day served (default: 30 days before --to).
    #[arg(long, value_parser = TradingDay::parse)]
    pub from: Option<TradingDay>,
    /// Last day served, i.e. Tardis' exportedUntil (default: yesterday, UTC).
    #[arg(long, value_parser = TradingDay::parse)]
    pub to: Option<TradingDay>,
    /// Trade-rate multiplier of the generated market (1.0 is a realistic day), in (0, 100].
    #[arg(long, default_value_t = 1.0, value_parser = super::activity)]
    pub activity: f64,
    /// Edge-case episodes per symbol and day of the generated market (see `harness run --help`); 0 for none.
    #[arg(long, value_name = "PER_DAY", default_value_t = fixtures::DEFAULT_EDGE_CASES_PER_DAY, value_parser = super::edge_cases)]
    pub edge_cases: f64,
    /// Serve captured Tardis files instead of generated ones, from DIR laid out as
    /// {exchange}/{dataType}/{YYYY}/{MM}/{DD}/{SYMBOL}.csv.gz (or .csv), with optional
    /// {exchange}/instruments.json; --seed, --from, --to and --activity are then ignored.
    #[arg(long, value_name = "DIR")]
    pub replay_dir: Option<PathBuf>,
    /// Serve behind a fault scenario (a built-in name or a TOML file): its endpoint faults, BigQuery job faults
    /// and exportedUntil lag act on every client, seeded by --seed (Postgres and process faults need a run and
    /// are ignored here).
    #[arg(long, value_name = "NAME|FILE")]
    pub faults: Option<String>,
}

pub async fn run(command: MocksCommand) -> anyhow::Result<Exit> {
    match command {
        MocksCommand::Serve(args) => serve(args).await,
        MocksCommand::TradesFile(args) => trades_file(args).await,
    }
}

async fn trades_file(args: TradesFileArgs) -> anyhow::Result<Exit> {
    let options = TradesFileOptions {
        exchange: args.exchange,
        symbol: args.symbol,
        day: args.date,
        trades: args.trades,
        seed: args.seed,
        edge_cases: args.edge_cases,
        output: args.output,
    };
    eprintln!(
        "Generating about {} trades of {}:{} on {} (seed {}) into {}.",
        options.trades,
        options.exchange,
        options.symbol,
        options.day,
        options.seed,
        options.output.display()
    );
    // Seconds to minutes of CPU: off the async runtime's threads.
    let file =
        tokio::task::spawn_blocking(move || write_trades_file(&options)).await.context("generation panicked")??;
    if args.json {
        println!("{}", serde_json::to_string(&file)?);
    } else {
        println!("{}", trades_file_line(&file));
    }
    if file.capped_hours > 0 {
        eprintln!(
            "warning: {} exchange-time hours reached the generator's cap of 999,999 rows: their last minutes have no \
             trades (ask for fewer trades for a file without such gaps)",
            file.capped_hours
        );
    }
    Ok(Exit::Pass)
}

/// `wrote x.csv.gz: 5012345 trades of binance-futures:BTCUSDT on 2024-06-03 (seed 42, activity 86.93), 412.3 MB of
/// CSV, 98.1 MB gzip`.
fn trades_file_line(file: &TradesFile) -> String {
    #[allow(clippy::cast_precision_loss)]
    let mb = |bytes: u64| bytes as f64 / 1e6;
    format!(
        "wrote {}: {} trades of {}:{} on {} (seed {}, activity {:.2}), {:.1} MB of CSV, {:.1} MB gzip",
        file.path.display(),
        file.trades,
        file.exchange,
        file.symbol,
        file.day,
        file.seed,
        file.activity,
        mb(file.csv_bytes),
        mb(file.gzip_bytes)
    )
}

async fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    let to = args.to.unwrap_or_else(|| SystemClock.yesterday());
    let from = args.from.unwrap_or_else(|| (0..30).fold(to, |d, _| d.pred()));
    let options = ServeOptions {
        listen: args.listen,
        port_tardis: args.port_tardis,
        port_bigquery: args.port_bigquery,
        seed: args.seed,
        days: DateRange::new(from, to)?,
        activity: args.activity,
        edge_cases: args.edge_cases,
        replay_dir: args.replay_dir,
        faults: args.faults.as_deref().map(Scenario::resolve).transpose()?,
    };
    // Listening before the servers start: a signal during start-up stops them too.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mocks = Mocks::start(&options).await?;
    match &mocks.armed {
        Some(armed) => {
            println!(
                "mock Tardis:   {} (datasets and api {}/v1; behind the fault front)",
                armed.tardis.uri(),
                armed.tardis.uri()
            );
            println!("fake BigQuery: {} (behind the fault front)", armed.bigquery.uri());
        }
        None => {
            println!(
                "mock Tardis:   {} (datasets {}, api {})",
                mocks.tardis.uri(),
                mocks.tardis.datasets_url(),
                mocks.tardis.api_url()
            );
            println!("fake BigQuery: {}", mocks.bigquery.uri());
        }
    }
    match &options.replay_dir {
        Some(dir) => println!("replaying:     {} (days, symbols and exportedUntil from the files)", dir.display()),
        None => println!("days served:   {} to {} (seed {})", options.days.start(), options.days.end(), options.seed),
    }
    if let Some(scenario) = &options.faults {
        println!(
            "faults:        {} ({}; expects that a pipeline {})",
            scenario.name,
            scenario.summary(),
            scenario.expect.as_str()
        );
    }
    println!("# Paste into a shell:");
    print!("{}", mocks.exports());
    let _ = std::io::stdout().flush();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("Stopping the fakes.");
    Ok(Exit::Pass)
}
