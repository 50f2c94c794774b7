//! Google's `google-cloud-bigquery` Python client against the fake BigQuery, pointed at it with
//! `AnonymousCredentials` and `client_options={"api_endpoint": ...}`: datasets, partitioned tables, WRITE_TRUNCATE
//! loads into partitions (multipart and resumable), reads, streaming inserts, job polling, and the exceptions
//! real BigQuery raises.

use std::collections::BTreeMap;

use fakes::FakeBigQuery;
use fakes::bigquery::{RecordedRequest, Route};
use serde_json::{Map, Value, json};

use crate::candles::{candle, loads, sorted, stored, two_days_and_a_rerun};
use crate::python;

const SCRIPT: &str = "bigquery_client.py";
const PROJECT: &str = "conformance-project";
const DATASET: &str = "market_data";
const TABLE: &str = "candles";

fn plan(fake: &FakeBigQuery, scenario: &str, details: Value) -> Value {
    let mut plan = json!({
        "scenario": scenario,
        "endpoint": fake.uri(),
        "project": PROJECT,
        "dataset": DATASET,
        "table": TABLE,
    });
    let Value::Object(extra) = details else { panic!("scenario details are an object") };
    plan.as_object_mut().expect("the plan is an object").extend(extra);
    plan
}

fn of_route(requests: &[RecordedRequest], route: Route) -> Vec<&RecordedRequest> {
    requests.iter().filter(|request| request.route == Some(route)).collect()
}

#[tokio::test]
async fn partition_loads_with_write_truncate_read_back_through_list_rows_and_get_table() {
    let fake = FakeBigQuery::start().await;
    // The first tables.get fails like a busy backend; the client must retry it.
    fake.fail_next(Route::GetTable, 1, 503, "backendError");
    let first_day: Vec<Value> =
        (0..3).map(|i| candle("BTCUSDT", "2024-06-03", i, 67_000.5 + f64::from(i), i.into())).collect();
    let second_day: Vec<Value> = (0..4).map(|i| candle("ETHUSDT", "2024-06-04", i, 3_500.25, i.into())).collect();
    let rerun = vec![candle("BTCUSDT", "2024-06-03", 9, 67_100.0, 42), candle("SOLUSDT", "2024-06-03", 1439, 150.5, 7)];
    let details = json!({
        "first_day": first_day, "second_day": second_day, "rerun_first_day": rerun,
        "first_partition": "20240603", "second_partition": "20240604", "page_size": 2,
    });
    let result = python::run(SCRIPT, &plan(&fake, "round_trip", details)).await;
    assert_eq!(result["num_rows"], 6, "{result}");

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
    assert_eq!(loads(&fake), two_days_and_a_rerun(PROJECT, DATASET, TABLE));
    let jobs = fake.jobs();
    assert_eq!(result["jobs"]["rerun"], jobs[2].job_id.as_str(), "get_job found the job the client created");

    let requests = fake.requests();
    let listed: Vec<Option<String>> =
        of_route(&requests, Route::ListJobs).iter().map(|r| r.query_param("maxResults").map(str::to_owned)).collect();
    assert_eq!(listed, [Some("2".to_owned())], "list_jobs(max_results=2) asked for two");
    assert!(requests.iter().all(|request| !request.authorized), "AnonymousCredentials send no Authorization");
    let datasets: Vec<(&str, u16)> = requests
        .iter()
        .filter(|r| matches!(r.route, Some(Route::CreateDataset | Route::GetDataset)))
        .map(|r| (r.method.as_str(), r.status))
        .collect();
    assert_eq!(datasets, [("POST", 200), ("POST", 409), ("GET", 200)], "exists_ok turns the 409 into a get");
    let uploads = of_route(&requests, Route::InsertJob);
    assert_eq!(uploads.len(), 3);
    for upload in &uploads {
        assert_eq!(
            (upload.method.as_str(), upload.query_param("uploadType"), upload.status),
            ("POST", Some("multipart"), 200)
        );
        assert!(upload.header("content-type").is_some_and(|ct| ct.starts_with("multipart/related")), "{upload:?}");
    }
    let gets = of_route(&requests, Route::GetTable);
    assert_eq!((gets[0].status, gets[1].status), (503, 200), "the 503 was retried");
    assert_eq!(gets[0].path, gets[1].path);
    let reads = of_route(&requests, Route::ListTableData);
    assert!(
        reads.iter().all(|r| r.query_param("formatOptions.useInt64Timestamp") == Some("True") && r.status == 200),
        "{reads:#?}"
    );
    assert!(reads.iter().any(|r| r.query_param("pageToken").is_some()), "page_size=2 pages with pageToken: {reads:#?}");
    let decorated = |r: &&RecordedRequest| r.path.replace("%24", "$").ends_with("/tables/candles$20240603/data");
    assert!(reads.iter().any(decorated), "the decorator reached tabledata.list: {reads:#?}");
}

