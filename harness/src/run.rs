//! `harness run`: one date of generated data through the in-process pipeline, scored against truth.

use std::path::{Path, PathBuf};

use chrono::Utc;
use fakes::bigquery::FakeBigQuery;
use fixtures::Universe;
use market::{Candle, Exchange, Symbol, TradingDay};
use pipeline::bigquery::schema::TableDef;
use serde_json::{Map, Value};

use crate::contract::{self, Row};
use crate::defects::Defect;
use crate::environment::{DATASET, PROJECT};
use crate::postgres::ProvisionError;
use crate::report::{Report, ReportInput};
use crate::scoring::{self, LandedTables, ids};
use crate::world::{World, WorldError, WorldOptions};

/// Reads the candles stored in the fake BigQuery for `day`, straight from its storage (not through the
/// pipeline's reader, so a reader bug cannot hide a landing bug).
pub fn landed_candles(bigquery: &FakeBigQuery, day: TradingDay) -> Result<Vec<Candle>, String> {
    bigquery
        .partition_rows(PROJECT, DATASET, "candles_1m", &day.compact())
        .iter()
        .enumerate()
        .map(|(i, row)| candle_from_row(row).map_err(|e| format!("candles_1m row {i}: {e}")))
        .collect()
}

fn candle_from_row(row: &Map<String, Value>) -> Result<Candle, String> {
    let text =
        |name: &str| row.get(name).and_then(Value::as_str).ok_or_else(|| format!("{name} missing or not a string"));
    let float =
        |name: &str| row.get(name).and_then(Value::as_f64).ok_or_else(|| format!("{name} missing or not a number"));
    let int =
        |name: &str| row.get(name).and_then(Value::as_i64).ok_or_else(|| format!("{name} missing or not an integer"));
    Ok(Candle {
        exchange: Exchange::parse(text("exchange")?).map_err(|e| e.to_string())?,
        symbol: Symbol::parse(text("symbol")?).map_err(|e| e.to_string())?,
        open_time_us: int("open_time")?,
        open: float("open")?,
        high: float("high")?,
        low: float("low")?,
        close: float("close")?,
        volume: float("volume")?,
        quote_volume: float("quote_volume")?,
        trade_count: u64::try_from(int("trade_count")?).map_err(|e| e.to_string())?,
        vwap: float("vwap")?,
        buy_volume: float("buy_volume")?,
        sell_volume: float("sell_volume")?,
    })
}

