//! A fault scenario armed on running fakes: a network front before each fake carrying the scenario's endpoint
//! rules, the fakes' own faults (BigQuery job results, Tardis' `exportedUntil`), and the Postgres fault waiting
//! for its moment. The process fault is the runner's (`recovery`): only it holds the process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fakes::bigquery::FakeBigQuery;
use fakes::front::{Front, FrontRequest, Rule, Select};
use fakes::tardis::MockTardis;
use futures::FutureExt;
use futures::future::BoxFuture;
use market::TradingDay;
use rand::{Rng, SeedableRng};
use sqlx::Connection;

use crate::environment::Via;
use crate::run::RunError;
use crate::scenario::{PostgresAction, PostgresFault, Scenario, When};

/// The database a Postgres fault acts on.
#[derive(Debug, Clone)]
pub struct Database {
    /// A superuser connection URL of the server (any database).
    pub admin_url: String,
    /// The database of the run.
    pub name: String,
    /// A superuser connection URL of the run's database.
    pub url: String,
}

/// Which fake a logged request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Tardis,
    BigQuery,
}

/// A scenario armed: drop it to stop the fronts and every pending fault.
pub struct Armed {
    pub tardis: Front,
    pub bigquery: Front,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The Postgres fault, until it is done.
    postgres_task: Option<tokio::task::JoinHandle<()>>,
    /// What the Postgres fault did, or why it could not (read after the run).
    notes: Arc<Mutex<Vec<String>>>,
    /// Whether the Postgres fault met a connection of the pipeline (`None` until it struck).
    postgres_met: Arc<Mutex<Option<bool>>>,
}

impl std::fmt::Debug for Armed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Armed")
            .field("tardis", &self.tardis.uri())
            .field("bigquery", &self.bigquery.uri())
            .finish_non_exhaustive()
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.postgres_task) {
            task.abort();
        }
    }
}

fn front_error(source: std::io::Error) -> RunError {
    RunError::Listen { what: "fault front", address: std::net::SocketAddr::from(([127, 0, 0, 1], 0)), source }
}

impl Armed {
    /// Arms `scenario` for `day` before `tardis` and `bigquery`, with fronts on free loopback ports (or on
    /// `listeners`, `(tardis, bigquery)`, for `harness mocks serve --faults`). The Postgres fault needs
    /// `database`; without one it is skipped with a note.
    pub async fn arm(
        scenario: &Scenario,
        day: TradingDay,
        seed: u64,
        (tardis, bigquery): (&MockTardis, &FakeBigQuery),
        listeners: Option<(tokio::net::TcpListener, tokio::net::TcpListener)>,
        database: Option<Database>,
    ) -> Result<Armed, RunError> {
        let (tardis_front, bigquery_front) = match listeners {
            Some((t, b)) => (
                Front::start_on(t, &tardis.uri()).map_err(front_error)?,
                Front::start_on(b, &bigquery.uri()).map_err(front_error)?,
            ),
            None => (
                Front::start(&tardis.uri()).await.map_err(front_error)?,
                Front::start(&bigquery.uri()).await.map_err(front_error)?,
            ),
        };
        for (index, fault) in scenario.faults.iter().enumerate() {
            let front = if fault.endpoint.is_tardis() { &tardis_front } else { &bigquery_front };
            let select = match &fault.select {
                // The run's seed moves every probability draw, so that two seeds are two different bad days.
                Select::Probability { p, seed: own } => Select::Probability { p: *p, seed: own ^ seed },
                other => other.clone(),
            };
            front.add(Rule {
                name: format!("{} #{}", fault.endpoint.name(), index + 1),
                matcher: fault.endpoint.matcher(),
                select,
                action: fault.action.clone(),
            });
        }
        if scenario.jobs.running_polls > 0 {
            bigquery.set_running_polls(scenario.jobs.running_polls);
        }
        for reason in &scenario.jobs.job_errors {
            bigquery.fail_next_job(reason);
        }
        let mut armed = Armed {
            tardis: tardis_front,
            bigquery: bigquery_front,
            tasks: Vec::new(),
            postgres_task: None,
            notes: Arc::default(),
            postgres_met: Arc::default(),
        };
        if let Some(lag) = scenario.export_lag {
            let instant = |us: i64| DateTime::<Utc>::from_timestamp_micros(us).expect("day bounds are valid instants");
            tardis.set_exported_until(instant(day.start_us()));
            if let Some(after) = lag.advance_after {
                armed.tasks.push(tardis.set_exported_until_after(after, instant(day.end_us())));
            }
        }
        if let Some(fault) = scenario.postgres {
            match database {
                Some(database) => {
                    if fault.action == PostgresAction::StatementTimeout {
                        prepare_statement_timeout(&database).await?;
                    }
                    let trigger = armed.trigger(fault.when, seed);
                    let (notes, met) = (armed.notes.clone(), armed.postgres_met.clone());
                    armed.postgres_task = Some(tokio::spawn(async move {
                        trigger.await;
                        let note = match act(fault, &database, &met).await {
                            Ok(note) => note,
                            Err(err) => format!("the Postgres fault failed: {err}"),
                        };
                        notes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(note);
                    }));
                }
                None => armed.note("no database here: the Postgres fault is skipped".to_owned()),
            }
        }
        Ok(armed)
    }

    /// Waits for a Postgres fault that already struck to finish (a lock still held, connections still refused),
    /// at most `limit`; one that has not struck is cancelled.
    pub async fn settle(&mut self, limit: Duration) {
        if let Some(task) = self.postgres_task.take() {
            if self.postgres_met().is_some() {
                let abort = task.abort_handle();
                if tokio::time::timeout(limit, task).await.is_err() {
                    abort.abort();
                }
            } else {
                task.abort();
            }
        }
    }

