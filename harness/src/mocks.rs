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
use crate::run::RunError;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub port_tardis: u16,
    pub port_bigquery: u16,
    pub seed: u64,
    pub days: DateRange,
    pub activity: f64,
    /// Replay captured Tardis files from this directory instead of generating them (`--replay-dir`).
    pub replay_dir: Option<PathBuf>,
}

/// Both fakes, running.
pub struct Mocks {
    pub tardis: MockTardis,
    pub bigquery: FakeBigQuery,
    /// The pairs served: the generated market's, or those of the replayed trades files (if any).
    pub symbols: Option<Selection>,
}

fn bind(port: u16, what: &'static str) -> Result<TcpListener, RunError> {
    let listen = |source| RunError::Listen { what, port, source };
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(listen)?;
    listener.set_nonblocking(true).map_err(listen)?;
    Ok(listener)
}

impl Mocks {
    pub async fn start(options: &ServeOptions) -> Result<Mocks, RunError> {
        let listener = bind(options.port_tardis, "mock Tardis")?;
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
                let generator = Arc::new(Generator::new(options.seed, universe).with_activity(options.activity));
                let mut tardis_options = TardisOptions::exported_through(options.days.end());
                tardis_options.available_from = Some(options.days.start());
                (MockTardis::start_on(listener, generator, tardis_options).await, Some(symbols))
            }
        };
        let bigquery = FakeBigQuery::start_on(bind(options.port_bigquery, "fake BigQuery")?).await;
        Ok(Mocks { tardis, bigquery, symbols })
    }

    /// `export` lines for a shell: the pipeline's environment contract (without a database or a data
    /// directory, which are the user's) plus the variables the official clients read.
    pub fn exports(&self) -> String {
        let env = environment(Endpoints {
            tardis: &self.tardis,
            bigquery: &self.bigquery,
            database_url: None,
            symbols: self.symbols.as_ref(),
            data_dir: None,
        });
        exports(&command_vars(&env))
    }
}
