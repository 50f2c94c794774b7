use std::collections::BTreeMap;

use market::TradingDay;
use pipeline::backfill::{Action, execute, plan, validate};
use pipeline::cli::backfill::summary_text;
use pipeline::clock::day_or_yesterday;
use pipeline::store::JobStatus;
use pipeline::worker::stop_switch;

use crate::{request, world};

async fn backfill(world: &harness::World, start: &str, end: &str, parallel: usize) -> pipeline::backfill::Summary {
    let pipeline = world.pipeline().await.expect("pipeline");
    let req = request(world, start, end, parallel);
    let today = crate::last_day().succ();
    let selection = validate(&req, today, &pipeline.config().selection).expect("valid request");
    let plan = plan(&pipeline, &req, &selection, &pipeline.config().selection).await.expect("plan");
    let (_tx, rx) = stop_switch();
    execute(&pipeline, &req, &plan, rx, &|_| {}).await.expect("executed")
}

/// Every date of the range holds exactly the generated candles, once.
fn assert_landed_exactly(world: &harness::World, days: impl Iterator<Item = TradingDay>) {
    for day in days {
        let landed = harness::run::landed_candles(&world.bigquery, day).expect("rows");
        let truth = world.generator.day_truth(day);
        assert_eq!(landed.len(), truth.candles().count(), "{day}: exactly the generated candles, no duplicates");
    }
}

#[tokio::test]
async fn a_single_date_is_backfilled_with_a_log_file_and_an_audit_record() {
    let world = world(11).await;
    let summary = backfill(&world, "2024-06-10", "2024-06-10", 1).await;
    assert_eq!(
        (summary.totals.succeeded, summary.totals.failed, summary.totals.skipped),
        (1, 0, 0),
        "{}",
        summary_text(&summary)
    );
    assert_landed_exactly(&world, std::iter::once(TradingDay::parse("2024-06-10").expect("valid")));
    let log = std::fs::read_to_string(world.data_dir.path().join("logs/backfill_2024-06-10.log")).expect("log file");
    assert!(
        log.contains("2024-06-10 start ") && log.contains("2024-06-10 end ") && log.contains("status=completed"),
        "{log}"
    );
    assert!(log.contains("stage upload ok"), "{log}");
    let pipeline = world.pipeline().await.expect("pipeline");
    let audit: (String, i32, i64, String) =
        sqlx::query_as("SELECT requested_by, succeeded, rows_written, status FROM backfill_audit WHERE id = $1")
            .bind(summary.audit_id)
            .fetch_one(pipeline.store().pool())
            .await
            .expect("audit");
    assert_eq!((audit.0.as_str(), audit.1, audit.3.as_str()), ("suite", 1, "succeeded"));
    assert_eq!(u64::try_from(audit.2).expect("positive"), summary.totals.rows);
}

#[tokio::test]
async fn three_dates_run_sequentially_in_order() {
    let world = world(12).await;
    let summary = backfill(&world, "2024-06-10", "2024-06-12", 1).await;
    let order: Vec<String> = summary.results.iter().map(|r| r.day.to_string()).collect();
    assert_eq!(order, ["2024-06-10", "2024-06-11", "2024-06-12"]);
    assert!(summary.results.iter().all(|r| r.status == JobStatus::Completed && r.trades > 0));
}

#[tokio::test]
async fn three_dates_with_two_workers_run_each_date_once() {
    let world = world(13).await;
    let summary = backfill(&world, "2024-06-10", "2024-06-12", 2).await;
    assert_eq!(summary.totals.succeeded, 3);
    let workers: std::collections::BTreeSet<&str> = summary.results.iter().map(|r| r.worker_id.as_str()).collect();
    assert_eq!(workers.len(), 2, "both workers took dates");
    let pipeline = world.pipeline().await.expect("pipeline");
    for day in ["2024-06-10", "2024-06-11", "2024-06-12"] {
        let runs = pipeline.store().runs_of_day(TradingDay::parse(day).expect("valid")).await.expect("runs");
        assert_eq!(runs.len(), 1, "{day} ran once");
    }
}

#[tokio::test]
async fn thirty_dates_with_four_workers_complete_and_a_rerun_skips_them_all() {
    let world = world(14).await;
    let summary = backfill(&world, "2024-06-01", "2024-06-30", 4).await;
    assert_eq!((summary.totals.succeeded, summary.totals.failed), (30, 0));
    assert_landed_exactly(&world, market::DateRange::parse("2024-06-01", "2024-06-30").expect("valid").days());
    let again = backfill(&world, "2024-06-01", "2024-06-30", 4).await;
    assert_eq!((again.totals.succeeded, again.totals.skipped), (0, 30), "completed dates are skipped");
}

