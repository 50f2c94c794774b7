//! `harness load`: the backfill load benchmark. A range of dates is backfilled through the fakes with 1,
//! 2 and 4 workers (each in a fresh world), and the dates per minute and the speed-up over one worker
//! are reported. A benchmark, not a test: it measures, it does not judge.

use std::sync::Arc;
use std::time::{Duration, Instant};

use market::DateRange;
use pipeline::backfill::{BackfillEvent, BackfillRequest, execute, plan, validate};
use serde::Serialize;

use crate::postgres::PostgresServer;
use crate::run::RunError;
use crate::world::{World, WorldOptions};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The dates backfilled; the fakes have exported through the last.
    pub range: DateRange,
    /// Worker counts to compare, each at least 1.
    pub workers: Vec<usize>,
    pub activity: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadLine {
    pub workers: usize,
    pub dates: u32,
    pub seconds: f64,
    pub dates_per_minute: f64,
    pub speed_up: f64,
    pub succeeded: u32,
    pub failed: u32,
}

/// Runs the benchmark; one line per worker count. `on_event` hears of each backfill's progress.
pub async fn run(
    options: &LoadOptions,
    on_event: &(dyn Fn(BackfillEvent<'_>) + Sync),
) -> Result<Vec<LoadLine>, RunError> {
    let (range, dates) = (options.range, options.range.len());
    let mut lines: Vec<LoadLine> = Vec::new();
    // One Postgres server; each worker count gets a fresh database (and fresh fakes) on it.
    let server = Arc::new(PostgresServer::provision().await?);
    for &workers in &options.workers {
        let world_options = WorldOptions::new(options.seed, range.end()).activity(options.activity);
        let world = World::start_on(server.clone(), world_options).await?;
        let pipeline = world.pipeline().await?;
        let mut request = BackfillRequest::new(range, "load-benchmark");
        request.parallel = workers;
        request.chunk_days = dates;
        request.max_days = dates;
        request.log_dir = world.data_dir.path().join("logs");
        request.retry_backoff = Duration::ZERO;
        request.lease = Duration::from_secs(300);
        let selection = validate(&request, range.end().succ(), &pipeline.config().selection)?;
        let plan = plan(&pipeline, &request, &selection, &pipeline.config().selection).await?;
        let (_stop_tx, stop) = pipeline::worker::stop_switch();
        let started = Instant::now();
        let summary = execute(&pipeline, &request, &plan, stop, on_event).await?;
        let seconds = started.elapsed().as_secs_f64();
        let dates_per_minute = f64::from(dates) / seconds * 60.0;
        let baseline = lines.first().map_or(dates_per_minute, |l| l.dates_per_minute);
        lines.push(LoadLine {
            workers,
            dates,
            seconds,
            dates_per_minute,
            speed_up: dates_per_minute / baseline,
            succeeded: summary.totals.succeeded,
            failed: summary.totals.failed,
        });
    }
    Ok(lines)
}
