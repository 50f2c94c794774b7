//! One date through every stage: instruments → download → candles → upload → validation, each stage
//! timed and recorded in Postgres. The instruments come first because the download stage reads each file
//! once, as it arrives, verifying it and building its candles (with the grid checks that need the pair's
//! tick and lot); the candles stage then merges what those passes built.
//!
//! A stage that fails ends the run as failed and nothing after it runs; in particular nothing is
//! uploaded unless every configured file downloaded and verified. Upload replaces the date's partitions
//! (`WRITE_TRUNCATE`), so rerunning a date never duplicates rows.

use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use market::checks::{self, CountViews, DayInput, Validation};
use market::{Instrument, TradingDay};
use rand::Rng;
use serde_json::json;

use crate::bigquery::schema::{CANDLES_1M, INSTRUMENTS, TABLES};
use crate::bigquery::{BigQueryClient, BigQueryError, candle_to_json, instrument_to_json};
use crate::candles::{self, CandleSet, DayFile, Increments};
use crate::config::Config;
use crate::hooks::{Download, Hooks, Load, NoHooks};
use crate::store::{RunCounts, RunStatus, SharedBudget, StageRecord, Store, StoreError};
use crate::tardis::{TardisClient, TardisError};

/// Why a validation could not be carried out (its findings are never errors).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    BigQuery(#[from] BigQueryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("failed to read the trades files: {0}")]
    Files(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("failed to set up the Tardis client: {0}")]
    Tardis(#[source] reqwest::Error),
    #[error(transparent)]
    BigQuery(#[from] BigQueryError),
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Pipeline {
    config: Config,
    tardis: TardisClient,
    bigquery: BigQueryClient,
    store: Store,
    /// The pipeline's own behaviour ([`NoHooks`]) unless a caller replaced it (see `hooks.rs`).
    hooks: Arc<dyn Hooks>,
    /// Told of every run that ends (a command's metrics).
    observers: Vec<Arc<dyn RunObserver>>,
}

/// Told of every run that ended, once it is recorded: how a command counts runs (its metrics) without the
/// pipeline knowing what counts them.
pub trait RunObserver: Send + Sync + std::fmt::Debug {
    fn run_finished(&self, outcome: &RunOutcome);
}

/// How a run ended. A failed run is an outcome, not an `Err`: its error is recorded like its stages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunOutcome {
    pub run_id: i64,
    pub run_key: String,
    pub day: TradingDay,
    pub status: RunStatus,
    pub error: Option<String>,
    /// True when the failure is about credentials (the same key will fail every date).
    pub auth_failure: bool,
    pub stages: Vec<StageRecord>,
    pub counts: RunCounts,
    pub rows_before_day: u64,
    pub rows_after_day: u64,
    pub validation: Option<Validation>,
}

/// The result of one stage: its record and, when it succeeded, its value.
struct Staged<T> {
    record: StageRecord,
    value: Option<T>,
    auth_failure: bool,
}

async fn stage<T, E, Fut>(
    name: &'static str,
    work: Fut,
    rows: impl Fn(&T) -> (u64, serde_json::Value),
    is_auth: impl Fn(&E) -> bool,
) -> Staged<T>
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let started_at = Utc::now();
    let result = work.await;
    let finished_at = Utc::now();
    match result {
        Ok(value) => {
            let (n, detail) = rows(&value);
            tracing::info!(stage = name, rows = n, ms = (finished_at - started_at).num_milliseconds(), "Stage done.");
            Staged {
                record: StageRecord {
                    stage: name,
                    succeeded: true,
                    started_at,
                    finished_at,
                    rows: Some(n),
                    detail,
                    error: None,
                },
                value: Some(value),
                auth_failure: false,
            }
        }
        Err(err) => {
            let message = format!("{err:#}");
            tracing::error!(stage = name, error = %message, "Stage failed.");
            Staged {
                auth_failure: is_auth(&err),
                record: StageRecord {
                    stage: name,
                    succeeded: false,
                    started_at,
                    finished_at,
                    rows: None,
                    detail: json!({}),
                    error: Some(message),
                },
                value: None,
            }
        }
    }
}

