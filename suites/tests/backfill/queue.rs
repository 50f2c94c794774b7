use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use market::{DateRange, TradingDay};
use pipeline::store::{Beat, CancelTarget, ClaimOptions, JobStatus, Lane, Lanes, MAX_RETRIES, Order, Store};

use crate::world;

fn range(a: &str, b: &str) -> DateRange {
    DateRange::parse(a, b).expect("valid")
}

fn options(order: Order, lease: Duration) -> ClaimOptions {
    ClaimOptions { order, range: None, lease, retry_backoff: Duration::ZERO, lanes: Lanes::All }
}

async fn store() -> (harness::World, Store) {
    let world = world(1).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    (world, store)
}

#[tokio::test]
async fn seeding_is_idempotent_and_claims_follow_the_configured_order() {
    let (_world, store) = store().await;
    let live = store.liveness().await.expect("liveness");
    assert_eq!(store.seed(range("2024-06-01", "2024-06-05"), None).await.expect("seed"), 5);
    assert_eq!(store.seed(range("2024-06-03", "2024-06-07"), None).await.expect("seed"), 2, "only the new dates");
    let newest = store
        .claim("w1", &live, options(Order::NewestFirst, Duration::from_secs(60)))
        .await
        .expect("claim")
        .expect("a date");
    assert_eq!(newest.day.to_string(), "2024-06-07");
    let oldest = store
        .claim("w2", &live, options(Order::OldestFirst, Duration::from_secs(60)))
        .await
        .expect("claim")
        .expect("a date");
    assert_eq!(oldest.day.to_string(), "2024-06-01");
    let inside = ClaimOptions {
        range: Some(range("2024-06-04", "2024-06-04")),
        ..options(Order::OldestFirst, Duration::from_secs(60))
    };
    assert_eq!(
        store.claim("w3", &live, inside).await.expect("claim").map(|l| l.day.to_string()),
        Some("2024-06-04".to_owned())
    );
    assert_eq!(store.claim("w4", &live, inside).await.expect("claim"), None, "a held date is not claimed twice");
}

#[tokio::test]
async fn a_date_goes_pending_processing_completed() {
    let (_world, store) = store().await;
    let live = store.liveness().await.expect("liveness");
    let day = TradingDay::parse("2024-06-01").expect("valid");
    store.seed(DateRange::single(day), None).await.expect("seed");
    assert_eq!(store.job(day).await.expect("job").expect("exists").status, JobStatus::Pending);
    let lease = store
        .claim("w1", &live, options(Order::OldestFirst, Duration::from_secs(60)))
        .await
        .expect("claim")
        .expect("claimed");
    let job = store.job(day).await.expect("job").expect("exists");
    assert_eq!((job.status, job.worker_id.as_deref()), (JobStatus::Processing, Some("w1")));
    assert!(job.started_at.is_some() && job.lease_expires_at.is_some());
    assert_eq!(store.heartbeat(&lease, Duration::from_secs(120)).await.expect("beat"), Beat::Held);
    assert!(store.complete(&lease, 1234, None).await.expect("complete"));
    let job = store.job(day).await.expect("job").expect("exists");
    assert_eq!((job.status, job.rows), (JobStatus::Completed, Some(1234)));
    assert!(job.completed_at.is_some());
    assert_eq!(
        store.claim("w2", &live, options(Order::OldestFirst, Duration::from_secs(60))).await.expect("claim"),
        None
    );
}

