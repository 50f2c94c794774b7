//! `harness mocks serve`: both fakes as standalone servers, so any pipeline (ours from a shell, an
//! external one, the vendors' own clients) can be pointed at them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use fakes::bigquery::FakeBigQuery;
use fakes::tardis::{MockTardis, TardisOptions};
use fixtures::{Generator, Universe};
use market::DateRange;

use crate::world::fakes_env;

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
}

fn bind(port: u16, what: &str) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen for the {what} on 127.0.0.1:{port}"))?;
    listener.set_nonblocking(true).context("non-blocking listener")?;
    Ok(listener)
}

impl Mocks {
    pub async fn start(options: &ServeOptions) -> anyhow::Result<Mocks> {
        let listener = bind(options.port_tardis, "mock Tardis")?;
        let tardis = match &options.replay_dir {
            Some(dir) => {
                use anyhow::Context;
                // The days served and exportedUntil come from the files.
                let tardis_options = TardisOptions::exported_through(options.days.end());
                MockTardis::start_replay(Some(listener), dir, tardis_options)
                    .await
                    .with_context(|| format!("cannot replay the Tardis files in {}", dir.display()))?
            }
            None => {
                let universe = Universe::default_universe();
                let generator = Arc::new(Generator::new(options.seed, universe).with_activity(options.activity));
                let mut tardis_options = TardisOptions::exported_through(options.days.end());
                tardis_options.available_from = Some(options.days.start());
                MockTardis::start_on(listener, generator, tardis_options).await
            }
        };
        let bigquery = FakeBigQuery::start_on(bind(options.port_bigquery, "fake BigQuery")?).await;
        Ok(Mocks { tardis, bigquery })
    }

    /// `export` lines for a shell: the pipeline's environment contract plus the variables the official
    /// clients read.
    pub fn exports(&self) -> String {
        fakes_env(&self.tardis, &self.bigquery).iter().map(|(k, v)| format!("export {k}={v}\n")).collect()
    }
}

/// Serves until SIGINT or SIGTERM.
pub async fn serve(options: &ServeOptions) -> anyhow::Result<()> {
    let mocks = Mocks::start(options).await?;
    println!(
        "mock Tardis:   {} (datasets {}, api {})",
        mocks.tardis.uri(),
        mocks.tardis.datasets_url(),
        mocks.tardis.api_url()
    );
    println!("fake BigQuery: {}", mocks.bigquery.uri());
    match &options.replay_dir {
        Some(dir) => println!("replaying:     {} (days, symbols and exportedUntil from the files)", dir.display()),
        None => println!("days served:   {} to {} (seed {})", options.days.start(), options.days.end(), options.seed),
    }
    println!("# Paste into a shell:");
    print!("{}", mocks.exports());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("Stopping the fakes.");
    Ok(())
}
