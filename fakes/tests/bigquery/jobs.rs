//! jobs.get polling, unknown jobs and locations, and the SQL refusal.

use serde_json::json;

use crate::support::{JUNE_1, P, World, candle, load_job};

#[tokio::test]
async fn jobs_report_running_for_the_configured_polls_then_done() {
    let world = World::start().await;
    world.create_candles().await;
    world.fake.set_running_polls(2);
    let inserted =
        world.load(&load_job("slow", "candles$20240601", "WRITE_TRUNCATE"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    assert_eq!(inserted.status, 200);
    assert_eq!(inserted.body["status"], json!({"state": "RUNNING"}));
    assert!(inserted.body["statistics"].get("endTime").is_none());
    assert!(inserted.body["statistics"].get("load").is_none());

    let mut states = Vec::new();
    for _ in 0..4 {
        let polled = world.get(&format!("/projects/{P}/jobs/slow?location=US")).await;
        assert_eq!(polled.status, 200);
        states.push(polled.body["status"]["state"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(states, ["RUNNING", "RUNNING", "DONE", "DONE"]);
    let done = world.get(&format!("/projects/{P}/jobs/slow")).await.body;
    assert_eq!(done["statistics"]["load"]["outputRows"], "1");
    assert!(done["statistics"]["endTime"].is_string());
    assert_eq!(world.fake.jobs()[0].job_id, "slow");
    assert!(world.fake.jobs()[0].done);
}

#[tokio::test]
async fn an_unknown_job_or_a_wrong_location_is_404_not_found() {
    let world = World::start().await;
    world.create_candles().await;
    world.load(&load_job("known", "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    let unknown = world.get(&format!("/projects/{P}/jobs/nope?location=US")).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.reason(), "notFound");
    assert_eq!(unknown.body["error"]["message"], "Not found: Job p:US.nope");
    let elsewhere = world.get(&format!("/projects/{P}/jobs/known?location=EU")).await;
    assert_eq!(elsewhere.status, 404);
    assert_eq!(world.get(&format!("/projects/{P}/jobs/known?location=us")).await.status, 200);
}

#[tokio::test]
async fn sql_is_refused_with_invalid_query_naming_what_is_supported() {
    let world = World::start().await;
    let query =
        world.post(&format!("/projects/{P}/queries"), &json!({"query": "SELECT 1", "useLegacySql": false})).await;
    assert_eq!(query.status, 400);
    assert_eq!(query.reason(), "invalidQuery");
    let message = query.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("tabledata.list") && message.contains("load jobs"), "{message}");

    let query_job = world
        .post(
            &format!("/projects/{P}/jobs"),
            &json!({"jobReference": {"jobId": "q1"}, "configuration": {"query": {"query": "SELECT 1"}}}),
        )
        .await;
    assert_eq!((query_job.status, query_job.reason()), (400, "invalidQuery"));
    let gcs_load = world
        .post(&format!("/projects/{P}/jobs"), &json!({"configuration": {"load": {"sourceUris": ["gs://b/f.json"]}}}))
        .await;
    assert_eq!((gcs_load.status, gcs_load.reason()), (400, "invalid"));
}

#[tokio::test]
async fn listing_jobs_shows_the_newest_first() {
    let world = World::start().await;
    world.create_candles().await;
    for job_id in ["first", "second"] {
        world.load(&load_job(job_id, "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    }
    let listed = world.get(&format!("/projects/{P}/jobs")).await;
    assert_eq!(listed.body["kind"], "bigquery#jobList");
    let ids: Vec<&str> = listed.body["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|job| job["jobReference"]["jobId"].as_str())
        .collect();
    assert_eq!(ids, ["second", "first"]);
}
