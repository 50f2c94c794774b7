use fakes::bigquery::Route;
use harness::world::{DATASET, PROJECT};
use pipeline::bigquery::schema::CANDLES_1M;
use pipeline::store::RunStatus;
use serde_json::Value;

use crate::{day, small_world};

fn candle_jobs(world: &harness::World) -> Vec<String> {
    let mut ids: Vec<String> =
        world.bigquery.jobs().into_iter().map(|j| j.job_id).filter(|id| id.starts_with("candles_1m_")).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn tables_are_created_day_partitioned_and_clustered() {
    let world = small_world(31).await;
    let pipeline = world.pipeline().await.expect("pipeline");
    assert_eq!(pipeline.run_day(day(), "test").await.expect("run").status, RunStatus::Succeeded);
    let url = format!("{}/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables/candles_1m", world.bigquery.uri());
    let table: Value = reqwest::get(url).await.expect("get").json().await.expect("json");
    assert_eq!(table["timePartitioning"]["type"], "DAY");
    assert_eq!(table["timePartitioning"]["field"], "open_time");
    assert_eq!(table["clustering"]["fields"], serde_json::json!(["exchange", "symbol"]));
    let names: Vec<&str> =
        table["schema"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["name"].as_str()).collect();
    let expected: Vec<&str> = CANDLES_1M.columns.iter().map(|c| c.name).collect();
    assert_eq!(names, expected);
    let partitions = world.bigquery.partitions(PROJECT, DATASET, "candles_1m");
    assert_eq!(partitions.keys().cloned().collect::<Vec<_>>(), [day().compact()]);
}

#[tokio::test]
async fn job_ids_are_deterministic_per_run_table_date_and_attempt() {
    let world = small_world(32).await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("run");
    assert_eq!(candle_jobs(&world), [format!("candles_1m_{}_{}_1", day().compact(), outcome.run_key)]);
}

#[tokio::test]
async fn a_job_failed_by_a_backend_error_runs_again_under_a_new_id() {
    let world = small_world(33).await;
    world.bigquery.fail_next_job("backendError");
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("run");
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    let key = &outcome.run_key;
    assert_eq!(
        candle_jobs(&world),
        [format!("candles_1m_{}_{key}_1", day().compact()), format!("candles_1m_{}_{key}_2", day().compact())]
    );
    let truth = world.generator.day_truth(day());
    assert_eq!(harness::run::landed_candles(&world.bigquery, day()).expect("rows").len(), truth.candles().count());
}

#[tokio::test]
async fn an_invalid_job_fails_the_date_without_retrying() {
    let world = small_world(34).await;
    world.bigquery.fail_next_job("invalid");
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("run");
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(outcome.error.as_deref().unwrap_or_default().contains("invalid"), "{:?}", outcome.error);
    assert_eq!(candle_jobs(&world).len(), 1, "invalid is not blindly retried");
    assert!(world.bigquery.partition_rows(PROJECT, DATASET, "candles_1m", &day().compact()).is_empty());
}

#[tokio::test]
async fn transient_upload_errors_retry_the_same_job_id() {
    let world = small_world(35).await;
    world.bigquery.fail_next(Route::InsertJob, 2, 503, "backendError");
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("run");
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    assert_eq!(candle_jobs(&world).len(), 1, "the same job id was retried, no second job");
}

#[tokio::test]
async fn a_lost_insert_response_is_recovered_by_polling_the_existing_job() {
    let world = small_world(36).await;
    // BigQuery accepts the job, then the response is lost: the retry gets 409 duplicate.
    world.bigquery.fail_next_after_commit(Route::InsertJob, 1, 503, "backendError");
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("run");
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    assert_eq!(candle_jobs(&world).len(), 1);
    let truth = world.generator.day_truth(day());
    assert_eq!(
        harness::run::landed_candles(&world.bigquery, day()).expect("rows").len(),
        truth.candles().count(),
        "loaded once, not twice"
    );
    let conflicts = world.bigquery.requests().iter().filter(|r| r.path.contains("/upload/") && r.status == 409).count();
    assert_eq!(conflicts, 1);
}

#[tokio::test]
async fn quota_exceeded_is_not_retried() {
    let world = small_world(37).await;
    world.bigquery.fail_next(Route::InsertJob, 1, 403, "quotaExceeded");
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("run");
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(outcome.error.as_deref().unwrap_or_default().contains("quotaExceeded"), "{:?}", outcome.error);
    let uploads = world.bigquery.requests().iter().filter(|r| r.path.contains("/upload/")).count();
    assert_eq!(uploads, 1);
}

#[tokio::test]
async fn running_jobs_are_polled_until_done() {
    let world = small_world(38).await;
    world.bigquery.set_running_polls(3);
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("run");
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    let polls = world.bigquery.requests().iter().filter(|r| r.route == Some(Route::GetJob)).count();
    assert!(polls >= 2 * 4, "two jobs, each polled while RUNNING three times and once DONE: {polls}");
}

#[tokio::test]
async fn metadata_calls_retry_backend_errors_but_not_invalid_requests() {
    let world = small_world(39).await;
    world.bigquery.fail_next(Route::GetDataset, 2, 500, "backendError");
    let pipeline = world.pipeline().await.expect("pipeline");
    pipeline.bigquery().ensure_dataset().await.expect("retried to success");
    assert!(world.bigquery.dataset_exists(PROJECT, DATASET));

    world.bigquery.fail_next(Route::CreateTable, 5, 400, "invalid");
    let err = pipeline.bigquery().ensure_table(&CANDLES_1M).await.expect_err("invalid is final");
    assert_eq!(err.reason(), Some("invalid"), "{err}");
    let creates = world.bigquery.requests().iter().filter(|r| r.route == Some(Route::CreateTable)).count();
    assert_eq!(creates, 1, "not retried");
}

#[tokio::test]
async fn an_existing_table_with_another_schema_is_refused() {
    let world = small_world(40).await;
    let pipeline = world.pipeline().await.expect("pipeline");
    pipeline.bigquery().ensure_dataset().await.expect("dataset");
    let body = serde_json::json!({
        "tableReference": {"projectId": PROJECT, "datasetId": DATASET, "tableId": "candles_1m"},
        "schema": {"fields": [{"name": "exchange", "type": "STRING"}, {"name": "open_time", "type": "TIMESTAMP"}]},
    });
    let url = format!("{}/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables", world.bigquery.uri());
    assert!(reqwest::Client::new().post(url).json(&body).send().await.expect("create").status().is_success());
    let err = pipeline.bigquery().ensure_table(&CANDLES_1M).await.expect_err("wrong schema");
    assert!(err.to_string().contains("column symbol is missing"), "{err}");
}
