//! Google's `@google-cloud/bigquery` Node client against the fake BigQuery, pointed at it with
//! `BIGQUERY_EMULATOR_HOST` and google-auth-library's `PassThroughClient`: a dataset, a day-partitioned table, NDJSON
//! and CSV loads with WRITE_TRUNCATE into partition decorators (multipart uploads), paged reads, table metadata,
//! and a query. Given the emulator variable, the client sends the API paths without `/bigquery/v2` and the uploads
//! to `{host}/upload/bigquery/v2/...`; these tests pin both forms.

use std::collections::BTreeMap;

use fakes::FakeBigQuery;
use fakes::bigquery::{RecordedRequest, Route};
use serde_json::{Map, Value, json};

use crate::candles::{candle, loads, sorted, stored, two_days_and_a_rerun};
use crate::node;

const SCRIPT: &str = "bigquery_client.mjs";
const PROJECT: &str = "conformance-project";
const DATASET: &str = "market_data";
const TABLE: &str = "candles";
/// Where the client sends load jobs' uploads: the emulator host, then Google's upload root.
const UPLOAD_PATH: &str = "/upload/bigquery/v2/projects/conformance-project/jobs";

fn plan(scenario: &str, details: Value) -> Value {
    let mut plan = json!({"scenario": scenario, "project": PROJECT, "dataset": DATASET, "table": TABLE});
    let Value::Object(extra) = details else { panic!("scenario details are an object") };
    plan.as_object_mut().expect("the plan is an object").extend(extra);
    plan
}

async fn run(fake: &FakeBigQuery, scenario: &str, details: Value) -> Value {
    node::run(SCRIPT, &fake.uri(), &plan(scenario, details)).await
}

fn of_route(requests: &[RecordedRequest], route: Route) -> Vec<&RecordedRequest> {
    requests.iter().filter(|request| request.route == Some(route)).collect()
}

/// What every run of the Node client sends, whatever the scenario: only paths the fake serves, the API paths
/// without `/bigquery/v2`, uploads as multipart to the upload root, and no credentials. API calls carry the
/// client's user agent (uploads do not: they go out through teeny-request's fetch as `node-fetch`).
#[track_caller]
fn check_request_forms(requests: &[RecordedRequest]) {
    let unserved: Vec<&RecordedRequest> = requests.iter().filter(|r| r.route.is_none()).collect();
    assert!(unserved.is_empty(), "paths the fake does not serve: {unserved:#?}");
    for request in requests {
        let upload = request.path.starts_with("/upload/");
        assert!(
            upload || (request.path.starts_with("/projects/") && !request.path.contains("/bigquery/v2")),
            "an API path without the /bigquery/v2 prefix: {request:?}"
        );
        if upload {
            assert_eq!(
                (request.method.as_str(), request.path.as_str(), request.query_param("uploadType")),
                ("POST", UPLOAD_PATH, Some("multipart")),
                "{request:?}"
            );
            let content_type = request.header("content-type").unwrap_or_default();
            assert!(content_type.starts_with("multipart/related"), "{request:?}");
        }
        assert!(!request.authorized, "PassThroughClient sends no Authorization: {request:?}");
        let agent = request.header("user-agent").unwrap_or_default();
        assert!(upload || agent.starts_with("gcloud-node-bigquery/"), "the client's user agent: {request:?}");
    }
}

