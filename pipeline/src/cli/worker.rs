//! `pipeline worker`: claim dates from the queue and run them, a line per date, until the queue is empty
//! (or until stopped, with `--follow`).

use std::time::Duration;

use anyhow::Context;

use super::Exit;
use super::backfill::{date_line, waiting_line};
use super::control::ControlArgs;
use super::metrics::MetricsArgs;
use super::signals::stop_on_signals;
use crate::clock::Clock;
use crate::config::Config;
use crate::run::Pipeline;
use crate::store::{ClaimOptions, JobStatus, Lanes, Order};
use crate::worker::{self, WorkerEvent, WorkerOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Keep waiting for new dates when the queue is empty.
    #[arg(long)]
    pub follow: bool,
    /// Workers in this process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Further workers that claim only the daily lane (dates `pipeline schedule` enqueued), so the daily run
    /// starts at once however many backfill dates the other workers are running. 0 for none.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=8))]
    pub daily_slots: u16,
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
    /// With --follow only: the backfill control API.
    #[command(flatten)]
    pub control: ControlArgs,
}

pub async fn run(args: WorkerArgs, clock: std::sync::Arc<dyn Clock>) -> anyhow::Result<Exit> {
    if args.control.control_listen.is_some() && !args.follow {
        anyhow::bail!(
            "--control-listen (PIPELINE_CONTROL_LISTEN) needs --follow: a worker that drains the queue and exits is \
             not a service"
        );
    }
    let control = args.control.bind().await?;
    let pipeline = Pipeline::connect(Config::from_env()?).await?;
    let exporter = args.metrics.start(pipeline.store()).await?;
    let pipeline = pipeline.observed_by(std::sync::Arc::new(exporter.metrics()));
    let _control = control.map(|c| c.serve(pipeline.clone(), clock)).transpose()?;
    let (stop, signals) = stop_on_signals().context("cannot listen for SIGINT and SIGTERM")?;
    let base = args.worker_id.clone().unwrap_or_else(|| format!("{}-{}", worker::hostname(), std::process::id()));
    let general = (0..args.parallel)
        .map(|i| (if args.parallel > 1 { format!("{base}-{}", i + 1) } else { base.clone() }, Lanes::All));
    let daily = (0..args.daily_slots).map(|i| (format!("{base}-daily-{}", i + 1), Lanes::DailyOnly));
    let slots: Vec<(String, Lanes)> = general.chain(daily).collect();
    let workers = slots.into_iter().map(|(worker_id, lanes)| {
        let options = WorkerOptions {
            worker_id,
            claim: ClaimOptions {
                order: if args.newest_first { Order::NewestFirst } else { Order::OldestFirst },
                range: None,
                lease: Duration::from_secs(args.lease.max(3)),
                retry_backoff: Duration::from_secs(args.retry_delay),
                lanes,
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