#[tokio::test]
async fn failures_retry_until_the_fifth_then_the_date_is_failed_with_its_error() {
    let (_world, store) = store().await;
    let live = store.liveness().await.expect("liveness");
    let day = TradingDay::parse("2024-06-01").expect("valid");
    store.seed(DateRange::single(day), None).await.expect("seed");
    for attempt in 1..=MAX_RETRIES {
        let lease = store
            .claim("w", &live, options(Order::OldestFirst, Duration::from_secs(60)))
            .await
            .expect("claim")
            .expect("claimable");
        let status = store.fail(&lease, &format!("boom {attempt}"), Duration::ZERO).await.expect("fail").expect("held");
        let job = store.job(day).await.expect("job").expect("exists");
        assert_eq!(job.retry_count, attempt);
        assert!(job.last_retry_at.is_some());
        if attempt < MAX_RETRIES {
            assert_eq!(status, JobStatus::Retry);
        } else {
            assert_eq!(status, JobStatus::Failed);
            assert_eq!(job.error_message.as_deref(), Some("boom 5"));
        }
    }
    assert_eq!(
        store.claim("w", &live, options(Order::OldestFirst, Duration::from_secs(60))).await.expect("claim"),
        None,
        "failed dates are excluded"
    );
    assert_eq!(store.reset(DateRange::single(day)).await.expect("force"), 1);
    let job = store.job(day).await.expect("job").expect("exists");
    assert_eq!((job.status, job.retry_count), (JobStatus::Pending, 0), "forcing puts it back");
}

