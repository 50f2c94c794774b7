//! Catch-up: on start, the dates missed since the latest completed one run, oldest first, within the
//! configured window.

use pipeline::ManualClock;
use pipeline::store::JobStatus;

use crate::{at, complete, day, job, landed_partitions, options, start, world};

/// A clock past the fire of June 4: June 3 and everything before it are due.
fn after_fire() -> ManualClock {
    ManualClock::new(at("2024-06-04T09:30:00Z"))
}

#[tokio::test]
async fn missed_dates_after_the_latest_completed_one_run_oldest_first_on_start() {
    let world = world(41, "2024-06-03").await;
    let store = world.pipeline().await.expect("pipeline").store().clone();
    complete(&store, day("2024-05-31")).await; // D-4, with D = 2024-06-04
    let clock = after_fire();
    let mut scheduler = start(&world, options("scheduler-a"), &clock).await;

    assert_eq!(scheduler.waiting_after(1).await, at("2024-06-05T09:00:00Z"));
    let mut started = Vec::new();
    for d in ["2024-06-01", "2024-06-02", "2024-06-03"] {
        let ran = job(&store, day(d)).await.unwrap_or_else(|| panic!("{d} enqueued"));
        assert_eq!(ran.status, JobStatus::Completed, "{d}: {:?}", ran.error_message);
        started.push((ran.started_at.expect("started"), d));
    }
    let mut by_start = started.clone();
    by_start.sort();
    assert_eq!(by_start, started, "oldest first");
    assert_eq!(landed_partitions(&world), vec!["20240601", "20240602", "20240603"]);
    assert!(
        store.runs_of_day(day("2024-05-31")).await.expect("runs").is_empty(),
        "the completed date is not run again"
    );

    scheduler.stop().await.expect("stops cleanly");
}

#[tokio::test]
async fn catch_up_goes_back_at_most_the_configured_number_of_days() {
    let world = world(42, "2024-06-03").await;
    let store = world.pipeline().await.expect("pipeline").store().clone();
    complete(&store, day("2024-05-20")).await;
    let clock = after_fire();
    let mut options = options("scheduler-a");
    options.catch_up_days = 2;
    let mut scheduler = start(&world, options, &clock).await;

    scheduler.waiting_after(1).await;
    assert_eq!(landed_partitions(&world), vec!["20240602", "20240603"], "yesterday and the day before only");
    for d in ["2024-05-21", "2024-05-31", "2024-06-01"] {
        assert_eq!(job(&store, day(d)).await, None, "{d} is outside the window");
    }

    scheduler.stop().await.expect("stops cleanly");
}

#[tokio::test]
async fn a_date_run_by_hand_counts_as_completed() {
    let world = world(43, "2024-06-03").await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let manual = pipeline.run_day(day("2024-06-02"), "manual").await.expect("run recorded");
    assert!(manual.error.is_none(), "{:?}", manual.error);
    let clock = after_fire();
    let mut scheduler = start(&world, options("scheduler-a"), &clock).await;

    scheduler.waiting_after(1).await;
    assert_eq!(job(&pipeline.store().clone(), day("2024-06-02")).await, None, "not enqueued again");
    assert_eq!(job(pipeline.store(), day("2024-06-03")).await.map(|j| j.status), Some(JobStatus::Completed));
    assert_eq!(pipeline.store().runs_of_day(day("2024-06-02")).await.expect("runs").len(), 1);

    scheduler.stop().await.expect("stops cleanly");
}
