//! One active scheduler per database: a second one stays passive while the first holds the advisory
//! lock, runs nothing, and takes over once the first stops.

use chrono::TimeDelta;
use pipeline::ManualClock;
use pipeline::schedule::SchedulerStatus;
use pipeline::store::JobStatus;

use crate::{at, before_fire, complete, day, job, options, start, world};

fn retry_at(status: &SchedulerStatus) -> Option<chrono::DateTime<chrono::Utc>> {
    match status {
        SchedulerStatus::Passive { retry_at } => Some(*retry_at),
        _ => None,
    }
}

#[tokio::test]
async fn a_second_scheduler_stays_passive_while_the_first_is_active_and_takes_over_when_it_stops() {
    let world = world(51, "2024-06-04").await;
    let store = world.pipeline().await.expect("pipeline").store().clone();
    complete(&store, day("2024-06-02")).await;
    let clock = ManualClock::new(before_fire());
    let mut first = start(&world, options("scheduler-a"), &clock).await;
    first.waiting_after(1).await;
    let mut second = start(&world, options("scheduler-b"), &clock).await;
    let status = second.wait_for("the second scheduler to be passive", |s| retry_at(s).is_some()).await;
    let first_retry = retry_at(&status).expect("passive");
    assert_eq!(first_retry, before_fire() + TimeDelta::seconds(60), "retries the lock after lock_retry");

    // 09:00: the active scheduler runs yesterday; the passive one does not, even once it retries.
    clock.set(at("2024-06-04T09:00:00Z"));
    first.waiting_after(2).await;
    clock.set(first_retry);
    let status = second
        .wait_for("the second scheduler to retry the lock", |s| retry_at(s).is_some_and(|t| t > first_retry))
        .await;
    assert!(retry_at(&status).is_some(), "still passive: {status:?}");
    let ran = job(&store, day("2024-06-03")).await.expect("yesterday ran");
    assert_eq!((ran.status, ran.worker_id.as_deref()), (JobStatus::Completed, Some("scheduler-a")));
    assert_eq!(store.runs_of_day(day("2024-06-03")).await.expect("runs").len(), 1, "run once, by the active scheduler");

    // The first stops and releases the lock; at its next attempt the second becomes active.
    first.stop().await.expect("the first stops cleanly");
    let retry = retry_at(&second.status.borrow().clone()).expect("still passive until it retries");
    clock.set(retry);
    assert_eq!(second.waiting_after(1).await, at("2024-06-05T09:00:00Z"), "active, nothing due before tomorrow's fire");
    clock.set(at("2024-06-05T09:00:00Z"));
    second.waiting_after(2).await;
    let ran = job(&store, day("2024-06-04")).await.expect("the next date ran");
    assert_eq!(
        (ran.status, ran.worker_id.as_deref()),
        (JobStatus::Completed, Some("scheduler-b")),
        "{:?}",
        ran.error_message
    );

    second.stop().await.expect("the second stops cleanly");
}

#[tokio::test]
async fn a_passive_scheduler_can_be_stopped_without_ever_running_anything() {
    let world = world(52, "2024-06-03").await;
    let store = world.pipeline().await.expect("pipeline").store().clone();
    let held = store.try_scheduler_lock().await.expect("lock query").expect("the lock is free");
    let clock = ManualClock::new(at("2024-06-04T09:30:00Z"));
    let mut scheduler = start(&world, options("scheduler-b"), &clock).await;
    scheduler.wait_for("passive", |s| retry_at(s).is_some()).await;
    assert!(store.try_scheduler_lock().await.expect("lock query").is_none(), "the lock is exclusive");
    scheduler.stop().await.expect("stops cleanly");
    assert_eq!(job(&store, day("2024-06-03")).await, None, "a passive scheduler enqueues nothing");
    held.release().await;
    assert!(store.try_scheduler_lock().await.expect("lock query").is_some(), "released locks can be taken again");
}
