//! The scheduler (`pipeline schedule`) and preflight (`pipeline preflight`) against the fakes and a real
//! Postgres, driven by a manual clock: time moves only when a test moves it, and tests wait on the
//! scheduler's status or the database with a deadline, never for a fixed time. Also the deployment
//! examples under `deploy/`, the orchestrator examples loaded by Airflow and Dagster among them.

mod catch_up;
mod deploy;
mod fire;
mod lock;
mod once;
mod orchestrators;
mod preflight;
mod stop;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use harness::{World, WorldOptions};
use market::{DateRange, TradingDay};
use pipeline::ManualClock;
use pipeline::schedule::{CronSchedule, DEFAULT_CRON, ScheduleError, ScheduleOptions, Scheduler, SchedulerStatus};
use pipeline::store::{Job, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long any wait of these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(90);

pub fn day(text: &str) -> TradingDay {
    TradingDay::parse(text).expect("valid day")
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
}

/// The tests' "now": a second before the daily 09:00 UTC fire of 2024-06-04, which is due to run
/// 2024-06-03.
pub fn before_fire() -> DateTime<Utc> {
    at("2024-06-04T08:59:59Z")
}

/// A small world (two symbols at a fiftieth of the normal trade rate) exported through `exported_through`.
pub async fn world(seed: u64, exported_through: &str) -> World {
    World::start(
        WorldOptions::new(seed, day(exported_through))
            .activity(0.02)
            .pairs(&[("bitmex", "XBTUSD"), ("deribit", "ETH-PERPETUAL")]),
    )
    .await
    .expect("world starts (is Postgres set up? see README)")
}

/// Scheduler options for tests: the default cron, no delay before a failed run is retried, fast polls.
pub fn options(id: &str) -> ScheduleOptions {
    let mut options = ScheduleOptions::new(CronSchedule::parse(DEFAULT_CRON).expect("default cron"), id);
    options.retry_backoff = Duration::ZERO;
    options.idle_poll = Duration::from_millis(10);
    options.lease = Duration::from_secs(60);
    options
}

/// Records `day` as completed in the queue, as an earlier run would have left it.
pub async fn complete(store: &Store, day: TradingDay) {
    let range = DateRange::single(day);
    store.seed(range, None).await.expect("seeded");
    let claim = pipeline::store::ClaimOptions {
        order: pipeline::store::Order::OldestFirst,
        range: Some(range),
        lease: Duration::from_secs(60),
        retry_backoff: Duration::ZERO,
        lanes: pipeline::store::Lanes::All,
    };
    let live = store.liveness().await.expect("liveness");
    let lease = store.claim("history", &live, claim).await.expect("claim").expect("claimable");
    assert!(store.complete(&lease, 0, None).await.expect("completed"));
}

pub async fn job(store: &Store, day: TradingDay) -> Option<Job> {
    store.job(day).await.expect("job readable")
}

/// The `candles_1m` partitions that landed in the fake BigQuery, as `YYYYMMDD`.
pub fn landed_partitions(world: &World) -> Vec<String> {
    world.bigquery.partitions(harness::world::PROJECT, harness::world::DATASET, "candles_1m").into_keys().collect()
}

/// A scheduler running as a service in a task of its own.
pub struct Running {
    pub status: watch::Receiver<SchedulerStatus>,
    pub stop: watch::Sender<bool>,
    pub task: JoinHandle<Result<(), ScheduleError>>,
}

/// Starts a scheduler on `world` with `clock`.
pub async fn start(world: &World, options: ScheduleOptions, clock: &ManualClock) -> Running {
    let pipeline = world.pipeline().await.expect("pipeline connects");
    let scheduler = Scheduler::new(pipeline, options, Arc::new(clock.clone()));
    let status = scheduler.status();
    let (stop, stop_rx) = pipeline::worker::stop_switch();
    let task = tokio::spawn(async move { scheduler.run(stop_rx).await });
    Running { status, stop, task }
}

impl Running {
    /// Waits (with the deadline) until the status satisfies `condition`, and returns it.
    pub async fn wait_for(&mut self, what: &str, condition: impl FnMut(&SchedulerStatus) -> bool) -> SchedulerStatus {
        let waited =
            tokio::time::timeout(DEADLINE, self.status.wait_for(condition)).await.map(|r| r.map(|s| s.clone()));
        match waited {
            Ok(Ok(status)) => status,
            Ok(Err(_)) => panic!("the scheduler ended while waiting for {what}: {:?}", self.status.borrow()),
            Err(_) => panic!("timed out waiting for {what}; status {:?}", self.status.borrow()),
        }
    }

    /// Waits until the scheduler has finished its `passes`-th pass and sleeps; returns when it wakes.
    pub async fn waiting_after(&mut self, passes: u64) -> DateTime<Utc> {
        let status = self
            .wait_for(
                &format!("pass {passes} done"),
                |s| matches!(s, SchedulerStatus::Waiting { passes: p, .. } if *p == passes),
            )
            .await;
        match status {
            SchedulerStatus::Waiting { wake_at, .. } => wake_at,
            other => unreachable!("waited for Waiting, got {other:?}"),
        }
    }

    /// Requests a stop and waits for the scheduler to return.
    pub async fn stop(self) -> Result<(), ScheduleError> {
        self.stop.send_replace(true);
        tokio::time::timeout(DEADLINE, self.task).await.expect("the scheduler stops in time").expect("no panic")
    }
}

/// Waits for `condition` with a deadline, polling every few milliseconds (no fixed sleeps).
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = std::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