#[tokio::test]
async fn streaming_inserts_report_errors_per_row_and_store_only_accepted_rows() {
    let fake = FakeBigQuery::start().await;
    let good: Vec<Value> = (0..3).map(|i| candle("BTCUSDT", "2024-06-03", i, 1.5, i.into())).collect();
    let extra = vec![candle("ETHUSDT", "2024-06-03", 1, 2.5, 1), candle("ETHUSDT", "2024-06-03", 2, 3.5, 2)];
    let mut bad_row = candle("SOLUSDT", "2024-06-03", 5, 4.5, 3);
    bad_row["bogus"] = json!(1);
    let details = json!({"good": good, "row_ids": ["r0", "r1", "r2"], "extra": extra, "bad_row": bad_row});
    let result = python::run(SCRIPT, &plan(&fake, "streaming", details)).await;
    assert_eq!(result["stored"], 6, "{result}");

    let mut bad_without_unknown = bad_row.clone();
    bad_without_unknown.as_object_mut().expect("an object").remove("bogus");
    let expected: Vec<Map<String, Value>> =
        good.iter().chain(&extra).chain([&bad_without_unknown]).map(stored).collect();
    assert_eq!(fake.rows(PROJECT, DATASET, TABLE), expected, "accepted rows only, once each, in order");

    let requests = fake.requests();
    let inserts = of_route(&requests, Route::InsertAll);
    assert_eq!(inserts.len(), 7, "one insertAll per call: {inserts:#?}");
    assert!(inserts.iter().all(|r| r.status == 200), "row errors are HTTP 200: {inserts:#?}");
}

#[tokio::test]
async fn missing_and_duplicate_resources_raise_not_found_conflict_and_bad_request() {
    let fake = FakeBigQuery::start().await;
    let job_id = "conformance_load_1";
    let details = json!({
        "rows": [candle("BTCUSDT", "2024-06-03", 1, 1.5, 1)],
        "rows_outside_partition": [candle("BTCUSDT", "2024-06-04", 1, 1.5, 1)],
        "partition": "20240603",
        "job_id": job_id,
    });
    let result = python::run(SCRIPT, &plan(&fake, "errors", details)).await;
    let errors = result["errors"].as_object().expect("the errors seen");
    assert_eq!(errors.len(), 13, "{result}");
    assert!(
        errors["rows_outside_partition"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("rather than destination partition 20240603")),
        "{result}"
    );

    assert_eq!(fake.rows(PROJECT, DATASET, TABLE).len(), 1, "only the first load landed");
    let jobs = fake.jobs();
    let outcomes: Vec<(Option<&str>, u64)> =
        jobs.iter().map(|job| (job.error_reason.as_deref(), job.output_rows)).collect();
    assert_eq!(outcomes, [(None, 1), (Some("invalid"), 0), (Some("notFound"), 0)]);
    assert_eq!(jobs[0].job_id, job_id);
    let requests = fake.requests();
    let reused: Vec<(Option<&str>, u16)> =
        of_route(&requests, Route::InsertJob).iter().map(|r| (r.job_id.as_deref(), r.status)).collect();
    assert_eq!(reused[..2], [(Some(job_id), 200), (Some(job_id), 409)], "the reused id was refused, not run again");
    assert!(fake.table_exists(PROJECT, DATASET, TABLE) && fake.dataset_exists(PROJECT, DATASET));
    assert!(
        !fake.table_exists(PROJECT, DATASET, "never_created")
            && !fake.table_exists(PROJECT, DATASET, "bad_partitioning")
    );
}

#[tokio::test]
async fn a_load_of_more_than_five_megabytes_goes_through_a_resumable_upload() {
    let fake = FakeBigQuery::start().await;
    let rows: u64 = 50_000;
    let result = python::run(SCRIPT, &plan(&fake, "resumable", json!({"rows": rows, "partition": "20240603"}))).await;
    let bytes = result["bytes"].as_u64().expect("the file size");

    let requests = fake.requests();
    let uploads: Vec<(&str, Option<&str>, u16)> = of_route(&requests, Route::InsertJob)
        .iter()
        .map(|r| (r.method.as_str(), r.query_param("uploadType"), r.status))
        .collect();
    assert_eq!(uploads, [("POST", Some("resumable"), 200), ("PUT", Some("resumable"), 200)]);
    let start = of_route(&requests, Route::InsertJob)[0];
    assert!(start.header("x-upload-content-type").is_some(), "{start:?}");
    let put = of_route(&requests, Route::InsertJob)[1];
    assert_eq!(put.header("content-range"), Some(format!("bytes 0-{}/{bytes}", bytes - 1).as_str()));
    assert_eq!(put.body_bytes as u64, bytes);
    assert!(put.query_param("upload_id").is_some(), "the PUT went to the session URL: {put:?}");

    let landed = fake.partition_rows(PROJECT, DATASET, TABLE, "20240603");
    assert_eq!(landed.len() as u64, rows);
    // The script's rows: symbol S{i % 500}USDT, minute i % 1440 of the day, close i / 4, trade_count i.
    let last = rows - 1;
    let expected_last = stored(&candle(
        &format!("S{:04}USDT", last % 500),
        "2024-06-03",
        (last % 1440) as u32,
        last as f64 * 0.25,
        last as i64,
    ));
    assert_eq!(landed[landed.len() - 1], expected_last);
    assert_eq!(fake.jobs()[0].output_rows, rows);
}

