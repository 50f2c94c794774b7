//! The pipeline's own Rust client, `gcp-bigquery-client` at the workspace's pinned version and features, against
//! the fake BigQuery: datasets, tables, insertAll, tabledata.list, jobs.get, jobs.query with parameters and
//! getQueryResults paging, DML with its affected rows, and every error decoded into
//! `BQError::ResponseError` with the reason BigQuery gives. Load jobs are created the way the pipeline creates
//! them, by a multipart upload on reqwest, since the crate has no media upload.

use std::collections::BTreeMap;
use std::sync::Arc;

use fakes::FakeBigQuery;
use fakes::bigquery::Route;
use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::clustering::Clustering;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::query_response::ResultSet;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_data_insert_all_request::TableDataInsertAllRequest;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_row::TableRow;
use gcp_bigquery_client::model::table_schema::TableSchema;
use gcp_bigquery_client::model::time_partitioning::TimePartitioning;
use gcp_bigquery_client::tabledata::ListQueryParameters;
use serde_json::{Value, json};

const PROJECT: &str = "conformance-project";
const DATASET: &str = "market_data";
const TABLE: &str = "candles_1m";
/// 2024-06-03T00:00:00Z in microseconds.
const JUNE_3_US: i64 = 1_717_372_800_000_000;

/// A bearer token that needs no network, as the pipeline's `BigQueryAuth::StaticToken`.
#[derive(Clone)]
struct StaticToken;

#[async_trait::async_trait]
impl Authenticator for StaticToken {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok("conformance-token".to_owned())
    }
}

async fn client(fake: &FakeBigQuery) -> Client {
    ClientBuilder::new()
        .with_v2_base_url(format!("{}/bigquery/v2", fake.uri()))
        .build_from_authenticator(Arc::new(StaticToken))
        .await
        .expect("a client for the fake builds offline")
}

fn schema() -> TableSchema {
    let required = |mut field: TableFieldSchema| {
        field.mode = Some("REQUIRED".to_owned());
        field
    };
    TableSchema::new(vec![
        required(TableFieldSchema::string("exchange")),
        required(TableFieldSchema::string("symbol")),
        required(TableFieldSchema::timestamp("open_time")),
        TableFieldSchema::new("close", FieldType::Float64),
        TableFieldSchema::new("trade_count", FieldType::Int64),
    ])
}

fn candles_table() -> Table {
    Table::new(PROJECT, DATASET, TABLE, schema())
        .time_partitioning(TimePartitioning::per_day().field("open_time"))
        .clustering(Clustering { fields: Some(vec!["exchange".to_owned(), "symbol".to_owned()]) })
}

/// A dataset with the candles table, created through the client.
async fn with_candles(fake: &FakeBigQuery) -> Client {
    let bq = client(fake).await;
    bq.dataset().create(Dataset::new(PROJECT, DATASET).location("US")).await.expect("dataset created");
    bq.table().create(candles_table()).await.expect("table created");
    bq
}

/// A candle of 2024-06-03, `minute` minutes after midnight, as JSON for insertAll or NDJSON.
fn candle(symbol: &str, minute: i64, close: f64) -> Value {
    let at = chrono::DateTime::from_timestamp_micros(JUNE_3_US + minute * 60_000_000).expect("a valid instant");
    json!({"exchange": "bitmex", "symbol": symbol, "open_time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
           "close": close, "trade_count": minute})
}

/// `(code, reason, status)` of a `BQError::ResponseError`; panics on any other outcome.
#[track_caller]
fn response_error<T: std::fmt::Debug>(result: Result<T, BQError>) -> (i64, String, String) {
    match result {
        Err(BQError::ResponseError { error }) => {
            let reason = error.error.errors.first().and_then(|item| item.get("reason")).cloned().unwrap_or_default();
            (error.error.code, reason, error.error.status)
        }
        other => panic!("expected BQError::ResponseError, got {other:?}"),
    }
}

/// Asserts the call failed with BigQuery's error body for `code` and `reason`.
#[track_caller]
fn check<T: std::fmt::Debug>(what: &str, result: Result<T, BQError>, code: i64, reason: &str, status: &str) {
    assert_eq!(response_error(result), (code, reason.to_owned(), status.to_owned()), "{what}");
}

