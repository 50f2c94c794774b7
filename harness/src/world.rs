//! One test world: a mock Tardis and a fake BigQuery on loopback, a fresh Postgres database, a
//! temporary data directory, and the pipeline configuration that points at all of them.
//!
//! Every test and every `harness run` builds its own world, so nothing is shared between them
//! (one world per test, as in zero-to-production's `spawn_app`).

use std::sync::Arc;
use std::time::Duration;

use fakes::bigquery::FakeBigQuery;
use fakes::tardis::{DatasetMatch, Fault, MockTardis, TardisOptions};
use fixtures::{DataType, Generator, Universe};
use market::{Exchange, Symbol, TradingDay};
use pipeline::env::{Environment, Var};
use pipeline::retry::RetryPolicy;
use pipeline::{Config, Pipeline, Selection};

use crate::defects::Defect;
pub use crate::environment::{DATASET, PROJECT};
use crate::environment::{Endpoints, Via, environment};
use crate::postgres::{PostgresServer, ProvisionError, TestDatabase};

#[derive(Debug, Clone)]
pub struct WorldOptions {
    pub seed: u64,
    /// The last day the mock Tardis has exported.
    pub exported_through: TradingDay,
    pub universe: Universe,
    /// Trade-rate multiplier of the generator (1.0 is a realistic day; tests use less for speed).
    pub activity: f64,
    /// Edge-case episodes per symbol and day of the generator (`Generator::with_edge_cases`).
    pub edge_cases: f64,
    /// A deliberate defect of the in-process pipeline (the defect suite).
    pub defect: Option<Defect>,
}

impl WorldOptions {
    pub fn new(seed: u64, exported_through: TradingDay) -> WorldOptions {
        WorldOptions {
            seed,
            exported_through,
            universe: Universe::default_universe(),
            activity: 1.0,
            edge_cases: fixtures::DEFAULT_EDGE_CASES_PER_DAY,
            defect: None,
        }
    }

    pub fn defect(mut self, defect: Option<Defect>) -> WorldOptions {
        self.defect = defect;
        self
    }

    pub fn activity(mut self, activity: f64) -> WorldOptions {
        self.activity = activity;
        self
    }

    pub fn edge_cases(mut self, per_day: f64) -> WorldOptions {
        self.edge_cases = per_day;
        self
    }

    /// Only these pairs of the default universe.
    pub fn pairs(mut self, pairs: &[(&str, &str)]) -> WorldOptions {
        let pairs: Vec<(Exchange, Symbol)> = pairs
            .iter()
            .map(|(e, s)| (Exchange::parse(e).expect("valid exchange id"), Symbol::parse(s).expect("valid symbol")))
            .collect();
        self.universe = self.universe.restricted_to(&pairs);
        self
    }
}