/// CSV loads as Google's client sends them (`load_table_from_file`, multipart): a header and an explicit schema
/// into a partition, autodetect, another delimiter and null marker, and a bad cell that fails the job naming its
/// row and field.
#[tokio::test]
async fn csv_loads_land_by_schema_or_autodetect_and_a_bad_cell_fails_the_job() {
    let fake = FakeBigQuery::start().await;
    let rows = [candle("BTCUSDT", "2024-06-03", 0, 67000.5, 12), candle("ETHUSDT", "2024-06-03", 1, 3500.25, 3)];
    let result = python::run(SCRIPT, &plan(&fake, "csv_loads", json!({"rows": rows, "partition": "20240603"}))).await;
    assert!(result["details"].as_str().is_some_and(|d| d.contains("Could not parse 'many' as INTEGER")), "{result}");
    let landed = sorted(fake.partition_rows(PROJECT, DATASET, TABLE, "20240603"));
    let mut expected: Vec<Map<String, Value>> = rows.iter().map(stored).collect();
    for row in &mut expected {
        row.insert("exchange".into(), json!("binance-futures"));
    }
    assert_eq!(landed, sorted(expected));
    assert!(fake.rows(PROJECT, DATASET, "bad").is_empty(), "a failed load writes nothing");
}

/// `copy_table` as Google's client calls it: a copy job (jobs.insert with `configuration.copy`), table to table
/// and partition to partition, with the dispositions real BigQuery applies.
#[tokio::test]
async fn copy_jobs_copy_tables_and_partitions_with_their_dispositions() {
    let fake = FakeBigQuery::start().await;
    let rows = [candle("BTCUSDT", "2024-06-03", 0, 67000.5, 12), candle("ETHUSDT", "2024-06-03", 1, 3500.25, 3)];
    let result = python::run(SCRIPT, &plan(&fake, "copies", json!({"rows": rows, "partition": "20240603"}))).await;
    assert_eq!(result["conflict"]["status"], 409, "{result}");
    assert_eq!(
        sorted(fake.partition_rows(PROJECT, DATASET, "copied", "20240603")),
        sorted(rows.iter().map(stored).collect())
    );
    let types: Vec<String> = fake.jobs().iter().map(|job| job.job_type.clone()).collect();
    assert_eq!(types, ["LOAD", "COPY", "COPY", "COPY"], "{:?}", fake.jobs());
    assert_eq!(fake.jobs()[1].output_rows, 2);
}

/// `load_table_from_dataframe` with its defaults: pandas frames sent as Snappy Parquet, into a partition of an
/// existing table and into a table the load creates.
#[tokio::test]
async fn dataframe_loads_send_parquet_and_land_by_column_name() {
    let fake = FakeBigQuery::start().await;
    let rows = [candle("BTCUSDT", "2024-06-03", 0, 67000.5, 12), candle("ETHUSDT", "2024-06-03", 1, 3500.25, 3)];
    let result = python::run(SCRIPT, &plan(&fake, "dataframes", json!({"rows": rows, "partition": "20240603"}))).await;
    assert_eq!(result["rows"], 2, "{result}");
    let landed = sorted(fake.partition_rows(PROJECT, DATASET, TABLE, "20240603"));
    assert_eq!(landed, sorted(rows.iter().map(stored).collect()));
    let uploads: Vec<RecordedRequest> =
        fake.requests().into_iter().filter(|r| r.route == Some(Route::InsertJob)).collect();
    assert!(uploads.iter().all(|upload| upload.query_param("uploadType") == Some("multipart")), "{uploads:#?}");
    // Refused with the frame's schema, loaded as Parquet, loaded as CSV, and the new table.
    assert_eq!(uploads.len(), 4, "{uploads:#?}");
}