/// Failures of the download stage, all of them (one line each).
#[derive(Debug, thiserror::Error)]
#[error("{} of {} files failed: {}", .failures.len(), .total, .failures.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct DownloadFailures {
    pub total: usize,
    pub failures: Vec<TardisError>,
}

fn no_auth<E>(_: &E) -> bool {
    false
}

impl Pipeline {
    /// Connects to Postgres (migrating it) and builds the clients.
    pub async fn connect(config: Config) -> Result<Pipeline, SetupError> {
        let store = Store::connect(config.database_url.expose()).await?;
        Pipeline::with_store(config, store).await
    }

    /// Builds the clients over `store`. The Tardis client draws on the budget every process on this database
    /// shares (`store::SharedBudget`): its pauses always, its rate when `TARDIS_RATE_LIMIT` is set.
    pub async fn with_store(config: Config, store: Store) -> Result<Pipeline, SetupError> {
        let budget = SharedBudget::new(store.clone(), SharedBudget::TARDIS, config.tardis.rate_limit);
        let tardis =
            TardisClient::new(config.tardis.clone()).map_err(SetupError::Tardis)?.with_budget(Arc::new(budget));
        let bigquery = BigQueryClient::new(config.bigquery.clone()).await?;
        Ok(Pipeline { config, tardis, bigquery, store, hooks: Arc::new(NoHooks), observers: Vec::new() })
    }

    /// The same pipeline with `hooks` at its stage boundaries instead of its own behaviour.
    pub fn with_hooks(mut self, hooks: Arc<dyn Hooks>) -> Pipeline {
        self.hooks = hooks;
        self
    }