#[tokio::test]
async fn a_completed_date_whose_partition_changed_is_run_again() {
    let world = world(15).await;
    backfill(&world, "2024-06-10", "2024-06-11", 1).await;
    let url = format!(
        "{}/bigquery/v2/projects/{}/datasets/{}/tables/candles_1m%2420240611",
        world.bigquery.uri(),
        harness::world::PROJECT,
        harness::world::DATASET
    );
    assert!(reqwest::Client::new().delete(url).send().await.expect("delete").status().is_success());
    let pipeline = world.pipeline().await.expect("pipeline");
    let req = request(&world, "2024-06-10", "2024-06-11", 1);
    let selection = validate(&req, crate::last_day().succ(), &pipeline.config().selection).expect("valid");
    let plan = plan(&pipeline, &req, &selection, &pipeline.config().selection).await.expect("plan");
    let range = req.range;
    let actions: BTreeMap<String, &Action> = plan.days.iter().map(|d| (d.day.to_string(), &d.action)).collect();
    assert!(matches!(actions["2024-06-10"], Action::Skip { .. }));
    assert!(
        matches!(actions["2024-06-11"], Action::Rerun { reason } if reason.starts_with("partition holds 0 rows")),
        "{actions:?}"
    );
    let summary = backfill(&world, "2024-06-10", "2024-06-11", 1).await;
    assert_eq!((summary.totals.succeeded, summary.totals.skipped), (1, 1));
    assert_landed_exactly(&world, range.days());
}

#[tokio::test]
async fn a_failing_date_does_not_stop_the_others_and_is_retried_then_failed() {
    let world = world(16).await;
    wiremock::Mock::given(wiremock::matchers::path("/v1/bitmex/trades/2024/06/11/XBTUSD.csv.gz"))
        .respond_with(wiremock::ResponseTemplate::new(404).set_body_string(r#"{"code":404,"message":"gone"}"#))
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let summary = backfill(&world, "2024-06-10", "2024-06-12", 2).await;
    assert_eq!((summary.totals.succeeded, summary.totals.failed), (2, 1));
    let attempts = summary.results.iter().filter(|r| r.day.to_string() == "2024-06-11").count();
    assert_eq!(attempts, 5, "retried until the fifth failure");
    assert!(summary_text(&summary).contains("✗ 2024-06-11: 1 of 2 files failed"), "{}", summary_text(&summary));
    let pipeline = world.pipeline().await.expect("pipeline");
    let stats = pipeline.store().queue_stats().await.expect("stats");
    assert_eq!((stats.dates.completed, stats.dates.failed), (2, 1));
    assert!(stats.failures[0].error_message.as_deref().unwrap_or_default().contains("404"));
}

#[tokio::test]
async fn data_lands_in_the_configured_table_version() {
    let world = world(17).await;
    let mut config = world.pipeline_config();
    config.bigquery.table_suffix = "_v2".to_owned();
    let pipeline = pipeline::Pipeline::connect(config).await.expect("pipeline");
    let day = TradingDay::parse("2024-06-10").expect("valid");
    let outcome = pipeline.run_day(day, "test").await.expect("run");
    assert_eq!(
        outcome.validation.map(|v| v.status),
        Some(market::checks::Status::Pass),
        "validation reads the same version"
    );
    let (p, d) = (harness::world::PROJECT, harness::world::DATASET);
    assert!(world.bigquery.table_exists(p, d, "candles_1m_v2") && world.bigquery.table_exists(p, d, "instruments_v2"));
    assert!(!world.bigquery.table_exists(p, d, "candles_1m"), "nothing went to the unversioned table");
    assert_eq!(
        world.bigquery.partition_rows(p, d, "candles_1m_v2", &day.compact()).len(),
        world.generator.day_truth(day).candles().count()
    );
}

#[test]
fn a_local_run_defaults_to_yesterday() {
    let now = chrono::DateTime::parse_from_rfc3339("2024-06-05T09:00:00Z").expect("valid").to_utc();
    let clock = pipeline::FixedClock(now);
    assert_eq!(day_or_yesterday(None, &clock).expect("default").to_string(), "2024-06-04");
    let today = TradingDay::parse("2024-06-05").expect("valid");
    assert!(day_or_yesterday(Some(today), &clock).is_err(), "today is not complete");
}