#[tokio::test]
async fn running_jobs_are_polled_until_done_and_a_failed_job_raises() {
    let fake = FakeBigQuery::start().await;
    fake.set_running_polls(1);
    fake.fail_next_job("backendError");
    let details = json!({"rows": [candle("BTCUSDT", "2024-06-03", 1, 1.5, 1)], "partition": "20240603"});
    python::run(SCRIPT, &plan(&fake, "jobs", details)).await;

    let jobs = fake.jobs();
    let outcomes: Vec<(Option<&str>, u64, bool)> =
        jobs.iter().map(|job| (job.error_reason.as_deref(), job.output_rows, job.done)).collect();
    assert_eq!(outcomes, [(Some("backendError"), 0, true), (None, 1, true)]);
    let requests = fake.requests();
    for job in &jobs {
        let polls: Vec<&RecordedRequest> = of_route(&requests, Route::GetJob)
            .into_iter()
            .filter(|r| r.job_id.as_deref() == Some(job.job_id.as_str()))
            .collect();
        assert_eq!(polls.len(), 2, "one RUNNING poll, then DONE: {polls:#?}");
        assert!(polls.iter().all(|r| r.query_param("location") == Some("US") && r.status == 200), "{polls:#?}");
    }
    assert_eq!(fake.rows(PROJECT, DATASET, TABLE).len(), 1);
}

#[tokio::test]
async fn queries_count_merge_and_delete_insert_as_daily_loaders_do() {
    let fake = FakeBigQuery::start().await;
    // The first results call fails like a busy backend: fault plans reach query endpoints too.
    fake.fail_next(Route::Query, 1, 503, "backendError");
    let rows = vec![
        candle("BTCUSDT", "2024-06-03", 0, 67000.5, 12),
        candle("BTCUSDT", "2024-06-03", 1, 67010.0, 4),
        candle("ETHUSDT", "2024-06-03", 0, 3500.25, 3),
        candle("SOLUSDT", "2024-06-03", 0, 150.5, 9),
        candle("BTCUSDT", "2024-06-04", 0, 68000.0, 1),
    ];
    // A rerun of 2024-06-03 with one candle fewer and one changed.
    let reload = vec![candle("BTCUSDT", "2024-06-03", 0, 67000.5, 12), candle("ETHUSDT", "2024-06-03", 0, 3499.0, 5)];
    // The MERGE: one existing candle corrected, one new.
    let merge = vec![candle("BTCUSDT", "2024-06-04", 0, 68001.0, 2), candle("ETHUSDT", "2024-06-04", 0, 3600.0, 6)];
    let details = json!({
        "rows": rows, "reload": reload, "merge": merge,
        "per_day": {"2024-06-03": 4, "2024-06-04": 1},
        "day": "2024-06-03", "symbols": ["BTCUSDT", "ETHUSDT"],
        "spot_check": [
            {"symbol": "BTCUSDT", "first": "2024-06-03T00:00:00Z", "high": 67010.0, "trades": 16},
            {"symbol": "ETHUSDT", "first": "2024-06-03T00:00:00Z", "high": 3500.25, "trades": 3},
        ],
        "pages": [2, 2, 1],
    });
    let result = python::run(SCRIPT, &plan(&fake, "queries", details)).await;

    // What the fake stored: the day reloaded, the MERGE applied, partitions where the rows' dates say.
    assert_eq!(
        fake.partitions(PROJECT, DATASET, TABLE),
        BTreeMap::from([("20240603".into(), 2), ("20240604".into(), 2)])
    );
    assert_eq!(result["partitions"], json!({"20240603": 2, "20240604": 2}), "{result}");
    let merged = sorted(fake.partition_rows(PROJECT, DATASET, TABLE, "20240604"));
    assert_eq!(
        merged,
        sorted(vec![
            stored(&candle("BTCUSDT", "2024-06-04", 0, 68001.0, 2)),
            stored(&candle("ETHUSDT", "2024-06-04", 0, 3600.0, 6)),
        ])
    );
    assert_eq!(result["summary"], json!([["BTCUSDT", 2], ["ETHUSDT", 2]]), "{result}");
    assert!(result["missing"].as_str().is_some_and(|m| m.contains("Not found: Table")), "{result}");

    // The query jobs, and how the client fetched their rows.
    let queries: Vec<_> = fake.jobs().into_iter().filter(|job| job.job_type == "QUERY").collect();
    assert!(queries.len() >= 10, "{queries:#?}");
    let requests = fake.requests();
    let results = of_route(&requests, Route::Query);
    assert!(results.iter().any(|r| r.query_param("maxResults") == Some("0")), "the client first asks for no rows");
    assert!(results.iter().any(|r| r.query_param("pageToken").is_some()), "the paged result used page tokens");
    assert_eq!(results.first().map(|r| r.status), Some(503), "the planted fault hit the first results call");
}
