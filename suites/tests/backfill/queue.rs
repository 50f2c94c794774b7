use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use market::{DateRange, TradingDay};
use pipeline::store::{ClaimOptions, JobStatus, MAX_RETRIES, Order, Store};

use crate::world;

fn range(a: &str, b: &str) -> DateRange {
    DateRange::parse(a, b).expect("valid")
}

fn options(order: Order, lease: Duration) -> ClaimOptions {
    ClaimOptions { order, range: None, lease, retry_backoff: Duration::ZERO }
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
    assert!(store.heartbeat(&lease, Duration::from_secs(120)).await.expect("beat"));
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
    assert_eq!(store.unfinished(None).await.expect("count"), 1, "still to be done");
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
    assert!(!store.heartbeat(&dead, Duration::from_secs(60)).await.expect("beat"), "the dead worker lost its lease");
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
    let held = store.held(None, "rescuer").await.expect("held");
    assert_eq!(held.iter().map(|h| h.worker_id.as_str()).collect::<Vec<_>>(), ["alive", "dying"]);
    // The dying worker's session ends (as when its process is killed): its date is claimable at once, 600 s
    // lease or not; the live worker's is not.
    drop(dying);
    crate::eventually("the dead worker's session to end", Duration::from_secs(10), || async {
        store.held(None, "rescuer").await.expect("held").len() == 1
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