/// Why a harness run (in process, external, the load benchmark, the standalone fakes) could not be carried
/// out. What a pipeline got wrong is never an error here: it is a finding of the report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to start the harness world: {0}")]
    World(#[from] WorldError),
    #[error(transparent)]
    Postgres(#[from] ProvisionError),
    #[error("failed to connect the pipeline: {0}")]
    Pipeline(#[from] pipeline::SetupError),
    #[error(transparent)]
    Store(#[from] pipeline::store::StoreError),
    #[error(transparent)]
    Backfill(#[from] pipeline::backfill::BackfillError),
    #[error("--symbols: {unknown} not in the generated market; known pairs: {known}")]
    UnknownPairs { unknown: String, known: String },
    #[error("what landed in the fake BigQuery cannot be read: {0}")]
    Landed(String),
    #[error("no command given (put it after `--`)")]
    NoCommand,
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot replay the Tardis files in {path}: {source}")]
    Replay {
        path: PathBuf,
        #[source]
        source: fakes::tardis::ReplayError,
    },
    #[error("cannot listen for the {what} on {address}: {source}")]
    Listen {
        what: &'static str,
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub day: TradingDay,
    pub seed: u64,
    pub activity: f64,
    /// Edge-case episodes per symbol and day of the generated market (`--edge-cases`).
    pub edge_cases: f64,
    pub report_dir: Option<PathBuf>,
    /// Run a deliberately broken pipeline (the defect suite).
    pub defect: Option<Defect>,
    /// Only these pairs of the generated market (`--symbols`); all of it when `None`.
    pub symbols: Option<pipeline::Selection>,
}

impl RunOptions {
    /// The world these options describe. Every pair of `symbols` must be one the generator knows.
    pub fn world_options(&self) -> Result<WorldOptions, RunError> {
        let mut world = WorldOptions::new(self.seed, self.day)
            .activity(self.activity)
            .edge_cases(self.edge_cases)
            .defect(self.defect);
        if let Some(symbols) = &self.symbols {
            world.universe = restrict_universe(&world.universe, symbols)?;
        }
        Ok(world)
    }
}

/// Only the pairs of `symbols`, each of which must be in `universe` (`--symbols`).
pub fn restrict_universe(universe: &Universe, symbols: &pipeline::Selection) -> Result<Universe, RunError> {
    let known = universe.pairs();
    let unknown: Vec<String> =
        symbols.pairs().iter().filter(|p| !known.contains(p)).map(|(e, s)| format!("{e}:{s}")).collect();
    if !unknown.is_empty() {
        let known: Vec<String> = known.iter().map(|(e, s)| format!("{e}:{s}")).collect();
        return Err(RunError::UnknownPairs { unknown: unknown.join(", "), known: known.join(", ") });
    }
    Ok(universe.restricted_to(&symbols.pairs()))
}

/// Runs the pipeline in-process for one date inside a fresh world and scores it.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    let started_at = Utc::now();
    let world = World::start(options.world_options()?).await?;
    tracing::info!(tardis = %world.tardis.uri(), bigquery = %world.bigquery.uri(), postgres = ?world.postgres().backend(), "World started.");
    let pipeline = world.pipeline().await?;
    let outcome = pipeline.run_day(options.day, "harness").await?;
    let report = score_world(&world, options.day, Some(&outcome), started_at)?;
    if let Some(dir) = &options.report_dir {
        write_report(&report, dir)?;
    }
    Ok(report)
}

/// Scores what landed in `world` for `day` against the generator's truth.
pub fn score_world(
    world: &World,
    day: TradingDay,
    outcome: Option<&pipeline::RunOutcome>,
    started_at: chrono::DateTime<Utc>,
) -> Result<Report, RunError> {
    let truth = world.generator.day_truth(day);
    let landed = landed_candles(&world.bigquery, day).map_err(RunError::Landed)?;
    let instrument_rows = world.bigquery.partition_rows(PROJECT, DATASET, "instruments", &day.compact());
    let landed_instruments = instrument_rows.len() as u64;
    let expected_instruments: Vec<Row> = world
        .generator
        .universe()
        .exchanges()
        .iter()
        // Every instrument the API lists for the exchange, traded or not, expired or not: the snapshot holds them all.
        .flat_map(|e| e.listed().map(|s| &s.instrument))
        .map(|i| contract::expected_instrument_row(i, day))
        .collect();
    let layouts: Vec<(TableDef, Option<Value>)> = pipeline::bigquery::schema::TABLES
        .iter()
        .map(|table| (*table, world.bigquery.table_resource(PROJECT, DATASET, table.name)))
        .collect();
    // A world runs one date: rows in any other partition were written there by the run.
    let elsewhere: Vec<contract::RowsElsewhere> = pipeline::bigquery::schema::TABLES
        .iter()
        .flat_map(|table| {
            let partitions = world.bigquery.partitions(PROJECT, DATASET, table.name);
            partitions
                .into_iter()
                .filter(|(partition, _)| *partition != day.compact())
                .map(|(partition, rows)| contract::RowsElsewhere { table: table.name.to_owned(), partition, rows })
        })
        .collect();
    let tables = LandedTables {
        instruments: &instrument_rows,
        expected_instruments: &expected_instruments,
        layouts: &layouts,
        elsewhere: &elsewhere,
    };
    let mut validation = scoring::score(&truth, &landed, &tables, outcome, market::checks::Thresholds::DEFAULT);
    // Wrong candles: name the known mistake that explains them, if one does (first sample of the check).
    if let Some(check) = validation.checks.iter_mut().find(|c| c.id == ids::CANDLES_EQUAL_TRUTH)
        && let Some(sample) = crate::diagnosis::diagnose(&world.generator, day, &landed, check.failed)
    {
        check.samples.insert(0, sample);
        check.samples.truncate(market::checks::MAX_SAMPLES);
    }
    Ok(crate::report::build(&ReportInput {
        day,
        seed: world.generator.seed(),
        truth: &truth,
        landed: &landed,
        landed_instruments,
        outcome,
        validation,
        postgres: world.postgres().backend(),
        started_at,
        defect: world.defect,
    }))
}

/// Writes `report.json`, `report.md` and `report.html` into `dir`, each file atomically; returns the path of
/// `report.json`.
pub fn write_report(report: &Report, dir: &Path) -> Result<PathBuf, RunError> {
    pipeline::report::write_all(report, dir).map_err(|source| RunError::Io {
        what: "write the reports into",
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(dir.join("report.json"))
}