    /// The same pipeline, telling `observer` of every run that ends.
    pub fn observed_by(mut self, observer: Arc<dyn RunObserver>) -> Pipeline {
        self.observers.push(observer);
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn bigquery(&self) -> &BigQueryClient {
        &self.bigquery
    }

    pub fn tardis(&self) -> &TardisClient {
        &self.tardis
    }

    /// The download stage: every pair's file, each verified and built into candles as it arrives.
    async fn download(&self, day: TradingDay, increments: &Increments) -> Result<Vec<DayFile>, DownloadFailures> {
        let selection = &self.config.selection;
        let pairs = self.hooks.pairs(selection.pairs());
        let total = pairs.len();
        // Readiness first, per exchange: a day that is not exported yet fails here, not as empty files.
        let mut failures = Vec::new();
        for (exchange, symbols) in selection.exchanges() {
            if let Err(err) = self.tardis.ensure_ready(exchange, symbols, day).await {
                failures.push(err);
            }
        }
        if !failures.is_empty() {
            return Err(DownloadFailures { total, failures });
        }
        let data_dir = &self.config.data_dir;
        let results: Vec<Result<DayFile, TardisError>> = futures::stream::iter(pairs)
            .map(|(exchange, symbol)| async move {
                let increments = increments.get(&(exchange.clone(), symbol.clone())).copied();
                let file = Download { exchange: &exchange, symbol: &symbol, day, data_dir, increments };
                self.hooks.download(&self.tardis, file).await
            })
            .buffer_unordered(self.config.tardis.concurrency.max(1))
            .collect()
            .await;
        let mut files = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(file) => files.push(file),
                Err(err) => failures.push(err),
            }
        }
        if failures.is_empty() {
            files.sort_by(|a, b| (&a.file.exchange, &a.file.symbol).cmp(&(&b.file.exchange, &b.file.symbol)));
            Ok(files)
        } else {
            Err(DownloadFailures { total, failures })
        }
    }

    async fn instruments(&self) -> Result<Vec<Instrument>, TardisError> {
        let mut all = Vec::new();
        for (exchange, _) in self.config.selection.exchanges() {
            all.extend(self.tardis.instruments(exchange).await?);
        }
        Ok(all)
    }

    async fn upload(
        &self,
        day: TradingDay,
        set: &CandleSet,
        instruments: &[Instrument],
        run_key: &str,
    ) -> Result<serde_json::Value, BigQueryError> {
        self.bigquery.ensure_dataset().await?;
        for table in &TABLES {
            self.bigquery.ensure_table(self.hooks.table(table)).await?;
        }
        let candle_rows: Vec<serde_json::Value> = self.hooks.candles(&set.candles).iter().map(candle_to_json).collect();
        let load = |table, rows| Load { table, day, rows, run_key };
        let candles = self.hooks.load(&self.bigquery, load(self.hooks.table(&CANDLES_1M), &candle_rows)).await?;
        let instrument_rows: Vec<serde_json::Value> = instruments.iter().map(|i| instrument_to_json(i, day)).collect();
        let instruments =
            self.hooks.load(&self.bigquery, load(self.hooks.table(&INSTRUMENTS), &instrument_rows)).await?;
        Ok(json!({"candles": candles, "instruments": instruments}))
    }

    /// Validates what landed in BigQuery for `day` against what the downloaded trades say (`set`), the
    /// counts recorded in Postgres (`recorded`) and the history of earlier dates, and stores the result.
    pub async fn validate(
        &self,
        day: TradingDay,
        set: &CandleSet,
        recorded: Option<RunCounts>,
        run_id: Option<i64>,
        trigger: &str,
    ) -> Result<Validation, ValidateError> {
        let instruments = self.bigquery.read_instruments(day).await?;
        self.validate_against(day, set, &instruments, recorded, run_id, trigger).await
    }

    /// [`Self::validate`] with the date's instruments as read from BigQuery already.
    async fn validate_against(
        &self,
        day: TradingDay,
        set: &CandleSet,
        instruments: &[Instrument],
        recorded: Option<RunCounts>,
        run_id: Option<i64>,
        trigger: &str,
    ) -> Result<Validation, ValidateError> {
        let landed = self.bigquery.read_candles(day).await?;
        let config = &self.config.validation;
        let history = self.store.metric_history(day, config.anomaly_window_days).await?;
        let configured = self.config.selection.pairs();
        let landed_trades: u64 = landed.iter().map(|c| c.trade_count).sum();
        let recorded = recorded.unwrap_or_default();
        let counts = [
            CountViews {
                what: "trades in the day".to_owned(),
                views: vec![
                    ("download".to_owned(), set.trades_in_day),
                    ("postgres".to_owned(), recorded.trades),
                    ("bigquery".to_owned(), landed_trades),
                ],
            },
            CountViews {
                what: "candles".to_owned(),
                views: vec![
                    ("built".to_owned(), set.candles.len() as u64),
                    ("postgres".to_owned(), recorded.candles),
                    ("bigquery".to_owned(), landed.len() as u64),
                ],
            },
            CountViews {
                what: "instruments".to_owned(),
                views: vec![
                    ("postgres".to_owned(), u64::from(recorded.instruments)),
                    ("bigquery".to_owned(), instruments.len() as u64),
                ],
            },
        ];
        let input = DayInput {
            day,
            configured: &configured,
            instruments,
            files: &set.profiles,
            expected: &set.candles,
            direct: &set.direct,
            landed: &landed,
            counts: &counts,
            history: &history,
        };
        let validation = checks::validate_day(&input, config);
        self.store.record_validation(day, run_id, trigger, &validation).await?;
        Ok(validation)
    }

    /// Validates a date again, from the trades files on disk (downloading, with verification, those that
    /// are missing), what is in BigQuery now and the counts of the date's latest succeeded run. This is the
    /// post-backfill verification of `pipeline validate`. A file that cannot be had counts against
    /// completeness rather than failing the validation.
    pub async fn revalidate(&self, day: TradingDay) -> Result<Validation, ValidateError> {
        let instruments = self.bigquery.read_instruments(day).await?;
        let increments = candles::increments(&instruments);
        let data_dir = &self.config.data_dir;
        let mut files = Vec::new();
        for (exchange, symbol) in self.config.selection.pairs() {
            let known = increments.get(&(exchange.clone(), symbol.clone())).copied();
            let path = crate::tardis::trades_path(data_dir, &exchange, &symbol, day);
            let (e, s, p) = (exchange.clone(), symbol.clone(), path.clone());
            let on_disk =
                tokio::task::spawn_blocking(move || candles::inspect(&p, &e, &s, day, known).ok()).await.ok().flatten();
            match on_disk {
                Some(file) => files.push(file),
                None => match candles::download(&self.tardis, &exchange, &symbol, day, data_dir, known).await {
                    Ok(file) => files.push(file),
                    Err(err) => {
                        tracing::warn!(%exchange, %symbol, %day, error = %err, "Trades file unavailable for re-validation.")
                    }
                },
            }
        }
        let hooks = Arc::clone(&self.hooks);
        let set = tokio::task::spawn_blocking(move || hooks.build(&files, &increments))
            .await
            .map_err(|e| ValidateError::Files(e.to_string()))?
            .map_err(|e| ValidateError::Files(e.to_string()))?;
        let run_id = self.store.latest_succeeded_run(day).await?;
        let recorded = match run_id {
            Some(id) => self.store.run_counts(id).await?,
            None => None,
        };
        self.validate_against(day, &set, &instruments, recorded, run_id, "revalidate").await
    }

    /// Runs every stage for `day` and records the run. `Err` only when the run could not be recorded.
    pub async fn run_day(&self, day: TradingDay, trigger: &str) -> Result<RunOutcome, StoreError> {
        let run_key = format!("{:012x}", rand::rng().random::<u64>() & 0xffff_ffff_ffff);
        let run_id = self.store.start_run(day, &run_key, trigger).await?;
        tracing::info!(%day, run_id, %run_key, "Run started.");
        let mut outcome = RunOutcome {
            run_id,
            run_key: run_key.clone(),
            day,
            status: RunStatus::Running,
            error: None,
            auth_failure: false,
            stages: Vec::new(),
            counts: RunCounts::default(),
            rows_before_day: 0,
            rows_after_day: 0,
            validation: None,
        };
        let result = self.run_stages(day, &run_key, &mut outcome).await;
        outcome.status = if result.is_ok() { RunStatus::Succeeded } else { RunStatus::Failed };
        outcome.error = result.err();
        let validation = outcome.validation.as_ref().map(|v| (&v.scores, v.status));
        let report = serde_json::to_value(&outcome).unwrap_or_default();
        self.store
            .finish_run(run_id, outcome.status, outcome.error.as_deref(), outcome.counts, validation, &report)
            .await?;
        for observer in &self.observers {
            observer.run_finished(&outcome);
        }
        match &outcome.error {
            None => tracing::info!(%day, run_id, "Run succeeded."),
            Some(error) => tracing::error!(%day, run_id, %error, "Run failed."),
        }
        Ok(outcome)
    }

    /// Adds a finished stage to the outcome and records it at once, so a killed process leaves the
    /// stages it finished on record.
    async fn finished(&self, outcome: &mut RunOutcome, record: StageRecord) -> Result<(), String> {
        self.store.record_stage(outcome.run_id, &record).await.map_err(|e| e.to_string())?;
        outcome.stages.push(record);
        Ok(())
    }

    async fn run_stages(&self, day: TradingDay, run_key: &str, outcome: &mut RunOutcome) -> Result<(), String> {
        let instruments = stage(
            "instruments",
            self.instruments(),
            |list: &Vec<Instrument>| (list.len() as u64, json!({})),
            TardisError::is_auth,
        )
        .await;
        // Without the instruments the files are still fetched and verified (the grids go unchecked), so the
        // record says what else was wrong; the run fails below either way.
        let increments = instruments.value.as_deref().map(candles::increments).unwrap_or_default();
        let download = stage(
            "download",
            self.download(day, &increments),
            |files: &Vec<DayFile>| {
                let rows = files.iter().map(|f| f.file.stats.rows).sum();
                let detail = json!({
                    "files": files.len(),
                    "bytes": files.iter().map(|f| f.file.bytes).sum::<u64>(),
                    "rejected_rows": files.iter().map(|f| f.file.stats.rejected).sum::<u64>(),
                    "retried_files": files.iter().filter(|f| f.file.attempts > 1).count(),
                    "retries": files.iter().map(|f| u64::from(f.file.attempts.saturating_sub(1))).sum::<u64>(),
                });
                (rows, detail)
            },
            |e: &DownloadFailures| e.failures.iter().any(TardisError::is_auth),
        )
        .await;
        outcome.auth_failure = download.auth_failure || instruments.auth_failure;
        self.finished(outcome, download.record.clone()).await?;
        self.finished(outcome, instruments.record.clone()).await?;
        let (Some(files), Some(instruments)) = (download.value, instruments.value) else {
            let errors: Vec<String> =
                [&download.record, &instruments.record].iter().filter_map(|r| r.error.clone()).collect();
            return Err(errors.join("; "));
        };
        outcome.counts.files = u32::try_from(files.len()).unwrap_or(u32::MAX);
        outcome.counts.instruments = u32::try_from(instruments.len()).unwrap_or(u32::MAX);

        let hooks = Arc::clone(&self.hooks);
        let built = stage(
            "candles",
            async move {
                tokio::task::spawn_blocking(move || hooks.build(&files, &increments))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
            },
            |set: &CandleSet| {
                (
                    set.candles.len() as u64,
                    json!({"trades_in_day": set.trades_in_day, "rows_before_day": set.rows_before_day, "rows_after_day": set.rows_after_day}),
                )
            },
            no_auth,
        )
        .await;
        self.finished(outcome, built.record.clone()).await?;
        let set = built.value.ok_or_else(|| built.record.error.clone().unwrap_or_default())?;
        outcome.counts.trades = set.trades_in_day;
        outcome.counts.candles = set.candles.len() as u64;
        outcome.rows_before_day = set.rows_before_day;
        outcome.rows_after_day = set.rows_after_day;
        self.store.record_counts(outcome.run_id, outcome.counts).await.map_err(|e| e.to_string())?;

        let uploaded = stage(
            "upload",
            self.upload(day, &set, &instruments, run_key),
            |_: &serde_json::Value| (set.candles.len() as u64 + instruments.len() as u64, json!({})),
            no_auth,
        )
        .await;
        let mut record = uploaded.record.clone();
        if let Some(detail) = &uploaded.value {
            record.detail = detail.clone();
        }
        self.finished(outcome, record).await?;
        if uploaded.value.is_none() {
            return Err(uploaded.record.error.unwrap_or_default());
        }

        let run_id = outcome.run_id;
        let validated = stage(
            "validation",
            async {
                let recorded = self.store.run_counts(run_id).await?;
                self.validate(day, &set, recorded, Some(run_id), "run").await
            },
            |v: &Validation| {
                (v.checks.iter().map(|c| c.evaluated).sum(), json!({"status": v.status, "scores": v.scores}))
            },
            no_auth,
        )
        .await;
        self.finished(outcome, validated.record.clone()).await?;
        outcome.validation = validated.value;
        match outcome.validation {
            Some(_) => Ok(()),
            None => Err(validated.record.error.unwrap_or_default()),
        }
    }
}
