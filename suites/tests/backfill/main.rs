//! Backfills and the queue: every case of the original manual test plan, the queue's state machine,
//! workers racing (in one process, and as separate processes killed with `kill -9`), and the HTTP control API,
//! against a real Postgres and the fakes.

mod budget;
mod control;
mod metrics;
mod operator;
mod processes;
mod queue;
mod steering;

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

/// The load and recovery benchmark (`harness load`), smoke-run over its four conditions: every line backfills or
/// runs every date whole, the faults condition really injected faults and saw them retried, the memory-capped
/// process stayed under its cap, and the figures are consistent with each other. Timings are never judged here.
#[tokio::test]
async fn load_benchmark_smoke_run_of_every_condition_lands_every_date_whole() {
    use harness::load::{Condition, LoadOptions};
    let range = DateRange::new(last_day().pred(), last_day()).expect("valid range");
    let options = LoadOptions {
        range,
        conditions: Condition::ALL.to_vec(),
        workers: vec![1, 2],
        concurrent: 2,
        fault_rate: 0.1,
        memory_cap: 512 << 20,
        activity: 0.02,
        seed: 5,
        pipeline: binary(),
    };
    let started = std::sync::atomic::AtomicUsize::new(0);
    let lines = harness::load::run(&options, &|event| {
        if let harness::load::LoadEvent::Starting { .. } = event {
            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .await
    .expect("load benchmark runs");
    let conditions: Vec<Condition> = lines.iter().map(|l| l.condition).collect();
    use Condition::{Faults, High, Memory, Normal};
    assert_eq!(conditions, [Normal, Normal, High, High, Faults, Memory]);
    assert_eq!(started.into_inner(), 6);
    for line in &lines {
        assert_eq!((line.failed, line.rows_lost, line.rows_extra), (0, 0, 0), "{line:#?}");
        assert!((line.success_rate - 1.0).abs() < 1e-12, "{line:#?}");
        let expected = f64::from(line.dates) / line.seconds * 60.0;
        assert!((line.dates_per_minute - expected).abs() < 1e-9 * expected, "{line:#?}");
        assert!(line.trades_per_second > 0.0 && line.peak_rss_mib > 0.0 && line.cpu_seconds > 0.0, "{line:#?}");
        assert!(line.stages.iter().any(|s| s.stage == "download" && s.p50_ms <= s.p95_ms && s.p95_ms <= s.p99_ms));
    }
    assert_eq!(lines[2].label, "2 runs of 2024-06-30", "the same date, twice at once, lands once");
    assert!(lines[4].faults_injected > 0 && lines[4].retries > 0, "{:#?}", lines[4]);
    assert_eq!(lines[0].speed_up, Some(1.0));
    assert!(lines[5].memory_cap_mib == Some(512.0) && lines[5].peak_rss_mib < 512.0, "{:#?}", lines[5]);
    let table = harness::cli::load::table(&lines);
    assert_eq!(table.lines().count(), 7, "{table}");
    assert!(harness::cli::load::html(&lines).contains("<svg"));
}

/// `harness load --json` prints only the JSON on standard output (the per-date progress goes to stderr), so
/// scripts can read it.
#[test]
fn harness_load_json_is_the_whole_standard_output() {
    let out = std::process::Command::new(suites::workspace_binary("harness"))
        .args(["load", "--dates", "2", "--conditions", "normal", "--workers", "1", "--activity", "0.02"])
        .args(["--seed", "6", "--json"])
        .args(["--last-day", "2024-06-30"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("harness runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(lines[0]["workers"], 1, "{lines:#}");
    assert_eq!((lines[0]["succeeded"].as_u64(), lines[0]["failed"].as_u64()), (Some(2), Some(0)), "{lines:#}");
    assert!(stderr.contains("normal: backfill, 1 worker..."), "{stderr}");
}
