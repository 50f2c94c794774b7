//! `pipeline worker`: claim dates from the queue and run them, a line per date, until the queue is empty
//! (or until stopped, with `--follow`).

use std::time::Duration;

use anyhow::Context;

use super::Exit;
use super::backfill::{date_line, waiting_line};
use super::metrics::MetricsArgs;
use super::signals::stop_on_signals;
use crate::config::Config;
use crate::run::Pipeline;
use crate::store::{ClaimOptions, JobStatus, Order};
use crate::worker::{self, WorkerEvent, WorkerOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Keep waiting for new dates when the queue is empty.
    #[arg(long)]
    pub follow: bool,
    /// Workers in this process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Identifies this worker in the queue (default: hostname and process id).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Claim the newest date first (default: oldest first).
    #[arg(long)]
    pub newest_first: bool,
    /// Seconds a claimed date stays reserved if this worker stops renewing it (e.g. it was killed).
    #[arg(long, default_value_t = 600)]
    pub lease: u64,
    /// Seconds before a failed date is tried again (doubled per retry).
    #[arg(long, default_value_t = 30)]
    pub retry_delay: u64,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<Exit> {
    let pipeline = Pipeline::connect(Config::from_env()?).await?;
    let exporter = args.metrics.start(pipeline.store()).await?;
    let pipeline = pipeline.observed_by(std::sync::Arc::new(exporter.metrics()));
    let (stop, signals) = stop_on_signals().context("cannot listen for SIGINT and SIGTERM")?;
    let base = args.worker_id.clone().unwrap_or_else(|| format!("{}-{}", worker::hostname(), std::process::id()));
    let workers = (0..args.parallel).map(|i| {
        let options = WorkerOptions {
            worker_id: if args.parallel > 1 { format!("{base}-{}", i + 1) } else { base.clone() },
            claim: ClaimOptions {
                order: if args.newest_first { Order::NewestFirst } else { Order::OldestFirst },
                range: None,
                lease: Duration::from_secs(args.lease.max(3)),
                retry_backoff: Duration::from_secs(args.retry_delay),
            },
            follow: args.follow,
            idle_poll: Duration::from_secs(1),
            trigger: "worker".to_owned(),
        };
        let (pipeline, stop) = (&pipeline, stop.clone());
        async move {
            worker::work(pipeline, &options, stop, |event| match event {
                WorkerEvent::Finished(result) => println!("{}", date_line(result)),
                WorkerEvent::Waiting { held } => eprintln!("{}", waiting_line(&options.worker_id, held)),
                WorkerEvent::Claimed { .. } => {}
            })
            .await
        }
    });
    let mut failed = 0;
    for results in futures::future::join_all(workers).await {
        failed += results?.iter().filter(|r| r.status == JobStatus::Failed).count();
    }
    signals.abort();
    exporter.finish().await?;
    Ok(if failed > 0 { Exit::Fail } else { Exit::Pass })
}
