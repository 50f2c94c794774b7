//! Stopping (SIGTERM, SIGINT): nothing more is claimed, the current date finishes, the lock is released.

use pipeline::ManualClock;
use pipeline::schedule::SchedulerStatus;
use pipeline::store::{JobStatus, RunStatus};

use crate::{at, complete, day, eventually, job, landed_partitions, options, start, world};

#[tokio::test]
async fn a_stop_during_a_date_lets_it_finish_then_claims_nothing_more_and_releases_the_lock() {
    let world = world(71, "2024-06-03").await;
    // Each load job reports RUNNING for a while, so the date is surely in flight when the stop comes.
    world.bigquery.set_running_polls(40);
    let store = world.pipeline().await.expect("pipeline").store().clone();
    complete(&store, day("2024-05-31")).await;
    let clock = ManualClock::new(at("2024-06-04T09:30:00Z"));
    let mut scheduler = start(&world, options("scheduler-a"), &clock).await;

    // The catch-up pass has June 1..3 to run; stop while June 1 is being processed.
    let june_1 = day("2024-06-01");
    eventually("June 1 to be in flight", || async {
        job(&store, june_1).await.is_some_and(|j| j.status == JobStatus::Processing)
    })
    .await;
    scheduler.stop.send_replace(true);
    let result =
        tokio::time::timeout(crate::DEADLINE, &mut scheduler.task).await.expect("stops in time").expect("no panic");
    result.expect("a stop is a clean exit");
    assert_eq!(*scheduler.status.borrow(), SchedulerStatus::Stopped);

    let finished = job(&store, june_1).await.expect("June 1 queued");
    assert_eq!(finished.status, JobStatus::Completed, "the current date finished: {:?}", finished.error_message);
    let runs = store.runs_of_day(june_1).await.expect("runs");
    assert_eq!(runs.iter().map(|r| r.status).collect::<Vec<_>>(), vec![RunStatus::Succeeded]);
    assert_eq!(job(&store, day("2024-06-02")).await, None, "nothing claimed or enqueued after the stop");
    assert_eq!(landed_partitions(&world), vec!["20240601"]);
    assert!(store.try_scheduler_lock().await.expect("lock query").is_some(), "the lock was released");
}
