//! `harness load`: the backfill load benchmark. A range of dates is backfilled through the fakes with 1,
//! 2 and 4 workers (each in a fresh world), and the dates per minute and the speed-up over one worker
//! are reported. A benchmark, not a test: it measures, it does not judge.

use std::sync::Arc;
use std::time::{Duration, Instant};

use market::{DateRange, TradingDay};
use pipeline::backfill::{BackfillRequest, ProgressOutput, execute, plan, validate};
use pipeline::store::Order;
use serde::Serialize;

use crate::postgres::PostgresServer;
use crate::world::{World, WorldOptions};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub last_day: TradingDay,
    pub dates: u32,
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

/// Runs the benchmark; one line per worker count.
pub async fn run(options: &LoadOptions) -> anyhow::Result<Vec<LoadLine>> {
    let first = (1..options.dates).fold(options.last_day, |d, _| d.pred());
    let range = DateRange::new(first, options.last_day)?;
    let mut lines: Vec<LoadLine> = Vec::new();
    // One Postgres server; each worker count gets a fresh database (and fresh fakes) on it.
    let server = Arc::new(PostgresServer::provision().await?);
    for &workers in &options.workers {
        let world_options = WorldOptions::new(options.seed, options.last_day).activity(options.activity);
        let world = World::start_on(server.clone(), world_options).await?;
        let pipeline = world.pipeline().await?;
        let request = BackfillRequest {
            start: range.start().to_string(),
            end: range.end().to_string(),
            parallel: workers,
            execute: true,
            chunk_days: options.dates,
            max_days: options.dates,
            force: false,
            exchanges: Vec::new(),
            symbols: Vec::new(),
            log_dir: world.data_dir.path().join("logs"),
            requested_by: "load-benchmark".to_owned(),
            order: Order::OldestFirst,
            retry_backoff: Duration::ZERO,
            lease: Duration::from_secs(300),
            progress: ProgressOutput::Stderr,
        };
        let (range, selection) = validate(&request, options.last_day.succ(), &pipeline.config().selection)?;
        let plan = plan(&pipeline, &request, range, &selection, &pipeline.config().selection).await?;
        let (_stop_tx, stop) = pipeline::worker::stop_switch();
        let started = Instant::now();
        let summary = execute(&pipeline, &request, &plan, stop).await?;
        let seconds = started.elapsed().as_secs_f64();
        let dates_per_minute = f64::from(options.dates) / seconds * 60.0;
        let baseline = lines.first().map_or(dates_per_minute, |l| l.dates_per_minute);
        lines.push(LoadLine {
            workers,
            dates: options.dates,
            seconds,
            dates_per_minute,
            speed_up: dates_per_minute / baseline,
            succeeded: summary.totals.succeeded,
            failed: summary.totals.failed,
        });
    }
    Ok(lines)
}

pub fn table(lines: &[LoadLine]) -> String {
    let mut out = format!(
        "{:>7} {:>6} {:>9} {:>12} {:>8} {:>9}\n",
        "workers", "dates", "seconds", "dates/min", "speed-up", "failed"
    );
    for l in lines {
        out.push_str(&format!(
            "{:>7} {:>6} {:>9.1} {:>12.1} {:>7.2}x {:>9}\n",
            l.workers, l.dates, l.seconds, l.dates_per_minute, l.speed_up, l.failed
        ));
    }
    out
}