    /// The addresses the pipeline is to use.
    pub fn via(&self) -> Via {
        Via { tardis: self.tardis.uri(), bigquery: self.bigquery.uri() }
    }

    /// Resolves at `when`, counted from now. Endpoint moments are registered at once, so call it before the
    /// run starts.
    pub fn trigger(&self, when: When, seed: u64) -> BoxFuture<'static, ()> {
        match when {
            When::Start => futures::future::ready(()).boxed(),
            When::On(endpoint) => {
                let front = if endpoint.is_tardis() { &self.tardis } else { &self.bigquery };
                let fired = front.on_first(endpoint.matcher());
                async move {
                    // A dropped front never fires: nothing more happens.
                    if fired.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                .boxed()
            }
            When::After(delay) => tokio::time::sleep(delay).boxed(),
            When::Random { from, to } => {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let delay = Duration::from_millis(rng.random_range(from.as_millis() as u64..to.as_millis() as u64));
                tokio::time::sleep(delay).boxed()
            }
        }
    }

    /// Every request both fronts saw, with the fake it went to, in arrival order.
    pub fn requests(&self) -> Vec<(Side, FrontRequest)> {
        let mut all: Vec<(Side, FrontRequest)> = self
            .tardis
            .requests()
            .into_iter()
            .map(|r| (Side::Tardis, r))
            .chain(self.bigquery.requests().into_iter().map(|r| (Side::BigQuery, r)))
            .collect();
        all.sort_by_key(|(_, r)| r.at);
        all
    }

    /// Time since the fronts started (the clock of the request log).
    pub fn elapsed(&self) -> Duration {
        self.tardis.elapsed()
    }

    pub fn note(&self, note: String) {
        self.notes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(note);
    }

    /// Whether the Postgres fault struck while the pipeline had connections to the database (`None`: it did not
    /// strike). A pipeline that keeps no database never meets it.
    pub fn postgres_met(&self) -> Option<bool> {
        *self.postgres_met.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Statement timeouts for every new session of the run's database, and its tables created (so that they can be
/// locked) before the pipeline connects.
async fn prepare_statement_timeout(database: &Database) -> Result<(), RunError> {
    pipeline::store::Store::connect(&database.url).await?;
    let mut admin = admin(&database.admin_url).await?;
    let sql = format!("ALTER DATABASE {} SET statement_timeout = '200ms'", quoted(&database.name));
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.map_err(store_error)?;
    Ok(())
}

fn store_error(err: sqlx::Error) -> RunError {
    RunError::Store(pipeline::store::StoreError::Connect(err))
}

async fn admin(url: &str) -> Result<sqlx::PgConnection, RunError> {
    sqlx::PgConnection::connect(url).await.map_err(store_error)
}

/// Ends every other connection to the database; how many.
async fn terminate(admin: &mut sqlx::PgConnection, name: &str) -> Result<u64, sqlx::Error> {
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .fetch_all(&mut *admin)
    .await?;
    Ok(ended.iter().filter(|(done,)| *done).count() as u64)
}

/// Other connections to the database now.
async fn connections(admin: &mut sqlx::PgConnection, name: &str) -> Result<u64, RunError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
            .bind(name)
            .fetch_one(&mut *admin)
            .await
            .map_err(store_error)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Carries out the fault and says what it did; `met` is set as soon as it is known whether it met a connection of
/// the pipeline's.
async fn act(fault: PostgresFault, database: &Database, met: &Mutex<Option<bool>>) -> Result<String, RunError> {
    let set = |connections: u64| {
        let mut met = met.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *met = Some(met.unwrap_or(false) || connections > 0);
    };
    let mut admin = admin(&database.admin_url).await?;
    let name = quoted(&database.name);
    match fault.action {
        PostgresAction::TerminateBackends => {
            let ended = terminate(&mut admin, &database.name).await.map_err(store_error)?;
            set(ended);
            Ok(format!("terminated {ended} connection(s) of the run's database"))
        }
        PostgresAction::Restart => {
            let sql = format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.map_err(store_error)?;
            let ended = terminate(&mut admin, &database.name).await;
            set(*ended.as_ref().unwrap_or(&0));
            tokio::time::sleep(fault.duration).await;
            let sql = format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.map_err(store_error)?;
            let ended = ended.map_err(store_error)?;
            Ok(format!("ended {ended} connection(s) and refused new ones for {} ms", fault.duration.as_millis()))
        }
        PostgresAction::StatementTimeout => {
            let mut run_db = sqlx::PgConnection::connect(&database.url).await.map_err(store_error)?;
            let mut tx = run_db.begin().await.map_err(store_error)?;
            sqlx::query("SET LOCAL statement_timeout = 0").execute(&mut *tx).await.map_err(store_error)?;
            sqlx::query("LOCK TABLE pipeline_runs, stage_runs IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            // Whether the pipeline comes to the database while it is locked (less the connection holding it).
            set(0);
            let until = tokio::time::Instant::now() + fault.duration;
            while tokio::time::Instant::now() < until {
                set(connections(&mut admin, &database.name).await?.saturating_sub(1));
                tokio::time::sleep(Duration::from_millis(50).min(until - tokio::time::Instant::now())).await;
            }
            tx.rollback().await.map_err(store_error)?;
            let sql = format!("ALTER DATABASE {name} RESET statement_timeout");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.map_err(store_error)?;
            let held = format!(
                "held the run tables locked for {} ms under a 200 ms statement_timeout",
                fault.duration.as_millis()
            );
            Ok(held)
        }
    }
}
