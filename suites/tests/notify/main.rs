//! The nightly Slack message: what it says (`harness::slack` over `harness::nightly`), how it is posted to a
//! webhook (a wiremock fake: retries of transient errors, none of a rejection), and `harness notify` as a
//! process (exit code 0 whatever happens to the post; the webhook URL never printed).

mod command;
mod payload;
mod poster;

use harness::scoring::ids::{CANDLES_EQUAL_TRUTH, SYMBOLS_LANDED};
use market::checks::ids::OHLC_INVARIANTS;
use std::path::PathBuf;

use harness::nightly::{Nightly, TestRun, TestSummary};
use harness::report::{Counts, HarnessSections, Report};
use harness::scoring::ExpectedCounts;
use market::TradingDay;
use market::checks::{CheckOutcome, Family, Status, Threshold, Thresholds, Validation};
use pipeline::report::Producer;

/// A date that reads well in assertions.
fn day() -> TradingDay {
    TradingDay::parse("2024-06-05").expect("valid day")
}

/// A check with the given outcome (the status is set as given, whatever the threshold would say).
fn check(id: &str, status: Status, failed: u64, evaluated: u64) -> CheckOutcome {
    let family = match id.split('.').next() {
        Some("quality") => Family::Quality,
        Some("consistency") => Family::Consistency,
        _ => Family::Completeness,
    };
    let mut check = CheckOutcome::new(id, family, "a check", Threshold::ZERO_TOLERANCE);
    check.count(evaluated, failed);
    check.status = status;
    check
}

/// A harness report over `checks`: scored like the harness scores, status the worst of them.
fn digest(checks: Vec<CheckOutcome>) -> Report {
    let status = checks.iter().map(|c| c.status).max().unwrap_or(Status::Pass);
    let validation = Validation {
        scores: market::checks::score(&checks),
        checks,
        thresholds: Thresholds::DEFAULT,
        status,
        records: Vec::new(),
        baselines: Vec::new(),
        metrics: Vec::new(),
    };
    let expected =
        ExpectedCounts { files: 12, trades_in_day: 250_000, rows_before_day: 3, rows_after_day: 0, candles: 17_280 };
    pipeline::report::Report::new(Producer::Harness, day(), &validation).with_sections(HarnessSections {
        seed: 42,
        counts: Counts { expected, landed_candles: 17_280, landed_instruments: 12 },
        symbols: Vec::new(),
        pipeline_validation: None,
        external: None,
        scenario: None,
        defect: None,
        postgres: harness::Backend::External,
        started_at: chrono::Utc::now(),
        duration_ms: 1_900,
    })
}

fn tests(passed: u64, failed: u64, skipped: u64) -> TestRun {
    let failures = (0..failed).map(|i| format!("suites::stages upload::test_{i}")).collect();
    TestRun {
        summary: Ok(TestSummary {
            passed,
            failed,
            skipped,
            flaky: 0,
            duration: Some(std::time::Duration::from_secs(312)),
            failures,
        }),
        exit_code: Some(if failed > 0 { 100 } else { 0 }),
    }
}

/// A green night: every check passes, every test passes.
fn green() -> Nightly {
    Nightly {
        harness: Ok(digest(vec![
            check(SYMBOLS_LANDED, Status::Pass, 0, 12),
            check(OHLC_INVARIANTS, Status::Pass, 0, 17_280),
            check(CANDLES_EQUAL_TRUTH, Status::Pass, 0, 17_280),
        ])),
        tests: Some(tests(410, 0, 1)),
        defects: Vec::new(),
        steps: Vec::new(),
        duration: Some(std::time::Duration::from_secs(843)),
        report_location: Some("https://github.com/acme/market/actions/runs/7".to_owned()),
    }
}

/// The `harness` binary next to this test's executable.
fn harness_binary() -> PathBuf {
    suites::workspace_binary("harness")
}