#[tokio::test]
async fn a_retry_waits_for_its_backoff() {
    let (_world, store) = store().await;
    let live = store.liveness().await.expect("liveness");
    let day = TradingDay::parse("2024-06-01").expect("valid");
    store.seed(DateRange::single(day), None).await.expect("seed");
    let lease = store
        .claim("w", &live, options(Order::OldestFirst, Duration::from_secs(60)))
        .await
        .expect("claim")
        .expect("claimable");
    store.fail(&lease, "transient", Duration::from_secs(3600)).await.expect("fail");
    assert_eq!(
        store.claim("w", &live, options(Order::OldestFirst, Duration::from_secs(60))).await.expect("claim"),
        None
    );
    assert_eq!(store.unfinished(None, Lanes::All).await.expect("count"), 1, "still to be done");
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_the_old_holder_is_fenced_off() {
    let (_world, store) = store().await;
    let live = store.liveness().await.expect("liveness");
    let day = TradingDay::parse("2024-06-01").expect("valid");
    store.seed(DateRange::single(day), None).await.expect("seed");
    let dead = store
        .claim("dead", &live, options(Order::OldestFirst, Duration::from_millis(200)))
        .await
        .expect("claim")
        .expect("claimable");
    assert_eq!(
        store.claim("alive", &live, options(Order::OldestFirst, Duration::from_secs(60))).await.expect("claim"),
        None
    );
    crate::eventually("the lease to expire", Duration::from_secs(10), || async {
        matches!(store.claim("alive", &live, options(Order::OldestFirst, Duration::from_secs(60))).await, Ok(Some(_)))
    })
    .await;
    assert_eq!(
        store.heartbeat(&dead, Duration::from_secs(60)).await.expect("beat"),
        Beat::Lost,
        "the dead worker lost its lease"
    );
    assert!(!store.complete(&dead, 1, None).await.expect("complete"), "and cannot complete the date");
    assert_eq!(store.job(day).await.expect("job").expect("exists").worker_id.as_deref(), Some("alive"));
}

/// `n` workers (separate connections) race for 40 dates; every date must be claimed exactly once.
async fn race(n: usize) {
    let (_world, store) = store().await;
    store.seed(range("2024-05-01", "2024-06-09"), None).await.expect("seed");
    let claims: Arc<Mutex<BTreeMap<TradingDay, Vec<String>>>> = Arc::default();
    let workers = (0..n).map(|i| {
        let (store, claims) = (store.clone(), claims.clone());
        tokio::spawn(async move {
            let id = format!("w{i}");
            let live = store.liveness().await.expect("liveness");
            while let Some(lease) =
                store.claim(&id, &live, options(Order::OldestFirst, Duration::from_secs(60))).await.expect("claim")
            {
                claims.lock().expect("lock").entry(lease.day).or_default().push(id.clone());
                tokio::task::yield_now().await;
                assert!(store.complete(&lease, 1, None).await.expect("complete"));
            }
        })
    });
    for w in futures::future::join_all(workers).await {
        w.expect("worker");
    }
    let claims = claims.lock().expect("lock");
    assert_eq!(claims.len(), 40);
    let doubled: Vec<_> = claims.iter().filter(|(_, who)| who.len() != 1).collect();
    assert!(doubled.is_empty(), "dates claimed twice: {doubled:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_hold_the_same_date() {
    race(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_workers_never_hold_the_same_date() {
    race(8).await;
}

#[tokio::test]
async fn a_dead_workers_claim_is_free_at_once_and_a_live_ones_is_held_for_its_lease() {
    let (_world, store) = store().await;
    store.seed(range("2024-06-01", "2024-06-02"), None).await.expect("seed");
    let long = options(Order::OldestFirst, Duration::from_secs(600));
    let (alive, dying) = (store.liveness().await.expect("liveness"), store.liveness().await.expect("liveness"));
    let kept = store.claim("alive", &alive, long).await.expect("claim").expect("a date");
    let lost = store.claim("dying", &dying, long).await.expect("claim").expect("another date");
    let rescuer = store.liveness().await.expect("liveness");
    assert_eq!(store.claim("rescuer", &rescuer, long).await.expect("claim"), None, "both claims stand");
    let held = store.held(None, Lanes::All, "rescuer").await.expect("held");
    assert_eq!(held.iter().map(|h| h.worker_id.as_str()).collect::<Vec<_>>(), ["alive", "dying"]);
    // The dying worker's session ends (as when its process is killed): its date is claimable at once, 600 s
    // lease or not; the live worker's is not.
    drop(dying);
    crate::eventually("the dead worker's session to end", Duration::from_secs(10), || async {
        store.held(None, Lanes::All, "rescuer").await.expect("held").len() == 1
    })
    .await;
    let taken = store.claim("rescuer", &rescuer, long).await.expect("claim").expect("the dead worker's date");
    assert_eq!(taken.day, lost.day);
    assert_eq!(store.claim("rescuer", &rescuer, long).await.expect("claim"), None, "the live worker keeps its date");
    assert!(!store.complete(&lost, 1, None).await.expect("complete"), "the dead worker is fenced off");
    assert!(store.complete(&kept, 1, None).await.expect("complete"));
}

#[tokio::test]
async fn a_liveness_key_whose_connection_ended_says_so() {
    let (world, store) = store().await;
    let mut live = store.liveness().await.expect("liveness");
    assert!(live.is_held().await);
    // Terminate the backend holding the key, as a network blip or an administrator would.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(world.database.url()).await.expect("connect");
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
           AND ((classid::bigint << 32) | objid::bigint) = $1",
    )
    .bind(live.key())
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    assert_eq!(terminated, [true]);
    // The terminated session may take a moment to be noticed on the key's connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while live.is_held().await {
        assert!(std::time::Instant::now() < deadline, "the key still looks held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The daily lane is claimed before any backfill date, whatever the order, and a daily-only slot claims
/// nothing else; a backfill that queues the scheduler's date does not demote it.
#[tokio::test]
async fn the_daily_lane_is_claimed_first_and_a_daily_slot_claims_only_it() {
    let (_world, store) = store().await;
    let live = store.liveness().await.expect("liveness");
    store.seed(range("2024-06-01", "2024-06-29"), Some(1)).await.expect("seed");
    let daily_slot = ClaimOptions { lanes: Lanes::DailyOnly, ..options(Order::OldestFirst, Duration::from_secs(60)) };
    assert_eq!(store.claim("daily", &live, daily_slot).await.expect("claim"), None, "no daily date yet");
    let yesterday = TradingDay::parse("2024-06-30").expect("valid");
    store.seed_daily(yesterday).await.expect("seed daily");
    // Seeding the backfill range again (a rerun covering yesterday) keeps it in the daily lane.
    store.seed(range("2024-06-28", "2024-06-30"), Some(2)).await.expect("seed");
    assert_eq!(store.job(yesterday).await.expect("job").expect("exists").lane, Lane::Daily);
    for order in [Order::OldestFirst, Order::NewestFirst] {
        let first = store.claim("any", &live, options(order, Duration::from_secs(60))).await.expect("claim");
        let first = first.expect("claimable");
        if order == Order::OldestFirst {
            assert_eq!(first.day, yesterday, "the daily date first, before 29 older backfill dates");
            assert!(store.complete(&first, 1, None).await.expect("complete"));
        } else {
            assert_eq!(first.day.to_string(), "2024-06-29", "then the backfill, newest first");
        }
    }
    assert_eq!(store.claim("daily", &live, daily_slot).await.expect("claim"), None, "backfill dates are not its");
    assert_eq!(store.unfinished(None, Lanes::DailyOnly).await.expect("count"), 0);
    assert_eq!(store.unfinished(None, Lanes::All).await.expect("count"), 29);
}

/// Cancelling a backfill stops its queued dates being claimed, lets a date in flight finish (or, with `now`,
/// tells its worker to stop), never touches the daily lane, and says who cancelled; queuing the dates again
/// (a new backfill, the scheduler) brings them back.
#[tokio::test]
async fn a_cancelled_backfills_dates_are_not_claimed_and_the_audit_says_who() {
    let (_world, store) = store().await;
    let live = store.liveness().await.expect("liveness");
    let audit = store
        .start_backfill("ops", range("2024-06-01", "2024-06-10"), &serde_json::json!({}), false)
        .await
        .expect("audit");
    store.seed(range("2024-06-01", "2024-06-10"), Some(audit)).await.expect("seed");
    store.seed_daily(TradingDay::parse("2024-06-30").expect("valid")).await.expect("daily");
    let any = options(Order::OldestFirst, Duration::from_secs(60));
    let daily = store.claim("w-daily", &live, any).await.expect("claim").expect("daily first");
    let running = store.claim("w1", &live, any).await.expect("claim").expect("a backfill date");
    let stopping = store.claim("w2", &live, any).await.expect("claim").expect("another");
    assert_eq!(store.cancel_backfills(CancelTarget::Backfill(audit + 100), "x", false).await.expect("cancel"), None);

    let outcome = store.cancel_backfills(CancelTarget::All, "alice@ops", false).await.expect("cancel").expect("some");
    assert_eq!((outcome.backfills.clone(), outcome.queued, outcome.in_flight.len()), (vec![audit], 8, 2));
    assert_eq!(store.claim("w3", &live, any).await.expect("claim"), None, "nothing claimable any more");
    assert_eq!(
        store.heartbeat(&running, Duration::from_secs(60)).await.expect("beat"),
        Beat::Held,
        "in flight finishes"
    );
    assert_eq!(store.heartbeat(&daily, Duration::from_secs(60)).await.expect("beat"), Beat::Held);
    // A second cancel, with now: the dates in flight are told to stop; the daily date is not a backfill's.
    let now = store.cancel_backfills(CancelTarget::Backfill(audit), "bob", true).await.expect("cancel").expect("some");
    assert_eq!((now.queued, now.in_flight.len(), now.backfills.len()), (0, 2, 0), "{now:?}");
    assert_eq!(store.heartbeat(&stopping, Duration::from_secs(60)).await.expect("beat"), Beat::CancelRequested);
    assert_eq!(store.heartbeat(&daily, Duration::from_secs(60)).await.expect("beat"), Beat::Held);
    assert!(store.abandon(&stopping, "backfill").await.expect("abandon"));
    assert!(store.complete(&running, 5, None).await.expect("complete"));
    let job = store.job(stopping.day).await.expect("job").expect("exists");
    assert_eq!((job.status, job.cancelled_by.as_deref()), (JobStatus::Cancelled, Some("bob")));
    let record = store.backfill(audit).await.expect("record").expect("exists");
    assert_eq!((record.status.as_str(), record.cancelled_by.as_deref()), ("cancelled", Some("alice@ops")));
    assert_eq!((record.dates.cancelled, record.dates.completed), (9, 1), "{record:?}");
    // The backfill's own process closes its record later: it stays cancelled.
    let (status, by) = store.finish_backfill(audit, "succeeded", Default::default()).await.expect("finish");
    assert_eq!((status.as_str(), by.as_deref()), ("cancelled", Some("alice@ops")));
    // Queued again by a new backfill: claimable again.
    store.seed(range("2024-06-09", "2024-06-10"), Some(audit + 1)).await.expect("seed");
    assert_eq!(store.unfinished(Some(range("2024-06-01", "2024-06-10")), Lanes::All).await.expect("count"), 2);
}
