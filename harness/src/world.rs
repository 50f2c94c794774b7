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
use pipeline::bigquery::{AccessToken, BigQueryAuth, BigQueryConfig};
use pipeline::config::DatabaseUrl;
use pipeline::defects::Defect;
use pipeline::retry::RetryPolicy;
use pipeline::tardis::{ApiKey, TardisConfig};
use pipeline::{Config, Pipeline, Selection};

use crate::postgres::{PostgresServer, ProvisionError, TestDatabase};

/// The BigQuery project and dataset the fakes use.
pub const PROJECT: &str = "harness-project";
pub const DATASET: &str = "market_data";
/// The access token the fake BigQuery is given (it accepts any).
pub const BIGQUERY_TOKEN: &str = "harness-token";

/// The fakes' part of the environment contract, plus the variable the official BigQuery clients read
/// (`BIGQUERY_EMULATOR_HOST`).
pub fn fakes_env(tardis: &MockTardis, bigquery: &FakeBigQuery) -> Vec<(&'static str, String)> {
    vec![
        ("TARDIS_DATASETS_URL", tardis.datasets_url()),
        ("TARDIS_API_URL", tardis.api_url()),
        ("TARDIS_API_KEY", tardis.api_key()),
        ("BIGQUERY_API_URL", bigquery.uri()),
        ("BIGQUERY_EMULATOR_HOST", bigquery.uri()),
        ("BIGQUERY_PROJECT", PROJECT.to_owned()),
        ("BIGQUERY_DATASET", DATASET.to_owned()),
        ("BIGQUERY_ACCESS_TOKEN", BIGQUERY_TOKEN.to_owned()),
    ]
}

#[derive(Debug, Clone)]
pub struct WorldOptions {
    pub seed: u64,
    /// The last day the mock Tardis has exported.
    pub exported_through: TradingDay,
    pub universe: Universe,
    /// Trade-rate multiplier of the generator (1.0 is a realistic day; tests use less for speed).
    pub activity: f64,
    /// A deliberate defect of the in-process pipeline (the defect suite).
    pub defect: Option<Defect>,
}

impl WorldOptions {
    pub fn new(seed: u64, exported_through: TradingDay) -> WorldOptions {
        WorldOptions { seed, exported_through, universe: Universe::default_universe(), activity: 1.0, defect: None }
    }

    pub fn defect(mut self, defect: Option<Defect>) -> WorldOptions {
        self.defect = defect;
        self
    }

    pub fn activity(mut self, activity: f64) -> WorldOptions {
        self.activity = activity;
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
        let generator =
            Arc::new(Generator::new(options.seed, options.universe.clone()).with_activity(options.activity));
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
        Ok(World { generator, tardis, bigquery, database, data_dir, defect: options.defect, server })
    }

    pub fn postgres(&self) -> &Arc<PostgresServer> {
        &self.server
    }

    /// Every pair of the world's universe.
    pub fn selection(&self) -> Selection {
        Selection::from_pairs(self.generator.universe().pairs())
    }

    /// Pipeline configuration pointing at this world, with fast retries and polls.
    pub fn pipeline_config(&self) -> Config {
        let url = |text: String| url::Url::parse(&text).expect("fake URLs are valid");
        Config {
            tardis: TardisConfig {
                datasets_url: url(self.tardis.datasets_url()),
                api_url: url(self.tardis.api_url()),
                api_key: ApiKey::new(&self.tardis.api_key()),
                concurrency: 4,
                retry: RetryPolicy::FAST,
                export_wait: Duration::ZERO,
                export_poll: Duration::from_millis(10),
                swallow_rate_limits: false,
            },
            bigquery: BigQueryConfig {
                api_url: url(self.bigquery.uri()),
                project: PROJECT.to_owned(),
                dataset: DATASET.to_owned(),
                location: "US".to_owned(),
                auth: BigQueryAuth::StaticToken(AccessToken::new(BIGQUERY_TOKEN)),
                retry: RetryPolicy::FAST,
                poll_interval: Duration::from_millis(5),
                job_timeout: Duration::from_secs(30),
                page_size: 10_000,
                table_suffix: String::new(),
            },
            database_url: DatabaseUrl::new(self.database.url()),
            data_dir: self.data_dir.path().to_path_buf(),
            selection: self.selection(),
            validation: market::checks::ValidationConfig::default(),
            defect: self.defect,
        }
    }

    /// A pipeline connected to this world.
    pub async fn pipeline(&self) -> Result<Pipeline, pipeline::SetupError> {
        Pipeline::connect(self.pipeline_config()).await
    }

    /// The environment an external pipeline gets (the documented contract).
    pub fn env(&self) -> Vec<(String, String)> {
        let config = self.pipeline_config();
        let mut vars = fakes_env(&self.tardis, &self.bigquery);
        vars.push(("DATABASE_URL", self.database.url().to_owned()));
        vars.push(("PIPELINE_SYMBOLS", config.selection.to_string()));
        vars.into_iter().map(|(name, value)| (name.to_owned(), value)).collect()
    }
}