/// A running world. Dropping it stops the fakes and drops the database.
pub struct World {
    pub generator: Arc<Generator>,
    pub tardis: MockTardis,
    pub bigquery: FakeBigQuery,
    pub database: TestDatabase,
    pub data_dir: tempfile::TempDir,
    pub defect: Option<Defect>,
    /// The fault scenario's network fronts the pipeline talks to instead of the fakes, if any.
    via: Option<Via>,
    /// Settings of the environment contract a fault scenario asks for.
    overrides: Vec<(Var, String)>,
    // Declared last: dropped after the database it hosts.
    server: Arc<PostgresServer>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("tardis", &self.tardis.uri())
            .field("bigquery", &self.bigquery.uri())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error(transparent)]
    Postgres(#[from] ProvisionError),
    #[error("failed to create a temporary data directory: {0}")]
    TempDir(#[source] std::io::Error),
}

impl World {
    /// Provisions Postgres (see [`PostgresServer::provision`]) and starts a world on it.
    pub async fn start(options: WorldOptions) -> Result<World, WorldError> {
        let server = Arc::new(PostgresServer::provision().await?);
        World::start_on(server, options).await
    }

    /// Starts a world with a fresh database on an existing server.
    pub async fn start_on(server: Arc<PostgresServer>, options: WorldOptions) -> Result<World, WorldError> {
        let generator = Arc::new(
            Generator::new(options.seed, options.universe.clone())
                .with_activity(options.activity)
                .with_edge_cases(options.edge_cases),
        );
        let database = server.fresh_database().await?;
        let tardis =
            MockTardis::start(generator.clone(), TardisOptions::exported_through(options.exported_through)).await;
        let bigquery = FakeBigQuery::start().await;
        let data_dir = tempfile::Builder::new().prefix("harness-data-").tempdir().map_err(WorldError::TempDir)?;
        if options.defect == Some(Defect::Swallowed429) {
            // The defect needs a rate limit to swallow: the first file of the day answers 429 once.
            if let Some((exchange, symbol)) = generator.universe().pairs().first() {
                let file =
                    DatasetMatch::file(exchange.as_str(), DataType::Trades, symbol.as_str(), options.exported_through);
                tardis.fail_next(file, 1, Fault::rate_limited(1));
            }
        }
        Ok(World {
            generator,
            tardis,
            bigquery,
            database,
            data_dir,
            defect: options.defect,
            via: None,
            overrides: Vec::new(),
            server,
        })
    }

    pub fn postgres(&self) -> &Arc<PostgresServer> {
        &self.server
    }

    /// Every pair of the world's universe.
    pub fn selection(&self) -> Selection {
        Selection::from_pairs(self.generator.universe().pairs())
    }

    /// Sends the pipeline through `via` (a fault scenario's fronts) instead of straight to the fakes.
    pub fn route_through(&mut self, via: Via) {
        self.via = Some(via);
    }

    /// Sets a variable of the pipeline's environment on top of what the world gives (a fault scenario's
    /// `[environment]`).
    pub fn set_var(&mut self, var: Var, value: String) {
        self.overrides.retain(|(v, _)| *v != var);
        self.overrides.push((var, value));
    }

    /// The pipeline's environment contract pointing at this world (what a pipeline process gets).
    pub fn environment(&self) -> Environment {
        let selection = self.selection();
        let mut env = environment(Endpoints {
            tardis: &self.tardis,
            bigquery: &self.bigquery,
            via: self.via.as_ref(),
            database_url: Some(self.database.url()),
            symbols: Some(&selection),
            data_dir: Some(self.data_dir.path()),
        });
        for (var, value) in &self.overrides {
            env.set(*var, value.clone());
        }
        env
    }

    /// The pipeline configuration of [`World::environment`], with the test overrides that make runs against
    /// loopback fakes quick: fast retries and polls, a short job timeout, smaller pages.
    pub fn pipeline_config(&self) -> Config {
        let mut config = Config::from_environment(&self.environment())
            .expect("a world's environment holds valid URLs, names and pairs");
        config.tardis.concurrency = 4;
        config.tardis.retry = RetryPolicy::FAST;
        config.tardis.export_poll = Duration::from_millis(10);
        config.bigquery.retry = RetryPolicy::FAST;
        config.bigquery.poll_interval = Duration::from_millis(5);
        config.bigquery.job_timeout = Duration::from_secs(30);
        config.bigquery.page_size = 10_000;
        config
    }

    /// A pipeline connected to this world, committing the world's defect if it has one.
    pub async fn pipeline(&self) -> Result<Pipeline, pipeline::SetupError> {
        let pipeline = Pipeline::connect(self.pipeline_config()).await?;
        Ok(match self.defect {
            Some(defect) => pipeline.with_hooks(defect.hooks()),
            None => pipeline,
        })
    }

    /// The environment a pipeline process gets, as `(NAME, value)` pairs (see [`World::environment`]).
    pub fn env(&self) -> Vec<(String, String)> {
        self.environment().vars().map(|(name, value)| (name.to_owned(), value.to_owned())).collect()
    }
}
