//! Steering backfills as an operator: the daily run never waits behind a backfill, a backfill is cancelled
//! from another process (its dates in flight finish, or stop at once with `--now`), and `retry --only-failed`
//! runs only what failed. Real `pipeline` processes on one Postgres queue, against the fakes.

use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use market::{DateRange, TradingDay};
use pipeline::ManualClock;
use pipeline::schedule::{CronSchedule, DEFAULT_CRON, DateOutcome, ScheduleOptions, Scheduler};
use pipeline::store::{JobStatus, Store};

use crate::{binary, eventually, last_day, world};

fn pipeline_command(world: &harness::World) -> Command {
    let mut command = Command::new(binary());
    command.envs(world.env()).env("PIPELINE_DATA_DIR", world.data_dir.path().join("data")).env("RUST_LOG", "warn");
    command.stdin(Stdio::null());
    command
}

/// A child process killed when the test ends, whichever way it ends.
struct Guard(Option<Child>);

impl Guard {
    fn spawn(command: &mut Command) -> Guard {
        Guard(Some(command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn pipeline")))
    }

    /// Waits for the process to exit by itself within `deadline`, and returns its output.
    fn wait(mut self, deadline: Duration) -> Output {
        let mut child = self.0.take().expect("running");
        let until = Instant::now() + deadline;
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > until {
                let _ = child.kill();
                let out = child.wait_with_output().expect("reaped");
                panic!(
                    "the process did not exit within {deadline:?}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn day(text: &str) -> TradingDay {
    TradingDay::parse(text).expect("valid day")
}

/// Makes every download of `day`'s XBTUSD file hang for `delay` and then fail with a 503 (retried): a date
/// that keeps its worker busy.
async fn slow_date(world: &harness::World, day: TradingDay, delay: Duration, times: u64) {
    let path = format!("/v1/bitmex/trades/{}/XBTUSD.csv.gz", day.date().format("%Y/%m/%d"));
    wiremock::Mock::given(wiremock::matchers::path(path))
        .respond_with(wiremock::ResponseTemplate::new(503).set_delay(delay))
        .up_to_n_times(times)
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
}

fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `pipeline backfill START END --enqueue-only`: the backfill's audit id.
fn enqueue(world: &harness::World, start: &str, end: &str) -> i64 {
    let out = pipeline_command(world)
        .args(["backfill", start, end, "--enqueue-only", "--max-days", "60"])
        .output()
        .expect("enqueue");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let id = text.strip_prefix("Backfill ").and_then(|rest| rest.split(':').next()).and_then(|id| id.parse().ok());
    id.unwrap_or_else(|| panic!("no backfill id in: {text}"))
}

/// The 09:00 fire of 2024-07-01: the scheduler (enqueue-only, as with a pool of workers) queues yesterday.
async fn fire_at_nine(world: &harness::World) {
    let pipeline = world.pipeline().await.expect("pipeline");
    let mut options = ScheduleOptions::new(CronSchedule::parse(DEFAULT_CRON).expect("cron"), "scheduler");
    options.enqueue_only = true;
    options.preflight_retries = 0;
    let clock = ManualClock::new(chrono::DateTime::parse_from_rfc3339("2024-07-01T09:00:00Z").expect("valid").to_utc());
    let scheduler = Scheduler::new(pipeline, options, Arc::new(clock));
    let (_stop, stop_rx) = pipeline::worker::stop_switch();
    let pass = scheduler.once(stop_rx).await.expect("runs").expect("the lock is free");
    assert_eq!(pass.dates.len(), 1, "{pass:?}");
    assert_eq!((pass.dates[0].day, &pass.dates[0].outcome), (last_day(), &DateOutcome::Enqueued), "{pass:?}");
}

/// The 30 dates before the worlds' last day, enqueued as a backfill, and a `pipeline worker --follow` (with
/// `daily_slots`) busy on the first, whose download hangs for `hang`. Returns the range and the worker.
async fn busy_with_a_30_date_backfill(
    world: &harness::World,
    store: &Store,
    hang: Duration,
    daily_slots: &str,
) -> (DateRange, Guard) {
    let backfill = DateRange::parse("2024-05-31", "2024-06-29").expect("valid");
    assert_eq!((backfill.len(), backfill.end().succ()), (30, last_day()));
    slow_date(world, backfill.start(), hang, 1).await;
    enqueue(world, "2024-05-31", "2024-06-29");
    let worker = Guard::spawn(pipeline_command(world).args(["worker", "--follow", "--worker-id", "pool"]).args([
        "--daily-slots",
        daily_slots,
        "--lease",
        "60",
        "--retry-delay",
        "0",
    ]));
    eventually("the backfill's first date to be claimed", Duration::from_secs(30), || async {
        matches!(store.job(backfill.start()).await, Ok(Some(job)) if job.status == JobStatus::Processing)
    })
    .await;
    (backfill, worker)
}

/// The test: a 30-date backfill is in flight on a worker (its current date hangs, as a slow Tardis
/// file would), the 09:00 fire queues yesterday, and the worker's daily slot starts it within seconds while
/// the backfill still has nearly all its dates to do. Then the daily date completes.
#[tokio::test]
async fn the_daily_run_starts_within_seconds_while_a_30_date_backfill_is_in_flight() {
    let world = world(151).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    let (backfill, _worker) = busy_with_a_30_date_backfill(&world, &store, Duration::from_secs(30), "1").await;

    fire_at_nine(&world).await;
    let enqueued = Instant::now();
    eventually("the daily date to start", Duration::from_secs(10), || async {
        matches!(store.job(last_day()).await, Ok(Some(job)) if job.status != JobStatus::Pending)
    })
    .await;
    let started_after = enqueued.elapsed();
    let job = store.job(last_day()).await.expect("job").expect("queued");
    assert_eq!(job.worker_id.as_deref(), Some("pool-daily-1"), "the daily slot took it");
    let unfinished = store.unfinished(Some(backfill), pipeline::store::Lanes::All).await.expect("count");
    eprintln!(
        "daily run started {started_after:?} after the 09:00 fire, with {unfinished} of 30 backfill dates unfinished"
    );
    assert!(started_after < Duration::from_secs(5), "started {started_after:?} after the fire");
    assert!(unfinished >= 28, "the backfill is still in flight: {unfinished} dates unfinished");
    eventually("the daily date to complete", Duration::from_secs(30), || async {
        matches!(store.job(last_day()).await, Ok(Some(job)) if job.status == JobStatus::Completed)
    })
    .await;
    assert_eq!(
        harness::run::landed_candles(&world.bigquery, last_day()).expect("rows").len(),
        world.generator.day_truth(last_day()).candles().count()
    );
}

/// Without a daily slot the daily date waits for the busy worker's current date, then jumps the 28 backfill
/// dates still queued: the lane alone orders it first; the slot is what makes it start at once.
#[tokio::test]
async fn without_a_daily_slot_the_daily_date_waits_for_the_busy_worker_then_jumps_the_queue() {
    let world = world(152).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    let (backfill, _worker) = busy_with_a_30_date_backfill(&world, &store, Duration::from_secs(4), "0").await;
    fire_at_nine(&world).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        store.job(last_day()).await.expect("job").map(|j| j.status),
        Some(JobStatus::Pending),
        "no slot free: it waits"
    );
    eventually("the daily date to complete", Duration::from_secs(60), || async {
        matches!(store.job(last_day()).await, Ok(Some(job)) if job.status == JobStatus::Completed)
    })
    .await;
    let started = |d: TradingDay| {
        let store = store.clone();
        async move { store.job(d).await.expect("job").and_then(|j| j.started_at) }
    };
    let (first, daily, second) =
        (started(backfill.start()).await, started(last_day()).await, started(backfill.start().succ()).await);
    assert!(first < daily, "the busy date was claimed first: {first:?} {daily:?}");
    assert!(
        second.is_none() || daily < second,
        "then the daily date, before the backfill's next: {daily:?} {second:?}"
    );
}

/// `pipeline backfill cancel ID` from another process: the backfill's queued dates are not claimed any more,
/// its date in flight finishes, its own process ends with 130 saying who cancelled, and the audit says so.
#[tokio::test]
async fn a_backfill_cancelled_from_another_process_finishes_its_date_in_flight_and_stops() {
    let world = world(153).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    let range = DateRange::parse("2024-06-01", "2024-06-10").expect("valid");
    slow_date(&world, range.start(), Duration::from_secs(2), 1).await;
    let logs = world.data_dir.path().join("logs");
    let running = Guard::spawn(
        pipeline_command(&world)
            .args(["backfill", "2024-06-01", "2024-06-10", "--execute", "--retry-delay", "0", "--log-dir"])
            .arg(&logs),
    );
    eventually("the first date to be claimed", Duration::from_secs(30), || async {
        matches!(store.job(range.start()).await, Ok(Some(job)) if job.status == JobStatus::Processing)
    })
    .await;
    let id = store.backfills(1).await.expect("list")[0].id;
    let cancel = pipeline_command(&world)
        .args(["backfill", "cancel", &id.to_string(), "--by", "carol"])
        .output()
        .expect("cancel");
    let text = output_text(&cancel);
    assert_eq!(cancel.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("Cancelled by carol: backfill(s) {id}; 9 queued date(s) will not run.")), "{text}");
    assert!(text.contains("2024-06-01 being run by") && text.contains("finishes"), "{text}");

    let out = running.wait(Duration::from_secs(60));
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains(&format!("Backfill {id} started; `pipeline backfill cancel {id}`")), "{text}");
    assert!(text.contains(&format!("Backfill {id} cancelled by carol: 1 succeeded")), "{text}");
    let jobs = store.jobs(range).await.expect("jobs");
    let statuses: Vec<JobStatus> = jobs.iter().map(|j| j.status).collect();
    assert_eq!(statuses[0], JobStatus::Completed, "the date in flight finished");
    assert!(statuses[1..].iter().all(|s| *s == JobStatus::Cancelled), "{statuses:?}");
    let landed: Vec<String> =
        world.bigquery.partitions(harness::world::PROJECT, harness::world::DATASET, "candles_1m").into_keys().collect();
    assert_eq!(landed, ["20240601"], "no cancelled date ran");
    let record = store.backfill(id).await.expect("record").expect("exists");
    assert_eq!((record.status.as_str(), record.cancelled_by.as_deref()), ("cancelled", Some("carol")));
    assert!(record.cancelled_at.is_some());
    let list = pipeline_command(&world).args(["backfill", "list"]).output().expect("list");
    assert!(output_text(&list).contains("(cancelled by carol)"), "{}", output_text(&list));
    let unknown = pipeline_command(&world).args(["backfill", "cancel", "999999"]).output().expect("cancel");
    assert_eq!(unknown.status.code(), Some(3));
    assert!(output_text(&unknown).contains("there is no backfill 999999"), "{}", output_text(&unknown));
}

/// `cancel --now`: the worker running the date abandons it within about a second (its download was hanging for
/// 30 s), the date is `cancelled`, its run record says failed and by whom, and a rerun later completes it.
#[tokio::test]
async fn cancel_now_abandons_the_date_being_run_within_seconds() {
    let world = world(154).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    let target = day("2024-06-05");
    slow_date(&world, target, Duration::from_secs(30), 1).await;
    let id = enqueue(&world, "2024-06-05", "2024-06-06");
    let worker = Guard::spawn(pipeline_command(&world).args(["worker", "--worker-id", "busy", "--daily-slots", "0"]));
    eventually("the date to be claimed", Duration::from_secs(30), || async {
        matches!(store.job(target).await, Ok(Some(job)) if job.status == JobStatus::Processing)
    })
    .await;
    let asked = Instant::now();
    let cancel = pipeline_command(&world)
        .args(["backfill", "cancel", &id.to_string(), "--now", "--by", "dave"])
        .output()
        .expect("cancel");
    assert_eq!(cancel.status.code(), Some(0), "{}", output_text(&cancel));
    assert!(output_text(&cancel).contains("2024-06-05 being run by busy: stops now"), "{}", output_text(&cancel));
    let out = worker.wait(Duration::from_secs(10));
    let stopped_after = asked.elapsed();
    eprintln!("cancel --now: the worker abandoned its date and exited {stopped_after:?} after the cancel");
    assert!(stopped_after < Duration::from_secs(5), "{stopped_after:?}");
    assert_eq!(out.status.code(), Some(0), "nothing failed: {}", output_text(&out));
    assert!(output_text(&out).contains("2024-06-05 ✗"), "{}", output_text(&out));
    let job = store.job(target).await.expect("job").expect("exists");
    assert_eq!((job.status, job.cancelled_by.as_deref()), (JobStatus::Cancelled, Some("dave")));
    assert_eq!(store.job(day("2024-06-06")).await.expect("job").map(|j| j.status), Some(JobStatus::Cancelled));
    let runs = store.runs_of_day(target).await.expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status.as_str(), "failed");
    assert!(runs[0].error.as_deref().is_some_and(|e| e.contains("cancelled by dave")), "{:?}", runs[0].error);
    assert!(world.bigquery.partitions(harness::world::PROJECT, harness::world::DATASET, "candles_1m").is_empty());
    // Queued again, the date runs to completion.
    let out = pipeline_command(&world)
        .args(["backfill", "2024-06-05", "2024-06-05", "--execute", "--log-dir"])
        .arg(world.data_dir.path().join("logs"))
        .output()
        .expect("rerun");
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(store.job(target).await.expect("job").map(|j| j.status), Some(JobStatus::Completed));
}

/// `retry ID --only-failed` runs the failed dates of backfill ID again and nothing else: its completed date
/// is skipped, its cancelled dates stay cancelled; a plain `retry` would also run the cancelled ones.
#[tokio::test]
async fn retry_only_failed_runs_only_the_failed_dates() {
    let world = world(155).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    let id = enqueue(&world, "2024-06-01", "2024-06-04");
    // 06-01 completed, 06-02 failed five times, then the backfill is cancelled (06-03, 06-04).
    let live = store.liveness().await.expect("liveness");
    let claim = |d: &str| pipeline::store::ClaimOptions {
        order: pipeline::store::Order::OldestFirst,
        range: Some(DateRange::single(day(d))),
        lease: Duration::from_secs(60),
        retry_backoff: Duration::ZERO,
        lanes: pipeline::store::Lanes::All,
    };
    let lease = store.claim("w", &live, claim("2024-06-01")).await.expect("claim").expect("claimable");
    assert!(store.complete(&lease, 7, None).await.expect("complete"));
    for attempt in 1..=pipeline::store::MAX_RETRIES {
        let lease = store.claim("w", &live, claim("2024-06-02")).await.expect("claim").expect("claimable");
        store.fail(&lease, &format!("Tardis 403 ({attempt})"), Duration::ZERO).await.expect("fail");
    }
    store.cancel_backfills(pipeline::store::CancelTarget::Backfill(id), "erin", false).await.expect("cancel");

    let dry =
        pipeline_command(&world).args(["backfill", "retry", &id.to_string(), "--only-failed"]).output().expect("dry");
    let text = output_text(&dry);
    assert_eq!(dry.status.code(), Some(0), "{text}");
    assert!(text.contains("4 dates in 1 chunk(s), 1 to run"), "{text}");
    assert!(text.contains("2024-06-02  run again (failed 5 times: Tardis 403 (5))"), "{text}");
    assert!(text.contains("2024-06-03  left cancelled (not retried)"), "{text}");
    let plain = pipeline_command(&world).args(["backfill", "retry", &id.to_string()]).output().expect("dry");
    assert!(output_text(&plain).contains("3 to run"), "{}", output_text(&plain));

    let out = pipeline_command(&world)
        .args(["backfill", "retry", &id.to_string(), "--only-failed", "--execute", "--log-dir"])
        .arg(world.data_dir.path().join("logs"))
        .output()
        .expect("retry");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1 succeeded, 0 failed, 3 skipped"), "{text}");
    let statuses: Vec<JobStatus> = store
        .jobs(DateRange::parse("2024-06-01", "2024-06-04").expect("valid"))
        .await
        .expect("jobs")
        .iter()
        .map(|j| j.status)
        .collect();
    use JobStatus::{Cancelled, Completed};
    assert_eq!(statuses, [Completed, Completed, Cancelled, Cancelled]);
    let landed: Vec<String> =
        world.bigquery.partitions(harness::world::PROJECT, harness::world::DATASET, "candles_1m").into_keys().collect();
    assert_eq!(landed, ["20240602"], "only the failed date ran");
    let retry = store.backfills(1).await.expect("list").remove(0);
    assert_eq!((retry.retry_of, retry.status.as_str()), (Some(id), "succeeded"));
    let missing = pipeline_command(&world).args(["backfill", "retry", "424242"]).output().expect("retry");
    assert_eq!(missing.status.code(), Some(3));
    assert!(output_text(&missing).contains("there is no backfill 424242"), "{}", output_text(&missing));
}

/// `pipeline run` stopped by SIGTERM (an evicted pod) abandons its date at once instead of at the kill that
/// follows the grace period: exit 130 within a second or so, its run record `failed`, not `running` forever.
#[tokio::test]
async fn a_run_stopped_by_sigterm_exits_130_at_once_and_its_record_says_so() {
    let world = world(156).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    let target = day("2024-06-12");
    slow_date(&world, target, Duration::from_secs(30), 1).await;
    let run = Guard::spawn(pipeline_command(&world).args(["run", "--date", "2024-06-12"]));
    let pid = run.0.as_ref().expect("running").id();
    eventually("the run to start", Duration::from_secs(30), || async {
        store.runs_of_day(target).await.is_ok_and(|runs| runs.iter().any(|r| r.status.as_str() == "running"))
    })
    .await;
    // Its download hangs for 30 s from here.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    let out = run.wait(Duration::from_secs(10));
    let stopped_after = asked.elapsed();
    assert_eq!(out.status.code(), Some(130), "{}", output_text(&out));
    assert!(stopped_after < Duration::from_secs(5), "{stopped_after:?}");
    assert!(output_text(&out).contains("2024-06-12: interrupted"), "{}", output_text(&out));
    let runs = store.runs_of_day(target).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status.as_str(), "failed");
    assert!(runs[0].error.as_deref().is_some_and(|e| e.contains("interrupted by a signal")), "{:?}", runs[0].error);
}
