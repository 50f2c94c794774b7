//! jobs.get polling, unknown jobs and locations, and the SQL refusal.

use serde_json::json;

use crate::support::{D, JUNE_1, P, World, candle, load_job};

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
async fn query_jobs_run_report_statistics_and_fail_like_bigquery() {
    let world = World::start().await;
    world.create_candles().await;
    world
        .load(&load_job("seed", "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0), candle("B", JUNE_1, 1, 2.0)])
        .await;

    // REST defaults to legacy SQL, which the fake refuses; every official client sends useLegacySql: false.
    let legacy = world.post(&format!("/projects/{P}/queries"), &json!({"query": "SELECT 1"})).await;
    assert_eq!((legacy.status, legacy.reason()), (400, "invalidQuery"));
    assert!(legacy.body["error"]["message"].as_str().unwrap_or_default().contains("useLegacySql"));

    // jobs.insert runs the statement and answers a DONE QUERY job.
    let sql = format!("SELECT COUNT(*) AS n FROM `{P}.{D}.candles`");
    let inserted = world
        .post(
            &format!("/projects/{P}/jobs"),
            &json!({"jobReference": {"jobId": "q1"}, "configuration": {"query": {"query": sql, "useLegacySql": false}}}),
        )
        .await;
    assert_eq!(inserted.status, 200, "{:?}", inserted.body);
    assert_eq!(inserted.body["status"]["state"], "DONE");
    assert_eq!(inserted.body["configuration"]["jobType"], "QUERY");
    assert_eq!(inserted.body["statistics"]["query"]["statementType"], "SELECT");
    let results = world.get(&format!("/projects/{P}/queries/q1?location=US")).await;
    assert_eq!(results.body["kind"], "bigquery#getQueryResultsResponse");
    assert_eq!(results.body["totalRows"], "1");
    assert_eq!(results.body["rows"], json!([{"f": [{"v": "2"}]}]));
    assert_eq!(results.body["schema"]["fields"][0]["type"], "INTEGER");
    // maxResults=0 asks for the totals only: a response with rows would be taken for the first page.
    let totals = world.get(&format!("/projects/{P}/queries/q1?maxResults=0")).await;
    assert!(totals.body.get("rows").is_none() && totals.body["totalRows"] == "1", "{:?}", totals.body);

    // A statement that cannot run: the job is DONE with errorResult, and its results answer the error.
    let failing = world
        .post(
            &format!("/projects/{P}/jobs"),
            &json!({"jobReference": {"jobId": "q2"}, "configuration": {"query": {"query": "SELECT nope", "useLegacySql": false}}}),
        )
        .await;
    assert_eq!(failing.body["status"]["errorResult"]["reason"], "invalidQuery");
    assert_eq!(failing.body["status"]["errorResult"]["message"], "Unrecognized name: nope at [1:8]");
    let failed = world.get(&format!("/projects/{P}/queries/q2")).await;
    assert_eq!((failed.status, failed.reason()), (400, "invalidQuery"));

    let gcs_load = world
        .post(&format!("/projects/{P}/jobs"), &json!({"configuration": {"load": {"sourceUris": ["gs://b/f.json"]}}}))
        .await;
    assert_eq!((gcs_load.status, gcs_load.reason()), (400, "invalid"));
}

#[tokio::test]
async fn a_running_query_reports_job_complete_false_until_its_polls_are_spent() {
    let world = World::start().await;
    world.create_candles().await;
    world.fake.set_running_polls(1);
    let body = json!({"query": "SELECT 1 AS one", "useLegacySql": false, "formatOptions": {"useInt64Timestamp": true}});
    let first = world.post(&format!("/projects/{P}/queries"), &body).await;
    assert_eq!(first.body["jobComplete"], false);
    assert!(first.body.get("rows").is_none() && first.body.get("totalRows").is_none(), "{:?}", first.body);
    let job_id = first.body["jobReference"]["jobId"].as_str().unwrap_or_default().to_owned();
    // One RUNNING poll, as jobs.get counts them; then the rows.
    let polled = world.get(&format!("/projects/{P}/queries/{job_id}")).await;
    assert_eq!(polled.body["jobComplete"], false);
    let done = world.get(&format!("/projects/{P}/queries/{job_id}")).await;
    assert_eq!(
        (done.body["jobComplete"].clone(), done.body["rows"].clone()),
        (json!(true), json!([{"f": [{"v": "1"}]}]))
    );
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

#[tokio::test]
async fn a_retried_jobs_query_with_the_same_request_id_does_not_run_its_dml_twice() {
    let world = World::start().await;
    world.create_candles().await;
    world.load(&load_job("seed", "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    let insert = format!(
        "INSERT INTO {D}.candles (exchange, symbol, open_time, close) VALUES ('x', 'B', TIMESTAMP '2024-06-01', 2.0)"
    );
    let body = json!({"query": insert, "useLegacySql": false, "requestId": "retry-me"});
    let first = world.post(&format!("/projects/{P}/queries"), &body).await;
    let again = world.post(&format!("/projects/{P}/queries"), &body).await;
    assert_eq!(first.body["numDmlAffectedRows"], "1");
    assert_eq!(again.body["jobReference"], first.body["jobReference"], "the same job answers");
    assert_eq!(world.fake.rows(P, D, "candles").len(), 2, "the INSERT ran once");
    let fresh = world.post(&format!("/projects/{P}/queries"), &json!({"query": insert, "useLegacySql": false})).await;
    assert_ne!(fresh.body["jobReference"], first.body["jobReference"]);
    assert_eq!(world.fake.rows(P, D, "candles").len(), 3, "without a requestId it is a new statement");
}

/// A query job with `destinationTable`, as `QueryJobConfig(destination=...)` sends it.
fn query_into(job_id: &str, sql: &str, table: &str, write: Option<&str>) -> serde_json::Value {
    let mut query = json!({
        "query": sql, "useLegacySql": false,
        "destinationTable": {"projectId": P, "datasetId": D, "tableId": table},
    });
    if let Some(write) = write {
        query["writeDisposition"] = json!(write);
    }
    json!({"jobReference": {"jobId": job_id}, "configuration": {"query": query}})
}

#[tokio::test]
async fn query_results_land_in_a_destination_table_by_its_write_disposition() {
    let world = World::start().await;
    world.create_candles().await;
    let rows = [candle("A", JUNE_1, 0, 1.0), candle("B", JUNE_1, 1, 2.0)];
    world.load(&load_job("seed", "candles", "WRITE_APPEND"), &rows).await;
    let sql = format!("SELECT symbol, close FROM {D}.candles");
    let jobs = format!("/projects/{P}/jobs");

    let created = world.post(&jobs, &query_into("d1", &sql, "summary", None)).await;
    assert_eq!(created.body["status"]["state"], "DONE", "{:?}", created.body);
    assert!(created.body["status"].get("errorResult").is_none(), "{:?}", created.body);
    assert_eq!(world.fake.rows(P, D, "summary").len(), 2);
    let table = world.get(&format!("/projects/{P}/datasets/{D}/tables/summary")).await;
    assert_eq!(table.body["schema"]["fields"][1]["type"], "FLOAT");

    // WRITE_EMPTY, BigQuery's default for query results, refuses a table that has rows.
    let refused = world.post(&jobs, &query_into("d2", &sql, "summary", None)).await;
    assert_eq!(refused.body["status"]["errorResult"]["reason"], "duplicate");
    let appended = world.post(&jobs, &query_into("d3", &sql, "summary", Some("WRITE_APPEND"))).await;
    assert!(appended.body["status"].get("errorResult").is_none(), "{:?}", appended.body);
    assert_eq!(world.fake.rows(P, D, "summary").len(), 4);
    let replaced = world.post(&jobs, &query_into("d4", &sql, "summary", Some("WRITE_TRUNCATE"))).await;
    assert!(replaced.body["status"].get("errorResult").is_none(), "{:?}", replaced.body);
    assert_eq!(world.fake.rows(P, D, "summary").len(), 2);

    // DML has no destination table.
    let dml = format!("DELETE FROM {D}.candles WHERE TRUE");
    let refused = world.post(&jobs, &query_into("d5", &dml, "summary", None)).await;
    assert_eq!(refused.body["status"]["errorResult"]["reason"], "invalidQuery");
    assert_eq!(world.fake.rows(P, D, "candles").len(), 2, "nothing was deleted");

    // Results page by startIndex too.
    let second = world.get(&format!("/projects/{P}/queries/d1?startIndex=1&maxResults=5")).await;
    assert_eq!(second.body["rows"].as_array().map(Vec::len), Some(1));
    assert!(second.body.get("pageToken").is_none());
}
