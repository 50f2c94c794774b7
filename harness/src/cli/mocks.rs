//! `harness mocks serve`: both fakes as standalone servers until SIGINT or SIGTERM, with their URLs and the
//! `export` lines a shell needs.

use std::io::Write;
use std::path::PathBuf;

use market::{DateRange, TradingDay};
use pipeline::cli::Exit;
use pipeline::{Clock, SystemClock};

use crate::mocks::{Mocks, ServeOptions};
use crate::scenario::Scenario;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum MocksCommand {
    /// Start the mock Tardis and the fake BigQuery, print their URLs and the variables to export, serve until
    /// interrupted.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
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
    let MocksCommand::Serve(args) = command;
    let to = args.to.unwrap_or_else(|| SystemClock.yesterday());
    let from = args.from.unwrap_or_else(|| (0..30).fold(to, |d, _| d.pred()));
    let options = ServeOptions {
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
