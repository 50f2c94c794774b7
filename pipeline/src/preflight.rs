//! Preflight: can a date range run now? Tardis answers and its `exportedUntil` covers every date with
//! every configured symbol listed; the BigQuery dataset and tables exist (created when missing, as the
//! upload would); the database is migrated. `pipeline preflight` runs it on its own, the scheduler
//! before each date. Showing the report is the caller's business.
//!
//! A failed check is a finding with its cause, never an `Err`. Preflight runs no stage and writes no
//! data; it does not check what only a download can tell (a key's access to a given day's files).

use std::sync::Arc;

use chrono::SecondsFormat;
use market::{DateRange, Exchange, Symbol, TradingDay};

use crate::bigquery::schema::TABLES;
use crate::bigquery::{BigQueryClient, BigQueryConfig};
use crate::config::{Config, Selection};
use crate::run::Pipeline;
use crate::store::{SharedBudget, Store};
use crate::tardis::TardisClient;

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Database,
    Tardis,
    Bigquery,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Database => "database",
            CheckKind::Tardis => "tardis",
            CheckKind::Bigquery => "bigquery",
        }
    }
}

/// One check: passed, or failed with its cause in `detail`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub check: CheckKind,
    /// What was checked within its kind: an exchange for Tardis, the dataset for BigQuery.
    pub subject: String,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    fn new(check: CheckKind, subject: impl Into<String>, result: Result<String, String>) -> Check {
        let (passed, detail) = match result {
            Ok(detail) => (true, detail),
            Err(cause) => (false, cause),
        };
        Check { check, subject: subject.into(), passed, detail }
    }

    /// What the check is about: `tardis bitmex`, `bigquery my-project.market_data`, `database`.
    pub fn label(&self) -> String {
        if self.subject.is_empty() {
            self.check.as_str().to_owned()
        } else {
            format!("{} {}", self.check.as_str(), self.subject)
        }
    }
}

/// Every check of one preflight.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreflightReport {
    pub from: TradingDay,
    pub to: TradingDay,
    pub passed: bool,
    pub checks: Vec<Check>,
}

impl PreflightReport {
    pub fn new(range: DateRange, checks: Vec<Check>) -> PreflightReport {
        PreflightReport { from: range.start(), to: range.end(), passed: checks.iter().all(|c| c.passed), checks }
    }

