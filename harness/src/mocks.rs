//! Both fakes as standalone servers (`harness mocks serve`), so any pipeline (ours from a shell, an external
//! one, the vendors' own clients) can be pointed at them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use fakes::bigquery::FakeBigQuery;
use fakes::tardis::{MockTardis, TardisOptions};
use fixtures::{Generator, Universe};
use market::DateRange;

use pipeline::Selection;

use crate::environment::{Endpoints, command_vars, environment, exports};
use crate::faults::Armed;
use crate::run::RunError;
use crate::scenario::Scenario;

#[derive(Debug, Clone)]
pub struct ServeOptions {
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

fn bind(port: u16, what: &'static str) -> Result<TcpListener, RunError> {
    let listen = |source| RunError::Listen { what, port, source };
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(listen)?;
    listener.set_nonblocking(true).map_err(listen)?;
    Ok(listener)
}

impl Mocks {
    pub async fn start(options: &ServeOptions) -> Result<Mocks, RunError> {
        // With a scenario, its fronts take the ports asked for and the fakes sit behind them on free ones.
        let (fronts, port_tardis, port_bigquery) = match &options.faults {
            Some(_) => {
                let tardis =
                    tokio::net::TcpListener::from_std(bind(options.port_tardis, "fault front of the mock Tardis")?);
                let bigquery =
                    tokio::net::TcpListener::from_std(bind(options.port_bigquery, "fault front of the fake BigQuery")?);
                let listen = |what| move |source| RunError::Listen { what, port: 0, source };
                (Some((tardis.map_err(listen("fault front"))?, bigquery.map_err(listen("fault front"))?)), 0, 0)
            }
            None => (None, options.port_tardis, options.port_bigquery),
        };
        let listener = bind(port_tardis, "mock Tardis")?;
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
        let bigquery = FakeBigQuery::start_on(bind(port_bigquery, "fake BigQuery")?).await;
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
