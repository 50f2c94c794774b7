//! Preflight, on its own (`pipeline preflight`) and before each scheduled date: a date Tardis has not
//! exported, or that BigQuery cannot take, is held back with its cause and spends no queue retry.

use chrono::TimeDelta;
use fakes::bigquery::Route;
use market::DateRange;
use pipeline::cli::preflight::{PreflightArgs, text};
use pipeline::preflight::{CheckKind, preflight, preflight_config};
use pipeline::store::{JobStatus, ScheduledStatus};
use pipeline::{FixedClock, ManualClock};

use crate::{at, before_fire, complete, day, job, options, start, world};

fn range(from: &str, to: &str) -> DateRange {
    DateRange::parse(from, to).expect("valid range")
}

#[tokio::test]
async fn preflight_passes_on_a_healthy_world_and_creates_the_missing_tables() {
    let world = world(61, "2024-06-03").await;
    let report = preflight_config(&world.pipeline_config(), range("2024-06-01", "2024-06-03")).await;
    assert!(report.passed, "{}", text(&report));
    let checks: Vec<(CheckKind, &str)> = report.checks.iter().map(|c| (c.check, c.subject.as_str())).collect();
    assert_eq!(
        checks,
        vec![
            (CheckKind::Database, ""),
            (CheckKind::Tardis, "bitmex"),
            (CheckKind::Tardis, "deribit"),
            (CheckKind::Bigquery, "harness-project.market_data"),
        ]
    );
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../pipeline/migrations"))
        .expect("migrations dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql")))
        .count();
    assert!(
        report.checks[0].detail.contains(&format!("{migrations} of {migrations} migrations applied")),
        "{}",
        report.checks[0].detail
    );
    assert!(text(&report).lines().filter(|l| l.trim_start().starts_with('✓')).count() == 4, "{}", text(&report));
    for table in ["candles_1m", "instruments"] {
        assert!(
            world.bigquery.table_exists(harness::world::PROJECT, harness::world::DATASET, table),
            "{table} created"
        );
    }
}

#[tokio::test]
async fn preflight_fails_clearly_when_tardis_has_not_exported_the_last_dates() {
    let world = world(62, "2024-06-03").await;
    world.tardis.set_exported_until(at("2024-06-02T00:00:00Z")); // through June 1
    let pipeline = world.pipeline().await.expect("pipeline");
    let report = preflight(&pipeline, range("2024-05-31", "2024-06-03")).await;
    assert!(!report.passed);
    let failing: Vec<(CheckKind, &str)> = report.failing().map(|c| (c.check, c.subject.as_str())).collect();
    assert_eq!(failing, vec![(CheckKind::Tardis, "bitmex"), (CheckKind::Tardis, "deribit")]);
    for check in report.failing() {
        assert!(
            check.detail.starts_with("2024-06-02..2024-06-03 not exported yet (exportedUntil 2024-06-02T00:00:00"),
            "{}",
            check.detail
        );
    }
    assert!(text(&report).contains("✗ tardis bitmex"), "{}", text(&report));
    assert!(text(&report).contains("2 of 4 checks failed"), "{}", text(&report));
    assert!(report.cause().starts_with("tardis bitmex: 2024-06-02..2024-06-03 not exported yet"), "{}", report.cause());
    let json = serde_json::to_value(&report).expect("serialises");
    assert_eq!(json["passed"], false);
    assert_eq!(json["checks"][1]["check"], "tardis");

    // The dates it has exported pass.
    assert!(preflight(&pipeline, range("2024-05-31", "2024-06-01")).await.passed);
}

#[tokio::test]
async fn preflight_fails_clearly_when_bigquery_rejects_table_creation() {
    let world = world(63, "2024-06-03").await;
    world.bigquery.fail_next(Route::CreateTable, 1, 403, "accessDenied");
    let pipeline = world.pipeline().await.expect("pipeline");
    let report = preflight(&pipeline, range("2024-06-03", "2024-06-03")).await;
    let failing: Vec<&pipeline::preflight::Check> = report.failing().collect();
    assert_eq!(failing.len(), 1, "{}", text(&report));
    assert_eq!(failing[0].check, CheckKind::Bigquery);
    assert!(
        failing[0].detail.contains("table candles_1m") && failing[0].detail.contains("accessDenied"),
        "{}",
        failing[0].detail
    );
    // The fault was one-off: the next preflight creates the table.
    assert!(preflight(&pipeline, range("2024-06-03", "2024-06-03")).await.passed);
}

/// `pipeline preflight ARGS` as the command line parses them.
#[derive(Debug, clap::Parser)]
struct Preflight {
    #[command(flatten)]
    args: PreflightArgs,
}