    pub fn failing(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// The failing checks in one line (`tardis bitmex: ...; bigquery: ...`), empty when all passed.
    pub fn cause(&self) -> String {
        self.failing().map(|c| format!("{}: {}", c.label(), c.detail)).collect::<Vec<_>>().join("; ")
    }
}

/// The database check: connecting applied any pending migration; this reports what is applied.
pub async fn check_database(store: &Store) -> Check {
    let result = match store.migration_state().await {
        Ok(state) if state.is_current() => Ok(format!(
            "migrated: {} of {} migrations applied (latest {})",
            state.applied,
            state.known,
            state.latest.map_or_else(|| "-".to_owned(), |v| v.to_string())
        )),
        Ok(state) => Err(format!(
            "{} migrations applied but this binary knows {}: run `pipeline migrate` with the newest binary",
            state.applied, state.known
        )),
        Err(err) => Err(err.to_string()),
    };
    Check::new(CheckKind::Database, "", result)
}

/// One check per exchange: its details answer, every configured symbol is a trades dataset, and
/// `exportedUntil` covers the whole of every date of `range`.
pub async fn check_tardis(tardis: &TardisClient, selection: &Selection, range: DateRange) -> Vec<Check> {
    let mut checks = Vec::new();
    for (exchange, symbols) in selection.exchanges() {
        let result = tardis_exchange(tardis, exchange, symbols, range).await;
        checks.push(Check::new(CheckKind::Tardis, exchange.as_str(), result));
    }
    checks
}

async fn tardis_exchange(
    tardis: &TardisClient,
    exchange: &Exchange,
    symbols: &[Symbol],
    range: DateRange,
) -> Result<String, String> {
    let details = tardis.exchange_details(exchange).await.map_err(|e| format!("unreachable or refused: {e}"))?;
    let datasets = details.datasets.ok_or("the exchange details have no `datasets` section")?;
    let unlisted: Vec<&str> = symbols
        .iter()
        .filter(|symbol| {
            !datasets.symbols.iter().any(|s| s.id == symbol.as_str() && s.data_types.iter().any(|t| t == "trades"))
        })
        .map(Symbol::as_str)
        .collect();
    if !unlisted.is_empty() {
        return Err(format!("not trades datasets on Tardis: {}", unlisted.join(", ")));
    }
    let Some(until) = datasets.exported_until else {
        return Err("`datasets.exportedUntil` is missing: nothing can be said exported".to_owned());
    };
    let covered = |day: TradingDay| until.timestamp_micros() >= day.end_us();
    let until_text = until.to_rfc3339_opts(SecondsFormat::Secs, true);
    match range.days().find(|day| !covered(*day)) {
        None => {
            let noun = if symbols.len() == 1 { "symbol" } else { "symbols" };
            Ok(format!("{} {noun} listed; exportedUntil {until_text} covers {}", symbols.len(), range.end()))
        }
        Some(first) => {
            let missing = if first == range.end() { first.to_string() } else { format!("{first}..{}", range.end()) };
            Err(format!("{missing} not exported yet (exportedUntil {until_text})"))
        }
    }
}

/// The BigQuery check: the dataset and every table exist or were created with the expected schema.
pub async fn check_bigquery(bigquery: &BigQueryClient) -> Check {
    let subject = bigquery_subject(bigquery.config());
    let result = async {
        bigquery.ensure_dataset().await.map_err(|e| format!("dataset: {e}"))?;
        for table in &TABLES {
            bigquery.ensure_table(table).await.map_err(|e| format!("table {}: {e}", bigquery.table_name(table)))?;
        }
        let names: Vec<String> = TABLES.iter().map(|t| bigquery.table_name(t)).collect();
        Ok(format!("dataset and tables {} exist (created when missing)", names.join(", ")))
    }
    .await;
    Check::new(CheckKind::Bigquery, subject, result)
}

/// Every check for `range` with a connected pipeline (what the scheduler runs before each date).
pub async fn preflight(pipeline: &Pipeline, range: DateRange) -> PreflightReport {
    let mut checks = vec![check_database(pipeline.store()).await];
    checks.extend(check_tardis(pipeline.tardis(), &pipeline.config().selection, range).await);
    checks.push(check_bigquery(pipeline.bigquery()).await);
    PreflightReport::new(range, checks)
}

/// Every check for `range` from configuration alone: a client that cannot even be set up (a database that
/// does not answer, credentials that do not load) is a failed check, not an error, since that is what
/// preflight is for.
pub async fn preflight_config(config: &Config, range: DateRange) -> PreflightReport {
    let (database, store) = match Store::connect(config.database_url.expose()).await {
        Ok(store) => (check_database(&store).await, Some(store)),
        Err(err) => (Check::new(CheckKind::Database, "", Err(err.to_string())), None),
    };
    let mut checks = vec![database];
    // With a database, its requests draw on the budget every process shares, as a run's do.
    let tardis = TardisClient::new(config.tardis.clone()).map(|tardis| match store {
        Some(store) => {
            tardis.with_budget(Arc::new(SharedBudget::new(store, SharedBudget::TARDIS, config.tardis.rate_limit)))
        }
        None => tardis,
    });
    match tardis {
        Ok(tardis) => checks.extend(check_tardis(&tardis, &config.selection, range).await),
        Err(err) => checks.push(Check::new(CheckKind::Tardis, "", Err(format!("client set-up failed: {err}")))),
    }
    checks.push(match BigQueryClient::new(config.bigquery.clone()).await {
        Ok(bigquery) => check_bigquery(&bigquery).await,
        Err(err) => Check::new(CheckKind::Bigquery, bigquery_subject(&config.bigquery), Err(err.to_string())),
    });
    PreflightReport::new(range, checks)
}

fn bigquery_subject(config: &BigQueryConfig) -> String {
    format!("{}.{}", config.project, config.dataset)
}
