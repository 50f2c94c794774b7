//! Backfills and the queue: every case of the original manual test plan, the queue's state machine, and
//! workers racing (in one process, and as separate processes killed with `kill -9`), against a real
//! Postgres and the fakes.

mod operator;
mod processes;
mod queue;

use std::path::PathBuf;
use std::time::Duration;

use harness::{World, WorldOptions};
use market::{DateRange, TradingDay};
use pipeline::backfill::BackfillRequest;

/// The last exported day of the worlds here; backfills run up to it.
pub fn last_day() -> TradingDay {
    TradingDay::parse("2024-06-30").expect("valid")
}

/// A small world: two symbols at a fiftieth of the normal trade rate.
pub async fn world(seed: u64) -> World {
    World::start(
        WorldOptions::new(seed, last_day()).activity(0.02).pairs(&[("bitmex", "XBTUSD"), ("deribit", "ETH-PERPETUAL")]),
    )
    .await
    .expect("world starts")
}

pub fn request(world: &World, start: &str, end: &str, parallel: usize) -> BackfillRequest {
    let mut request = BackfillRequest::new(DateRange::parse(start, end).expect("valid range"), "suite");
    request.parallel = parallel;
    request.log_dir = world.data_dir.path().join("logs");
    request.retry_backoff = Duration::ZERO;
    request.lease = Duration::from_secs(60);
    request
}

/// The `pipeline` binary next to this test (built for the pipeline's own CLI tests).
pub fn binary() -> PathBuf {
    suites::workspace_binary("pipeline")
}

/// Waits for `condition` with a deadline (no fixed sleeps).
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = std::time::Instant::now() + deadline;
    while !condition().await {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The load benchmark (`harness load`), smoke-run: every worker count backfills every date, and the
/// figures it reports are consistent with each other. Its timings are measured, never judged here.
#[tokio::test]
async fn load_benchmark_smoke_run_backfills_every_date_with_each_worker_count() {
    let range = DateRange::new(last_day().pred(), last_day()).expect("valid range");
    let options = harness::load::LoadOptions { range, workers: vec![1, 2], activity: 0.02, seed: 5 };
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let lines = harness::load::run(&options, &|event| {
        if let pipeline::backfill::BackfillEvent::Finished { .. } = event {
            finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .await
    .expect("load benchmark runs");
    assert_eq!(finished.into_inner(), 4, "two dates reported finished per worker count");
    assert_eq!(lines.iter().map(|l| l.workers).collect::<Vec<_>>(), [1, 2]);
    for line in &lines {
        assert_eq!((line.succeeded, line.failed), (2, 0), "{line:?}");
        assert!(line.seconds > 0.0 && line.dates_per_minute > 0.0, "{line:?}");
        let expected = 2.0 / line.seconds * 60.0;
        assert!((line.dates_per_minute - expected).abs() < 1e-9 * expected, "{line:?}");
    }
    assert!((lines[0].speed_up - 1.0).abs() < 1e-12);
    let expected_speed_up = lines[1].dates_per_minute / lines[0].dates_per_minute;
    assert!((lines[1].speed_up - expected_speed_up).abs() < 1e-9);
    let table = harness::cli::load::table(&lines);
    assert_eq!(table.lines().count(), 3, "{table}");
}

/// `harness load --json` prints only the JSON on standard output (the per-date progress goes to stderr), so
/// scripts can read it.
#[test]
fn harness_load_json_is_the_whole_standard_output() {
    let out = std::process::Command::new(suites::workspace_binary("harness"))
        .args(["load", "--dates", "2", "--workers", "1", "--activity", "0.02", "--seed", "6", "--json"])
        .args(["--last-day", "2024-06-30"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("harness runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(lines[0]["workers"], 1, "{lines:#}");
    assert_eq!((lines[0]["succeeded"].as_u64(), lines[0]["failed"].as_u64()), (Some(2), Some(0)), "{lines:#}");
    assert!(stderr.contains("[2/2] 2024-06-30 ✓") || stderr.contains("[2/2] 2024-06-29 ✓"), "{stderr}");
}
