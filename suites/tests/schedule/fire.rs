//! The daily fire: 09:00 UTC runs the previous date, by the clock alone.

use pipeline::ManualClock;
use pipeline::schedule::SchedulerStatus;
use pipeline::store::{JobStatus, RunStatus};

use crate::{at, before_fire, complete, day, job, landed_partitions, options, start, world};

#[tokio::test]
async fn the_scheduler_fires_at_nine_utc_for_the_previous_date_and_not_a_second_before() {
    let world = world(31, "2024-06-03").await;
    let store = world.pipeline().await.expect("pipeline").store().clone();
    complete(&store, day("2024-06-02")).await;
    let clock = ManualClock::new(before_fire());
    let mut scheduler = start(&world, options("scheduler-a"), &clock).await;

    // 08:59:59: the start-up pass finds every due date done and sleeps until 09:00.
    assert_eq!(scheduler.waiting_after(1).await, at("2024-06-04T09:00:00Z"));
    assert_eq!(job(&store, day("2024-06-03")).await, None, "nothing enqueued before 09:00");
    assert!(landed_partitions(&world).is_empty(), "nothing landed before 09:00");

    // 09:00:00: yesterday runs, through the queue, and lands.
    clock.set(at("2024-06-04T09:00:00Z"));
    assert_eq!(scheduler.waiting_after(2).await, at("2024-06-05T09:00:00Z"), "then waits for tomorrow");
    let ran = job(&store, day("2024-06-03")).await.expect("yesterday enqueued");
    assert_eq!(ran.status, JobStatus::Completed, "{:?}", ran.error_message);
    assert_eq!(ran.worker_id.as_deref(), Some("scheduler-a"));
    assert_eq!(landed_partitions(&world), vec!["20240603".to_owned()], "yesterday's partition, and only it");
    let runs = store.runs_of_day(day("2024-06-03")).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].status, runs[0].trigger.as_str()), (RunStatus::Succeeded, "schedule"));
    assert_eq!(Some(runs[0].id), ran.run_id);
    assert!(job(&store, day("2024-06-04")).await.is_none(), "today is never run");

    scheduler.stop().await.expect("stops cleanly");
}

#[tokio::test]
async fn without_any_history_the_first_pass_runs_only_the_latest_due_date() {
    let world = world(32, "2024-06-03").await;
    let store = world.pipeline().await.expect("pipeline").store().clone();
    let clock = ManualClock::new(before_fire());
    let mut scheduler = start(&world, options("scheduler-a"), &clock).await;

    // Before 09:00 on June 4, the latest due date is June 2 (June 3 is due at 09:00).
    assert_eq!(scheduler.waiting_after(1).await, at("2024-06-04T09:00:00Z"));
    assert_eq!(landed_partitions(&world), vec!["20240602".to_owned()]);
    let jobs = store.jobs(market::DateRange::parse("2024-05-01", "2024-06-04").expect("range")).await.expect("jobs");
    assert_eq!(
        jobs.iter().map(|j| (j.day.to_string(), j.status)).collect::<Vec<_>>(),
        vec![("2024-06-02".to_owned(), JobStatus::Completed)]
    );
    assert!(matches!(*scheduler.status.borrow(), SchedulerStatus::Waiting { .. }));

    scheduler.stop().await.expect("stops cleanly");
}