/// A load job by multipart upload, framed as the pipeline and Python frame it; answers the Job JSON.
async fn upload_load_job(fake: &FakeBigQuery, job_id: &str, table_id: &str, rows: &[Value]) -> Value {
    let job = json!({
        "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": "US"},
        "configuration": {"load": {
            "destinationTable": {"projectId": PROJECT, "datasetId": DATASET, "tableId": table_id},
            "sourceFormat": "NEWLINE_DELIMITED_JSON",
            "writeDisposition": "WRITE_TRUNCATE",
            "createDisposition": "CREATE_NEVER",
        }},
    });
    let data: String = rows.iter().map(|row| format!("{row}\n")).collect();
    let boundary = "conformance_boundary_7f3a";
    let body = format!(
        "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{job}\r\n--{boundary}\r\n\
         content-type: application/octet-stream\r\n\r\n{data}\r\n--{boundary}--"
    );
    let response = reqwest::Client::new()
        .post(format!("{}/upload/bigquery/v2/projects/{PROJECT}/jobs?uploadType=multipart", fake.uri()))
        .bearer_auth("conformance-token")
        .header("content-type", format!("multipart/related; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("a Job resource")
}

#[tokio::test]
async fn datasets_are_created_read_listed_and_deleted() {
    let fake = FakeBigQuery::start().await;
    let bq = client(&fake).await;
    let created = bq.dataset().create(Dataset::new(PROJECT, DATASET).location("US")).await.expect("created");
    assert_eq!((created.project_id().as_str(), created.dataset_id().as_str()), (PROJECT, DATASET));
    assert_eq!(created.id.as_deref(), Some("conformance-project:market_data"));

    let read = bq.dataset().get(PROJECT, DATASET).await.expect("read back");
    assert_eq!(read.location.as_deref(), Some("US"));
    assert_eq!(read.kind.as_deref(), Some("bigquery#dataset"));

    bq.dataset().create(Dataset::new(PROJECT, "second")).await.expect("a second dataset");
    let listed = bq.dataset().list(PROJECT, Default::default()).await.expect("listed");
    let ids: Vec<&str> = listed.datasets.iter().map(|dataset| dataset.dataset_id().as_str()).collect();
    assert_eq!(ids, [DATASET, "second"]);

    check(
        "a second create",
        bq.dataset().create(Dataset::new(PROJECT, DATASET)).await,
        409,
        "duplicate",
        "ALREADY_EXISTS",
    );
    bq.dataset().delete(PROJECT, DATASET, true).await.expect("deleted");
    assert!(!fake.dataset_exists(PROJECT, DATASET));
    check("a deleted dataset", bq.dataset().get(PROJECT, DATASET).await, 404, "notFound", "NOT_FOUND");
    assert!(!bq.dataset().delete_if_exists(PROJECT, DATASET, true).await, "deleting twice reports absence");
    assert!(fake.requests().iter().all(|request| request.authorized), "every call carried the bearer token");
}

#[tokio::test]
async fn a_partitioned_clustered_table_reads_back_with_its_schema_and_layout() {
    let fake = FakeBigQuery::start().await;
    let bq = with_candles(&fake).await;
    let table = bq.table().get(PROJECT, DATASET, TABLE, None).await.expect("the table");
    let fields: Vec<(String, FieldType, Option<String>)> = table
        .schema
        .fields()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|field| (field.name, field.r#type, field.mode))
        .collect();
    let required = Some("REQUIRED".to_owned());
    let nullable = Some("NULLABLE".to_owned());
    // Sent as FLOAT64 and INT64, answered in the legacy spelling, decoded as the same types.
    assert_eq!(
        format!("{fields:?}"),
        format!(
            "{:?}",
            [
                ("exchange".to_owned(), FieldType::String, required.clone()),
                ("symbol".to_owned(), FieldType::String, required.clone()),
                ("open_time".to_owned(), FieldType::Timestamp, required),
                ("close".to_owned(), FieldType::Float, nullable.clone()),
                ("trade_count".to_owned(), FieldType::Integer, nullable),
            ]
        )
    );
    let partitioning = table.time_partitioning.as_ref().expect("partitioned");
    assert_eq!((partitioning.r#type.as_str(), partitioning.field.as_deref()), ("DAY", Some("open_time")));
    let clustering = table.clustering.as_ref().and_then(|clustering| clustering.fields.clone());
    assert_eq!(clustering, Some(vec!["exchange".to_owned(), "symbol".to_owned()]));
    assert_eq!((table.num_rows.as_deref(), table.r#type.as_deref()), (Some("0"), Some("TABLE")));
    assert_eq!(table.table_reference.table_id, TABLE);

    let listed = bq.table().list(PROJECT, DATASET, Default::default()).await.expect("listed");
    assert_eq!(listed.total_items, Some(1));
    let entries = listed.tables.unwrap_or_default();
    assert_eq!(entries[0].table_reference.table_id, TABLE);
    assert_eq!(entries[0].time_partitioning.as_ref().and_then(|p| p.field.as_deref()), Some("open_time"));

    check("a second create", bq.table().create(candles_table()).await, 409, "duplicate", "ALREADY_EXISTS");
    let elsewhere = Table::new(PROJECT, "no_such_dataset", TABLE, schema());
    check("a table in a missing dataset", bq.table().create(elsewhere).await, 404, "notFound", "NOT_FOUND");
    bq.table().delete(PROJECT, DATASET, TABLE).await.expect("deleted");
    check("a deleted table", bq.table().get(PROJECT, DATASET, TABLE, None).await, 404, "notFound", "NOT_FOUND");
}

#[tokio::test]
async fn insert_all_stores_rows_and_reports_invalid_rows_by_index() {
    let fake = FakeBigQuery::start().await;
    let bq = with_candles(&fake).await;
    let good = [candle("XBTUSD", 0, 67_000.5), candle("XBTUSD", 1, 67_001.0), candle("ETHUSD", 0, 3_500.0)];
    let mut request = TableDataInsertAllRequest::new();
    for (index, row) in good.iter().enumerate() {
        request.add_row(Some(format!("row-{index}")), row.clone()).expect("serialisable");
    }
    let answer = bq.tabledata().insert_all(PROJECT, DATASET, TABLE, request).await.expect("inserted");
    assert!(answer.insert_errors.is_none(), "{answer:?}");

    let mut bad = candle("ETHUSD", 1, 3_501.0);
    bad["trade_count"] = json!("many");
    let batch = [candle("SOLUSD", 0, 150.0), bad, candle("SOLUSD", 1, 151.0)];
    let build = |skip_invalid: bool| {
        let mut request = TableDataInsertAllRequest::new();
        for row in &batch {
            request.add_row(None, row.clone()).expect("serialisable");
        }
        if skip_invalid {
            request.skip_invalid_rows();
        }
        request
    };
    let refused = bq.tabledata().insert_all(PROJECT, DATASET, TABLE, build(false)).await.expect("HTTP 200");
    let mut reported: Vec<(i32, String, String)> = refused
        .insert_errors
        .unwrap_or_default()
        .into_iter()
        .map(|row| {
            let error = row.errors.unwrap_or_default().into_iter().next().unwrap_or_default();
            (row.index.unwrap_or(-1), error.reason.unwrap_or_default(), error.location.unwrap_or_default())
        })
        .collect();
    reported.sort();
    let stopped = |index| (index, "stopped".to_owned(), String::new());
    assert_eq!(reported, [stopped(0), (1, "invalid".to_owned(), "trade_count".to_owned()), stopped(2)]);
    assert_eq!(fake.rows(PROJECT, DATASET, TABLE).len(), 3, "one bad row stops the whole request");

    let skipped = bq.tabledata().insert_all(PROJECT, DATASET, TABLE, build(true)).await.expect("HTTP 200");
    let indexes: Vec<Option<i32>> = skipped.insert_errors.unwrap_or_default().iter().map(|row| row.index).collect();
    assert_eq!(indexes, [Some(1)]);

    let symbols: Vec<Value> = fake.rows(PROJECT, DATASET, TABLE).into_iter().map(|row| row["symbol"].clone()).collect();
    assert_eq!(symbols, ["XBTUSD", "XBTUSD", "ETHUSD", "SOLUSD", "SOLUSD"]);
    let first = &fake.rows(PROJECT, DATASET, TABLE)[0];
    assert_eq!((first["open_time"].as_i64(), first["close"].as_f64()), (Some(JUNE_3_US), Some(67_000.5)));

    let mut missing = TableDataInsertAllRequest::new();
    missing.add_row(None, candle("XBTUSD", 2, 1.0)).expect("serialisable");
    check(
        "insertAll into a missing table",
        bq.tabledata().insert_all(PROJECT, DATASET, "nope", missing).await,
        404,
        "notFound",
        "NOT_FOUND",
    );
    let inserts: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.route == Some(Route::InsertAll))
        .map(|r| r.header("content-type").unwrap_or_default().to_owned())
        .collect();
    assert!(
        inserts.iter().all(|ct| ct.starts_with("application/json")),
        "plain JSON without the gzip feature: {inserts:?}"
    );
}

#[tokio::test]
async fn tabledata_list_pages_through_rows_of_string_cells() {
    let fake = FakeBigQuery::start().await;
    let bq = with_candles(&fake).await;
    let rows: Vec<Value> = (0..5).map(|minute| candle("XBTUSD", minute, 67_000.0 + minute as f64 / 2.0)).collect();
    upload_load_job(&fake, "candles_1m_20240603_run_1", &format!("{TABLE}$20240603"), &rows).await;

    let mut cells = Vec::new();
    let mut page_token = None;
    let mut pages = 0;
    loop {
        let parameters = ListQueryParameters {
            start_index: None,
            max_results: Some(2),
            page_token: page_token.take(),
            selected_fields: None,
            // `Some(DataFormatOptions { use_int64_timestamp: Some(true) })` cannot be sent: the crate puts this
            // struct in the query string with reqwest, which refuses nested values ("unsupported value").
            format_options: None,
        };
        let page = bq.tabledata().list(PROJECT, DATASET, TABLE, parameters).await.expect("a page");
        assert_eq!(page.total_rows.as_deref(), Some("5"));
        pages += 1;
        for row in page.rows.unwrap_or_default() {
            let values: Vec<Value> =
                row.columns.unwrap_or_default().into_iter().map(|cell| cell.value.unwrap_or(Value::Null)).collect();
            cells.push(values);
        }
        match page.page_token {
            Some(token) => page_token = Some(token),
            None => break,
        }
    }
    assert_eq!(pages, 3, "5 rows at 2 a page");
    assert_eq!(cells.len(), 5);
    // Every scalar is a string; TIMESTAMP is float seconds in Java's notation by default.
    assert_eq!(cells[1], [json!("bitmex"), json!("XBTUSD"), json!("1.71737286E9"), json!("67000.5"), json!("1")]);

    let selection = ListQueryParameters {
        start_index: Some("4".to_owned()),
        max_results: None,
        page_token: None,
        selected_fields: Some("open_time,symbol".to_owned()),
        format_options: None,
    };
    let last = bq.tabledata().list(PROJECT, DATASET, &format!("{TABLE}$20240603"), selection).await.expect("a page");
    let last_cells: Vec<Value> = last
        .rows
        .unwrap_or_default()
        .remove(0)
        .columns
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.value.unwrap_or(Value::Null))
        .collect();
    // Selected columns in table order, from a partition decorator, from a start index.
    assert_eq!(last_cells, [json!("XBTUSD"), json!("1.71737304E9")]);
    assert!(last.page_token.is_none());
}

#[tokio::test]
async fn jobs_get_reports_running_then_done_with_load_statistics_and_error_results() {
    let fake = FakeBigQuery::start().await;
    let bq = with_candles(&fake).await;
    fake.set_running_polls(2);
    let rows = [candle("XBTUSD", 0, 1.0), candle("XBTUSD", 1, 2.0), candle("XBTUSD", 2, 3.0)];
    let inserted = upload_load_job(&fake, "candles_1m_20240603_run_1", &format!("{TABLE}$20240603"), &rows).await;
    assert_eq!(inserted["status"]["state"], "RUNNING");

    let mut states = Vec::new();
    for _ in 0..3 {
        let job = bq.job().get_job(PROJECT, "candles_1m_20240603_run_1", Some("US")).await.expect("the job");
        states.push(job.status.as_ref().and_then(|status| status.state.clone()).unwrap_or_default());
        if states.last().map(String::as_str) == Some("DONE") {
            let statistics =
                job.statistics.as_ref().and_then(|statistics| statistics.load.clone()).expect("load statistics");
            assert_eq!((statistics.output_rows.as_deref(), statistics.bad_records.as_deref()), (Some("3"), Some("0")));
            assert!(job.status.as_ref().is_some_and(|status| status.error_result.is_none()));
            let reference = job.job_reference.as_ref().expect("a job reference");
            assert_eq!(
                (reference.job_id.as_deref(), reference.location.as_deref()),
                (Some("candles_1m_20240603_run_1"), Some("US"))
            );
            let load = job
                .configuration
                .as_ref()
                .and_then(|configuration| configuration.load.as_ref())
                .expect("a load configuration");
            assert_eq!(
                load.destination_table.as_ref().map(|table| table.table_id.as_str()),
                Some("candles_1m$20240603")
            );
        }
    }
    assert_eq!(states, ["RUNNING", "RUNNING", "DONE"]);

    fake.set_running_polls(0);
    fake.fail_next_job("backendError");
    upload_load_job(&fake, "candles_1m_20240603_run_2", &format!("{TABLE}$20240603"), &rows).await;
    let failed =
        bq.job().get_job(PROJECT, "candles_1m_20240603_run_2", Some("US")).await.expect("HTTP 200 for a failed job");
    let status = failed.status.expect("a status");
    assert_eq!(status.state.as_deref(), Some("DONE"));
    assert_eq!(status.error_result.and_then(|error| error.reason).as_deref(), Some("backendError"));
    assert_eq!(status.errors.map(|errors| errors.len()), Some(1));

    check("an unknown job", bq.job().get_job(PROJECT, "no_such_job", Some("US")).await, 404, "notFound", "NOT_FOUND");
    check(
        "a job in another location",
        bq.job().get_job(PROJECT, "candles_1m_20240603_run_1", Some("EU")).await,
        404,
        "notFound",
        "NOT_FOUND",
    );
    assert_eq!(fake.partition_rows(PROJECT, DATASET, TABLE, "20240603").len(), 3, "the failed job loaded nothing");
}

fn parameter(name: &str, kind: &str, value: &str) -> QueryParameter {
    QueryParameter {
        name: Some(name.to_owned()),
        parameter_type: Some(QueryParameterType { array_type: None, struct_types: None, r#type: kind.to_owned() }),
        parameter_value: Some(QueryParameterValue {
            array_values: None,
            struct_values: None,
            value: Some(value.to_owned()),
        }),
    }
}

#[tokio::test]
async fn queries_page_through_get_query_results_and_dml_reports_affected_rows() {
    let fake = FakeBigQuery::start().await;
    let bq = with_candles(&fake).await;
    let rows: Vec<Value> = (0..5).map(|minute| candle("XBTUSD", minute, 67_000.0 + minute as f64)).collect();
    upload_load_job(&fake, "load-1", TABLE, &rows).await;

    // A spot check with a parameter, answered in pages of two.
    let mut request = QueryRequest::new(format!(
        "SELECT symbol, COUNT(*) AS n, MAX(close) AS high FROM `{PROJECT}.{DATASET}.{TABLE}` \
         WHERE DATE(open_time) = @day GROUP BY symbol"
    ));
    request.query_parameters = Some(vec![parameter("day", "DATE", "2024-06-03")]);
    let answer = bq.job().query(PROJECT, request).await.expect("the query runs");
    let mut result = ResultSet::new_from_query_response(answer);
    assert!(result.next_row());
    assert_eq!(result.get_string_by_name("symbol").expect("a string"), Some("XBTUSD".to_owned()));
    assert_eq!(result.get_i64_by_name("n").expect("an integer"), Some(5));
    assert_eq!(result.get_f64_by_name("high").expect("a float"), Some(67_004.0));

    let mut request = QueryRequest::new(format!("SELECT close FROM {DATASET}.{TABLE} ORDER BY close DESC"));
    request.max_results = Some(2);
    let first = bq.job().query(PROJECT, request).await.expect("the query runs");
    assert_eq!(first.total_rows.as_deref(), Some("5"));
    let job_id = first.job_reference.and_then(|reference| reference.job_id).expect("a job id");
    let mut closes: Vec<String> = cells(first.rows);
    let mut token = first.page_token;
    while let Some(page_token) = token {
        let parameters = GetQueryResultsParameters {
            max_results: Some(2),
            page_token: Some(page_token),
            location: Some("US".to_owned()),
            ..GetQueryResultsParameters::default()
        };
        let page = bq.job().get_query_results(PROJECT, &job_id, parameters).await.expect("a page");
        closes.extend(cells(page.rows));
        token = page.page_token;
    }
    assert_eq!(closes, ["67004.0", "67003.0", "67002.0", "67001.0", "67000.0"]);

    // Delete-then-insert of part of the day: the affected rows come back as numDmlAffectedRows.
    let delete = format!("DELETE FROM {DATASET}.{TABLE} WHERE close > 67002");
    let deleted = bq.job().query(PROJECT, QueryRequest::new(delete)).await.expect("the DELETE runs");
    assert_eq!(deleted.num_dml_affected_rows.as_deref(), Some("2"));
    let insert = format!(
        "INSERT INTO {DATASET}.{TABLE} (exchange, symbol, open_time, close) \
         VALUES ('bitmex', 'XBTUSD', TIMESTAMP '2024-06-03 00:10:00', 1.5)"
    );
    let inserted = bq.job().query(PROJECT, QueryRequest::new(insert)).await.expect("the INSERT runs");
    assert_eq!(inserted.num_dml_affected_rows.as_deref(), Some("1"));
    assert_eq!(fake.partitions(PROJECT, DATASET, TABLE), BTreeMap::from([("20240603".to_owned(), 4)]));
}

fn cells(rows: Option<Vec<TableRow>>) -> Vec<String> {
    rows.unwrap_or_default()
        .into_iter()
        .flat_map(|row| row.columns.unwrap_or_default())
        .filter_map(|cell| cell.value.and_then(|value| value.as_str().map(str::to_owned)))
        .collect()
}

#[tokio::test]
async fn errors_decode_into_response_errors_with_the_reason_bigquery_sends() {
    let fake = FakeBigQuery::start().await;
    let bq = with_candles(&fake).await;

    check("a missing dataset", bq.dataset().get(PROJECT, "nope").await, 404, "notFound", "NOT_FOUND");
    let mut on_a_string = Table::new(PROJECT, DATASET, "bad", schema());
    on_a_string = on_a_string.time_partitioning(TimePartitioning::per_day().field("symbol"));
    check("partitioning on a STRING", bq.table().create(on_a_string).await, 400, "invalid", "INVALID_ARGUMENT");
    check(
        "a missing table's rows",
        bq.tabledata()
            .list(
                PROJECT,
                DATASET,
                "nope",
                ListQueryParameters {
                    start_index: None,
                    max_results: None,
                    page_token: None,
                    selected_fields: None,
                    format_options: None,
                },
            )
            .await,
        404,
        "notFound",
        "NOT_FOUND",
    );
    check("deleting a missing table", bq.table().delete(PROJECT, DATASET, "nope").await, 404, "notFound", "NOT_FOUND");
    check(
        "a non-empty dataset",
        bq.dataset().delete(PROJECT, DATASET, false).await,
        400,
        "resourceInUse",
        "INVALID_ARGUMENT",
    );
    check(
        "SQL naming a column the table does not have",
        bq.job().query(PROJECT, QueryRequest::new(format!("SELECT nope FROM {DATASET}.{TABLE}"))).await,
        400,
        "invalidQuery",
        "INVALID_ARGUMENT",
    );
    check(
        "SQL on a missing table",
        bq.job().query(PROJECT, QueryRequest::new(format!("SELECT 1 FROM {DATASET}.nope"))).await,
        404,
        "notFound",
        "NOT_FOUND",
    );

    // Injected faults keep BigQuery's body, so retry classification sees the real reason.
    fake.fail_next(Route::GetTable, 1, 503, "backendError");
    check("a busy backend", bq.table().get(PROJECT, DATASET, TABLE, None).await, 503, "backendError", "UNAVAILABLE");
    fake.fail_next(Route::GetDataset, 1, 403, "rateLimitExceeded");
    check("a rate limit", bq.dataset().get(PROJECT, DATASET).await, 403, "rateLimitExceeded", "PERMISSION_DENIED");
    fake.fail_next(Route::GetJob, 1, 500, "internalError");
    check("an internal error", bq.job().get_job(PROJECT, "any", None).await, 500, "internalError", "INTERNAL");
    // A lost response: the table was created, the client saw a 500, and a retry finds it already there.
    fake.fail_next_after_commit(Route::CreateTable, 1, 500, "backendError");
    let second = Table::new(PROJECT, DATASET, "second", schema());
    check("a lost create response", bq.table().create(second.clone()).await, 500, "backendError", "INTERNAL");
    assert!(fake.table_exists(PROJECT, DATASET, "second"));
    check("the retried create", bq.table().create(second).await, 409, "duplicate", "ALREADY_EXISTS");
}
