//! `pipeline schedule --once`: one pass now, for a systemd timer or a Kubernetes CronJob.

use std::sync::Arc;

use pipeline::ManualClock;
use pipeline::schedule::{DateOutcome, Scheduler};
use pipeline::store::JobStatus;

use crate::{at, complete, day, job, landed_partitions, options, world};

#[tokio::test]
async fn once_runs_the_missed_dates_through_yesterday_unless_another_scheduler_is_active() {
    let world = world(81, "2024-06-03").await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let store = pipeline.store().clone();
    complete(&store, day("2024-06-01")).await;
    // Before the cron's fire: --once is triggered from outside, so yesterday is due anyway.
    let clock = Arc::new(ManualClock::new(at("2024-06-04T08:00:00Z")));
    let scheduler = Scheduler::new(pipeline, options("once"), clock);
    let (_stop, stop_rx) = pipeline::worker::stop_switch();

    let held = store.try_scheduler_lock().await.expect("lock query").expect("free");
    assert_eq!(scheduler.once(stop_rx.clone()).await.expect("runs"), None, "another scheduler is active: nothing done");
    assert_eq!(job(&store, day("2024-06-02")).await, None);
    held.release().await;

    let pass = scheduler.once(stop_rx).await.expect("runs").expect("the lock was free");
    let outcomes: Vec<(String, bool)> =
        pass.dates.iter().map(|d| (d.day.to_string(), matches!(d.outcome, DateOutcome::Completed { .. }))).collect();
    assert_eq!(outcomes, vec![("2024-06-02".to_owned(), true), ("2024-06-03".to_owned(), true)], "{pass:?}");
    assert_eq!(landed_partitions(&world), vec!["20240602", "20240603"]);
    assert!(store.try_scheduler_lock().await.expect("lock query").is_some(), "released after the pass");
}

#[tokio::test]
async fn enqueue_only_preflights_and_enqueues_leaving_the_runs_to_workers() {
    let world = world(82, "2024-06-03").await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let store = pipeline.store().clone();
    complete(&store, day("2024-06-02")).await;
    let mut options = options("once");
    options.enqueue_only = true;
    let scheduler = Scheduler::new(pipeline, options, Arc::new(ManualClock::new(at("2024-06-04T09:00:00Z"))));
    let (_stop, stop_rx) = pipeline::worker::stop_switch();

    let pass = scheduler.once(stop_rx).await.expect("runs").expect("the lock was free");
    assert_eq!(pass.dates.len(), 1);
    assert_eq!((pass.dates[0].day, &pass.dates[0].outcome), (day("2024-06-03"), &DateOutcome::Enqueued));
    assert_eq!(
        job(&store, day("2024-06-03")).await.map(|j| j.status),
        Some(JobStatus::Pending),
        "waiting for a worker"
    );
    assert!(landed_partitions(&world).is_empty(), "nothing run");
    let json = serde_json::to_value(&pass).expect("serialises");
    assert_eq!(json["dates"][0], serde_json::json!({"day": "2024-06-03", "outcome": "enqueued"}));
}
