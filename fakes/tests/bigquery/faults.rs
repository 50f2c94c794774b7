//! Fault injection: planned HTTP errors, failed jobs, lost responses, and hand-mounted wiremock overrides.

use fakes::bigquery::Route;
use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{D, JUNE_1, P, World, candle, load_job};

#[tokio::test]
async fn fail_next_answers_the_planned_errors_then_recovers() {
    let world = World::start().await;
    world.create_candles().await;
    world.fake.fail_next(Route::GetTable, 2, 503, "backendError");
    let path = format!("/projects/{P}/datasets/{D}/tables/candles");
    let first = world.get(&path).await;
    assert_eq!(first.status, 503);
    assert_eq!(first.reason(), "backendError");
    assert_eq!(first.body["error"]["code"], 503);
    assert_eq!(first.body["error"]["status"], "UNAVAILABLE");
    assert_eq!(world.get(&format!("/projects/{P}/datasets/{D}")).await.status, 200, "other routes are unaffected");
    assert_eq!(world.get(&path).await.status, 503);
    assert_eq!(world.get(&path).await.status, 200);
}

#[tokio::test]
async fn a_failed_upload_is_not_carried_out() {
    let world = World::start().await;
    world.create_candles().await;
    world.fake.fail_next(Route::InsertJob, 1, 429, "rateLimitExceeded");
    let job = load_job("j", "candles", "WRITE_APPEND");
    let refused = world.load(&job, &[candle("A", JUNE_1, 0, 1.0)]).await;
    assert_eq!((refused.status, refused.reason()), (429, "rateLimitExceeded"));
    assert!(world.fake.jobs().is_empty());
    let retried = world.load(&job, &[candle("A", JUNE_1, 0, 1.0)]).await;
    assert_eq!(retried.status, 200, "the same job id is free because nothing happened");
    assert_eq!(world.rows("candles").len(), 1);
}

#[tokio::test]
async fn fail_next_job_finishes_the_next_load_with_an_error_result_and_loads_nothing() {
    let world = World::start().await;
    world.create_candles().await;
    world.fake.fail_next_job("backendError");
    let failed = world.load(&load_job("a", "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    assert_eq!(failed.status, 200);
    assert_eq!(failed.body["status"]["state"], "DONE");
    assert_eq!(failed.body["status"]["errorResult"]["reason"], "backendError");
    assert!(failed.body["status"]["errorResult"]["message"].is_string());
    assert!(world.rows("candles").is_empty());
    let polled = world.get(&format!("/projects/{P}/jobs/a")).await;
    assert_eq!(polled.body["status"]["errorResult"]["reason"], "backendError");

    let next = world.load(&load_job("b", "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    assert_eq!(next.body["status"], json!({"state": "DONE"}), "only one job fails");
    assert_eq!(
        world.fake.jobs().iter().map(|job| job.error_reason.clone()).collect::<Vec<_>>(),
        [Some("backendError".into()), None]
    );
}

#[tokio::test]
async fn a_lost_response_keeps_the_job_and_a_retry_with_the_same_id_gets_409() {
    let world = World::start().await;
    world.create_candles().await;
    world.fake.fail_next_after_commit(Route::InsertJob, 1, 503, "backendError");
    let job = load_job("candles_20240601_0", "candles$20240601", "WRITE_TRUNCATE");
    let rows = [candle("A", JUNE_1, 0, 1.0)];
    assert_eq!(world.load(&job, &rows).await.status, 503);
    assert_eq!(world.rows("candles").len(), 1, "the load happened even though the client saw an error");
    let retried = world.load(&job, &rows).await;
    assert_eq!((retried.status, retried.reason()), (409, "duplicate"));
    let polled = world.get(&format!("/projects/{P}/jobs/candles_20240601_0")).await;
    assert_eq!(polled.body["status"], json!({"state": "DONE"}));
}

#[tokio::test]
async fn a_higher_priority_wiremock_mock_overrides_the_fake() {
    let world = World::start().await;
    world.create_candles().await;
    Mock::given(method("GET"))
        .and(path_regex("/tables/candles$"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(world.fake.server())
        .await;
    let path = format!("/projects/{P}/datasets/{D}/tables/candles");
    assert_eq!(world.get(&path).await.status, 502);
    assert_eq!(world.get(&path).await.status, 200);
}