#[tokio::test]
async fn ndjson_loads_into_partitions_with_write_truncate_read_back_through_paged_get_rows_and_get_metadata() {
    let fake = FakeBigQuery::start().await;
    // The first tables.get fails like a busy backend; the client must retry it.
    fake.fail_next(Route::GetTable, 1, 503, "backendError");
    let first_day: Vec<Value> =
        (0..3).map(|i| candle("BTCUSDT", "2024-06-03", i, 67_000.5 + f64::from(i), i.into())).collect();
    let second_day: Vec<Value> = (0..4).map(|i| candle("ETHUSDT", "2024-06-04", i, 3_500.25, i.into())).collect();
    let rerun = vec![candle("BTCUSDT", "2024-06-03", 9, 67_100.0, 42), candle("SOLUSDT", "2024-06-03", 1439, 150.5, 7)];
    let details = json!({
        "first_day": first_day, "second_day": second_day, "rerun_first_day": rerun,
        "first_partition": "20240603", "second_partition": "20240604", "page_size": 4,
    });
    let result = run(&fake, "round_trip", details).await;
    assert_eq!((&result["num_rows"], &result["pages"]), (&json!(6), &json!(2)), "{result}");
    assert_eq!(result["errors"]["duplicate"]["status"], 409, "{result}");
    assert_eq!(result["errors"]["missing"]["status"], 404, "{result}");

    // The rerun replaced its partition and left the other alone.
    assert_eq!(
        fake.partitions(PROJECT, DATASET, TABLE),
        BTreeMap::from([("20240603".into(), 2), ("20240604".into(), 4)])
    );
    assert_eq!(fake.partition_rows(PROJECT, DATASET, TABLE, "20240603"), rerun.iter().map(stored).collect::<Vec<_>>());
    assert_eq!(
        sorted(fake.partition_rows(PROJECT, DATASET, TABLE, "20240604")),
        sorted(second_day.iter().map(stored).collect())
    );
    let schema = fake.table_schema(PROJECT, DATASET, TABLE).expect("the table exists");
    let types: Vec<(&str, &str)> = schema["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|field| (field["name"].as_str().unwrap_or_default(), field["type"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        types,
        [
            ("exchange", "STRING"),
            ("symbol", "STRING"),
            ("open_time", "TIMESTAMP"),
            ("close", "FLOAT"),
            ("trade_count", "INTEGER")
        ]
    );

    assert_eq!(loads(&fake), two_days_and_a_rerun(PROJECT, DATASET, TABLE));
    let jobs = fake.jobs();
    let job_ids: Vec<&str> = jobs.iter().map(|job| job.job_id.as_str()).collect();
    let seen: Vec<&str> =
        ["first", "second", "rerun"].iter().map(|load| result["jobs"][load].as_str().unwrap_or_default()).collect();
    assert_eq!(seen, job_ids, "the client's job ids are the fake's");

    let requests = fake.requests();
    check_request_forms(&requests);
    let uploads = of_route(&requests, Route::InsertJob);
    let uploaded: Vec<(Option<&str>, u16)> = uploads.iter().map(|r| (r.job_id.as_deref(), r.status)).collect();
    assert_eq!(uploaded, job_ids.iter().map(|id| (Some(*id), 200)).collect::<Vec<_>>(), "one upload per load");
    let datasets: Vec<(&str, u16)> = requests
        .iter()
        .filter(|r| matches!(r.route, Some(Route::CreateDataset | Route::GetDataset)))
        .map(|r| (r.method.as_str(), r.status))
        .collect();
    assert_eq!(datasets, [("POST", 200), ("POST", 409), ("GET", 200)], "the duplicate, then get(autoCreate)");
    let listed: Vec<Option<&str>> =
        of_route(&requests, Route::ListJobs).iter().map(|r| r.query_param("maxResults")).collect();
    assert_eq!(listed, [Some("2")], "getJobs({{maxResults: 2}}) asked for two");
    let gets = of_route(&requests, Route::GetTable);
    assert_eq!((gets[0].status, gets[1].status), (503, 200), "the 503 was retried: {gets:#?}");
    assert_eq!(gets[0].path, gets[1].path);
    assert_eq!(gets[0].path, format!("/projects/{PROJECT}/datasets/{DATASET}/tables/{TABLE}"));

    let reads = of_route(&requests, Route::ListTableData);
    assert!(
        reads.iter().all(|r| r.query_param("formatOptions.useInt64Timestamp") == Some("true") && r.status == 200),
        "{reads:#?}"
    );
    let paged: Vec<(Option<&str>, bool)> = reads
        .iter()
        .filter(|r| r.query_param("maxResults").is_some())
        .map(|r| (r.query_param("maxResults"), r.query_param("pageToken").is_some()))
        .collect();
    assert_eq!(paged, [(Some("4"), false), (Some("4"), true)], "two pages of four, the second by pageToken");
    let decorated = |r: &&RecordedRequest| r.path.replace("%24", "$").ends_with("/tables/candles$20240603/data");
    assert!(reads.iter().any(decorated), "the decorator reached tabledata.list: {reads:#?}");
}

#[tokio::test]
async fn a_csv_load_with_a_header_row_streams_into_a_partition_through_create_write_stream() {
    let fake = FakeBigQuery::start().await;
    let rows: Vec<Value> = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
        .into_iter()
        .zip(0..)
        .map(|(symbol, i)| candle(symbol, "2024-06-03", i * 7, 100.25 * f64::from(i + 1), (i * 3).into()))
        .collect();
    let details = json!({"rows": rows, "partition": "20240603", "page_size": 2});
    let result = run(&fake, "csv_load", details).await;
    assert_eq!((&result["num_rows"], &result["pages"]), (&json!(3), &json!(2)), "{result}");

    let expected: Vec<Map<String, Value>> = rows.iter().map(stored).collect();
    assert_eq!(sorted(fake.partition_rows(PROJECT, DATASET, TABLE, "20240603")), sorted(expected));
    assert_eq!(fake.partitions(PROJECT, DATASET, TABLE).len(), 1, "one partition, the header not a row");
    let jobs = fake.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    let destination = format!("{PROJECT}:{DATASET}.{TABLE}$20240603");
    assert_eq!(
        (job.job_type.as_str(), job.destination.as_deref(), job.write_disposition.as_deref(), job.output_rows),
        ("LOAD", Some(destination.as_str()), Some("WRITE_TRUNCATE"), 3)
    );
    assert_eq!(result["job_id"], job.job_id.as_str());

    let requests = fake.requests();
    check_request_forms(&requests);
    let uploads = of_route(&requests, Route::InsertJob);
    assert_eq!(uploads.len(), 1, "{uploads:#?}");
    assert_eq!((uploads[0].job_id.as_deref(), uploads[0].status), (Some(job.job_id.as_str()), 200));
    let polls = of_route(&requests, Route::GetJob);
    assert!(polls.iter().all(|r| r.job_id.as_deref() == Some(job.job_id.as_str())), "{polls:#?}");
}

#[tokio::test]
async fn count_parameter_and_dml_queries_answer_as_bigquery_does() {
    let fake = FakeBigQuery::start().await;
    let rows: Vec<Value> = (0..5).map(|i| candle("BTCUSDT", "2024-06-03", i, 1.5, i.into())).collect();
    let result = run(&fake, "query", json!({"rows": rows, "partition": "20240603", "least": 2})).await;
    assert_eq!((result["n"].clone(), result["deleted"].clone()), (json!(5), json!(2)), "{result}");

    // The DELETE removed the two candles with fewer than two trades.
    assert_eq!(fake.rows(PROJECT, DATASET, TABLE).len(), 3);
    let requests = fake.requests();
    check_request_forms(&requests);
    let queries = of_route(&requests, Route::Query);
    let statuses: Vec<u16> = queries.iter().map(|r| r.status).collect();
    assert_eq!(statuses.last(), Some(&400), "the misspelt column is the last call: {queries:#?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|status| *status == 200), "{queries:#?}");
    assert_eq!(queries[0].path, format!("/projects/{PROJECT}/queries"), "bigquery.query sends jobs.query");
}