/// The range `pipeline preflight ARGS` checks at the tests' "now", or the error it refuses them with.
fn range_of(argv: &[&str]) -> Result<DateRange, String> {
    use clap::Parser;
    let parsed = Preflight::try_parse_from(std::iter::once("preflight").chain(argv.iter().copied()))
        .map_err(|e| e.to_string())?;
    parsed.args.range(&FixedClock(before_fire())).map_err(|e| e.to_string())
}

#[rstest::rstest]
#[case::malformed(&["--date", "2024-6-3"], "expected YYYY-MM-DD")]
#[case::start_after_end(&["--from", "2024-06-03", "--to", "2024-06-01"], "is after end date")]
#[case::not_over_yet(&["--date", "2024-06-04"], "is not complete yet")]
fn preflight_rejects_bad_dates_as_bad_input(#[case] argv: &[&str], #[case] message: &str) {
    let err = range_of(argv).expect_err("bad input");
    assert!(err.contains(message), "{err}");
}

#[test]
fn preflight_checks_yesterday_by_default() {
    assert_eq!(range_of(&["--json"]).expect("valid"), DateRange::single(day("2024-06-03")));
    assert_eq!(range_of(&["--date", "2024-06-02"]).expect("valid"), DateRange::single(day("2024-06-02")));
}

#[tokio::test]
async fn a_date_tardis_has_not_exported_is_held_back_without_spending_queue_retries_then_runs_once_exported() {
    let world = world(64, "2024-06-02").await;
    let store = world.pipeline().await.expect("pipeline").store().clone();
    complete(&store, day("2024-06-02")).await;
    let clock = ManualClock::new(before_fire());
    let mut scheduler = start(&world, options("scheduler-a"), &clock).await;
    scheduler.waiting_after(1).await;

    // 09:00: June 3 is not exported yet. Held back with the cause, retried in 15 minutes.
    clock.set(at("2024-06-04T09:00:00Z"));
    assert_eq!(scheduler.waiting_after(2).await, at("2024-06-04T09:15:00Z"));
    let june_3 = day("2024-06-03");
    assert_eq!(job(&store, june_3).await, None, "not enqueued: no queue retry spent");
    let held = &store.scheduled_dates(DateRange::single(june_3)).await.expect("scheduled")[0];
    assert_eq!((held.status, held.preflight_failures), (ScheduledStatus::NotRun, 1));
    let cause = held.cause.as_deref().unwrap_or_default();
    assert!(cause.contains("tardis bitmex: 2024-06-03 not exported yet"), "{cause}");

    // Tardis exports it; the retry runs it.
    world.tardis.set_exported_until(at("2024-06-04T00:00:00Z"));
    clock.set(at("2024-06-04T09:15:00Z"));
    assert_eq!(scheduler.waiting_after(3).await, at("2024-06-05T09:00:00Z"));
    let ran = job(&store, june_3).await.expect("enqueued once exported");
    assert_eq!((ran.status, ran.retry_count), (JobStatus::Completed, 0), "{:?}", ran.error_message);
    let record = &store.scheduled_dates(DateRange::single(june_3)).await.expect("scheduled")[0];
    assert_eq!(
        (record.status, record.preflight_failures),
        (ScheduledStatus::Enqueued, 1),
        "the failed check stays on record"
    );

    scheduler.stop().await.expect("stops cleanly");
}

#[tokio::test]
async fn preflight_retries_are_bounded_per_fire_then_the_next_fire_tries_again() {
    let world = world(65, "2024-06-02").await;
    let store = world.pipeline().await.expect("pipeline").store().clone();
    complete(&store, day("2024-06-02")).await;
    let clock = ManualClock::new(at("2024-06-04T09:00:00Z"));
    let mut options = options("scheduler-a");
    options.preflight_retries = 2;
    let mut scheduler = start(&world, options, &clock).await;

    // The fire's pass, then two retries 15 minutes apart, then nothing until the next fire.
    let mut wake = scheduler.waiting_after(1).await;
    assert_eq!(wake, at("2024-06-04T09:15:00Z"));
    for (pass, expected) in [(2, "2024-06-04T09:30:00Z"), (3, "2024-06-05T09:00:00Z")] {
        clock.set(wake);
        wake = scheduler.waiting_after(pass).await;
        assert_eq!(wake, at(expected), "after pass {pass}");
    }
    let june_3 = DateRange::single(day("2024-06-03"));
    assert_eq!(store.scheduled_dates(june_3).await.expect("scheduled")[0].preflight_failures, 3);
    clock.set(wake);
    assert_eq!(scheduler.waiting_after(4).await, wake + TimeDelta::minutes(15), "the next fire retries again");
    assert_eq!(store.scheduled_dates(june_3).await.expect("scheduled")[0].preflight_failures, 4);
    assert_eq!(job(&store, day("2024-06-03")).await, None);

    scheduler.stop().await.expect("stops cleanly");
}
