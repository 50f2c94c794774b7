use pipeline::store::RunStatus;

use crate::{day, world};

#[tokio::test]
async fn rerunning_a_date_leaves_exactly_the_rows_of_one_run() {
    let world = world(5).await;
    let pipeline = world.pipeline().await.expect("pipeline connects");
    let first = pipeline.run_day(day(), "test").await.expect("first run");
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    let after_first = harness::run::landed_candles(&world.bigquery, day()).expect("readable");
    let instruments_after_first = world
        .bigquery
        .partition_rows(harness::world::PROJECT, harness::world::DATASET, "instruments", &day().compact())
        .len();

    let second = pipeline.run_day(day(), "test").await.expect("second run");
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    let after_second = harness::run::landed_candles(&world.bigquery, day()).expect("readable");
    assert_eq!(after_second.len(), after_first.len(), "a rerun replaces the partition, it never appends");
    assert_eq!(after_second, after_first);
    let all_rows = world.bigquery.rows(harness::world::PROJECT, harness::world::DATASET, "candles_1m").len();
    assert_eq!(all_rows, after_first.len(), "nothing landed outside the date's partition");
    let instruments = world
        .bigquery
        .partition_rows(harness::world::PROJECT, harness::world::DATASET, "instruments", &day().compact())
        .len();
    assert_eq!(instruments, instruments_after_first);

    // Two runs, two distinct sets of job ids: a rerun is never mistaken for the first run's jobs.
    assert_ne!(first.run_key, second.run_key);
    let runs = pipeline.store().runs_of_day(day()).await.expect("runs listed");
    assert_eq!(runs.len(), 2);
}

#[tokio::test]
async fn a_rerun_replaces_only_its_own_date() {
    let world = harness::World::start(harness::WorldOptions::new(9, day()).activity(0.05)).await.expect("world");
    let pipeline = world.pipeline().await.expect("pipeline connects");
    let previous = day().pred();
    assert_eq!(pipeline.run_day(previous, "test").await.expect("run").status, RunStatus::Succeeded);
    assert_eq!(pipeline.run_day(day(), "test").await.expect("run").status, RunStatus::Succeeded);
    let before = harness::run::landed_candles(&world.bigquery, previous).expect("readable");
    assert_eq!(pipeline.run_day(day(), "test").await.expect("rerun").status, RunStatus::Succeeded);
    let after = harness::run::landed_candles(&world.bigquery, previous).expect("readable");
    assert_eq!(before, after, "rerunning a date leaves the neighbouring partition alone");
    assert!(!before.is_empty());
}
