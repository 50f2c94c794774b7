//! Load jobs by multipart and resumable upload: framing, dispositions, partition decorators, validation, and
//! the Job resource they answer with.

use rstest::rstest;
use serde_json::{Value, json};

use crate::support::{D, Framing, JUNE_1, JUNE_2, P, World, candle, candles_schema, is_int64_string, load_job, ndjson};

#[rstest]
#[case::python_quoted_boundary_without_final_crlf(Framing::Python)]
#[case::byron_bare_boundary_with_final_crlf(Framing::Byron)]
#[case::upper_case_headers_and_bare_line_feeds(Framing::Shouting)]
#[tokio::test]
async fn a_multipart_load_is_accepted_whatever_the_framing(#[case] framing: Framing) {
    let world = World::start().await;
    world.create_candles().await;
    let rows = [candle("BTCUSDT", JUNE_1, 0, 67000.5), candle("BTCUSDT", JUNE_1, 1, 67001.0)];
    let answer = world.upload(&load_job("job_1", "candles", "WRITE_APPEND"), ndjson(&rows).as_bytes(), framing).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], json!({"state": "DONE"}));
    assert_eq!(answer.body["statistics"]["load"]["outputRows"], "2");
    assert_eq!(
        world.rows("candles"),
        [
            json!({"exchange": "binance", "symbol": "BTCUSDT", "open_time": JUNE_1 * 1_000_000, "close": 67000.5, "trades": 1}),
            json!({"exchange": "binance", "symbol": "BTCUSDT", "open_time": (JUNE_1 + 60) * 1_000_000, "close": 67001.0, "trades": 2}),
        ]
    );
}

#[tokio::test]
async fn a_load_answers_with_a_complete_job_resource() {
    let world = World::start().await;
    world.create_candles().await;
    let data = ndjson(&[candle("ETHUSDT", JUNE_1, 5, 3500.0)]);
    let answer = world
        .upload(&load_job("candles_20240601_1", "candles$20240601", "WRITE_TRUNCATE"), data.as_bytes(), Framing::Python)
        .await;
    assert_eq!(answer.status, 200);
    let job = &answer.body;
    assert_eq!(job["kind"], "bigquery#job");
    assert_eq!(job["id"], "p:US.candles_20240601_1");
    assert_eq!(job["jobReference"], json!({"projectId": P, "jobId": "candles_20240601_1", "location": "US"}));
    assert_eq!(job["configuration"]["jobType"], "LOAD");
    assert_eq!(
        job["configuration"]["load"]["destinationTable"],
        json!({"projectId": P, "datasetId": D, "tableId": "candles$20240601"})
    );
    assert_eq!(job["configuration"]["load"]["writeDisposition"], "WRITE_TRUNCATE");
    for time in ["creationTime", "startTime", "endTime"] {
        assert!(is_int64_string(&job["statistics"][time]), "{time} in {job}");
    }
    let load = &job["statistics"]["load"];
    assert_eq!(load["inputFiles"], "1");
    assert_eq!(load["inputFileBytes"], data.len().to_string());
    assert_eq!(load["outputRows"], "1");
    assert_eq!(load["badRecords"], "0");
    assert!(is_int64_string(&load["outputBytes"]) && load["outputBytes"] != "0", "{load}");
    assert_eq!(job["status"], json!({"state": "DONE"}));
    assert!(job["etag"].is_string());
}

#[tokio::test]
async fn write_truncate_into_a_decorated_partition_replaces_only_that_partition() {
    let world = World::start().await;
    world.create_candles().await;
    let first = [candle("BTCUSDT", JUNE_1, 0, 1.0), candle("BTCUSDT", JUNE_1, 1, 2.0)];
    let second = [candle("BTCUSDT", JUNE_2, 0, 3.0)];
    assert_eq!(world.load(&load_job("a", "candles$20240601", "WRITE_TRUNCATE"), &first).await.status, 200);
    assert_eq!(world.load(&load_job("b", "candles$20240602", "WRITE_TRUNCATE"), &second).await.status, 200);

    let rerun = [candle("BTCUSDT", JUNE_1, 7, 9.0)];
    let answer = world.load(&load_job("c", "candles$20240601", "WRITE_TRUNCATE"), &rerun).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}), "{}", answer.body);

    let june_1 = world.fake.partition_rows(P, D, "candles", "20240601");
    assert_eq!(june_1.len(), 1);
    assert_eq!(june_1[0]["close"], json!(9.0));
    let june_2 = world.fake.partition_rows(P, D, "candles", "20240602");
    assert_eq!(june_2.into_iter().map(Value::Object).collect::<Vec<_>>(), world.rows("candles$20240602"));
    assert_eq!(world.rows("candles$20240602")[0]["close"], json!(3.0));
    assert_eq!(
        world.fake.partitions(P, D, "candles").into_iter().collect::<Vec<_>>(),
        [("20240601".into(), 1), ("20240602".into(), 1)]
    );
}

#[tokio::test]
async fn write_truncate_without_a_decorator_replaces_the_whole_table() {
    let world = World::start().await;
    world.create_candles().await;
    world
        .load(&load_job("a", "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0), candle("A", JUNE_2, 0, 1.0)])
        .await;
    let answer = world.load(&load_job("b", "candles", "WRITE_TRUNCATE"), &[candle("B", JUNE_2, 3, 2.0)]).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}));
    assert_eq!(world.rows("candles").len(), 1);
    assert_eq!(world.rows("candles")[0]["symbol"], "B");
}

#[tokio::test]
async fn write_append_adds_rows_after_the_existing_ones() {
    let world = World::start().await;
    world.create_candles().await;
    world.load(&load_job("a", "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    let mut job = load_job("b", "candles", "WRITE_APPEND");
    job["configuration"]["load"].as_object_mut().map(|load| load.remove("writeDisposition"));
    let answer = world.load(&job, &[candle("B", JUNE_1, 0, 2.0)]).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}), "WRITE_APPEND is the default");
    let symbols: Vec<Value> = world.rows("candles").iter().map(|row| row["symbol"].clone()).collect();
    assert_eq!(symbols, [json!("A"), json!("B")]);
}

#[tokio::test]
async fn write_empty_fails_with_duplicate_on_a_non_empty_target_and_fills_an_empty_one() {
    let world = World::start().await;
    world.create_candles().await;
    world.load(&load_job("a", "candles$20240601", "WRITE_TRUNCATE"), &[candle("A", JUNE_1, 0, 1.0)]).await;

    let refused = world.load(&load_job("b", "candles$20240601", "WRITE_EMPTY"), &[candle("B", JUNE_1, 1, 2.0)]).await;
    assert_eq!(refused.status, 200, "a failed job is still HTTP 200");
    assert_eq!(refused.body["status"]["state"], "DONE");
    assert_eq!(refused.body["status"]["errorResult"]["reason"], "duplicate");
    assert_eq!(refused.body["status"]["errorResult"]["message"], "Already Exists: Table p:market.candles$20240601");

    let filled = world.load(&load_job("c", "candles$20240602", "WRITE_EMPTY"), &[candle("C", JUNE_2, 1, 2.0)]).await;
    assert_eq!(filled.body["status"], json!({"state": "DONE"}));
    let whole = world.load(&load_job("d", "candles", "WRITE_EMPTY"), &[candle("D", JUNE_2, 1, 2.0)]).await;
    assert_eq!(whole.body["status"]["errorResult"]["reason"], "duplicate");
    assert_eq!(world.rows("candles").len(), 2);
}

#[tokio::test]
async fn a_row_outside_the_decorated_partition_fails_the_job_and_loads_nothing() {
    let world = World::start().await;
    world.create_candles().await;
    world.load(&load_job("a", "candles$20240601", "WRITE_TRUNCATE"), &[candle("KEEP", JUNE_1, 0, 1.0)]).await;
    let off_by_one_day = [candle("NEW", JUNE_1, 0, 2.0), candle("NEW", JUNE_2, 0, 2.0)];
    let answer = world.load(&load_job("b", "candles$20240601", "WRITE_TRUNCATE"), &off_by_one_day).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"]["state"], "DONE");
    assert_eq!(
        answer.body["status"]["errorResult"],
        json!({"reason": "invalid", "message": "Some rows belong to different partitions rather than destination partition 20240601"})
    );
    assert_eq!(answer.body["status"]["errors"][0]["reason"], "invalid");
    assert!(answer.body["statistics"].get("load").is_none());
    let symbols: Vec<Value> = world.rows("candles").iter().map(|row| row["symbol"].clone()).collect();
    assert_eq!(symbols, [json!("KEEP")], "the truncate must not have happened");
}

#[rstest]
#[case::unknown_field(json!({"venue": "x"}), "No such field: venue.")]
#[case::wrong_type(json!({"trades": "many"}), "Could not convert value")]
#[case::missing_required(json!({"exchange": null}), "Missing required field: exchange.")]
#[tokio::test]
async fn one_bad_row_fails_the_job_unless_max_bad_records_allows_it(#[case] damage: Value, #[case] fragment: &str) {
    let world = World::start().await;
    world.create_candles().await;
    let mut bad = candle("BAD", JUNE_1, 1, 1.0);
    for (key, value) in damage.as_object().into_iter().flatten() {
        bad[key] = value.clone();
    }
    let rows = [candle("GOOD", JUNE_1, 0, 1.0), bad];
    let strict = world.load(&load_job("strict", "candles", "WRITE_APPEND"), &rows).await;
    assert_eq!(strict.body["status"]["errorResult"]["reason"], "invalid");
    let message = strict.body["status"]["errorResult"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Rows: 2; errors: 1"), "{message}");
    let details = strict.body["status"]["errors"].to_string();
    assert!(details.contains(fragment), "{details}");
    assert!(world.rows("candles").is_empty(), "a load job is atomic");

    let mut tolerant = load_job("tolerant", "candles", "WRITE_APPEND");
    tolerant["configuration"]["load"]["maxBadRecords"] = json!("1");
    let answer = world.load(&tolerant, &rows).await;
    assert_eq!(answer.body["status"]["state"], "DONE");
    assert_eq!(answer.body["configuration"]["load"]["maxBadRecords"], json!(1), "int32 fields echo as numbers");
    assert!(answer.body["status"].get("errorResult").is_none(), "{}", answer.body);
    assert_eq!(answer.body["statistics"]["load"]["badRecords"], "1");
    assert_eq!(answer.body["statistics"]["load"]["outputRows"], "1");
    assert_eq!(world.rows("candles").len(), 1);
    assert_eq!(world.rows("candles")[0]["symbol"], "GOOD");
}

#[tokio::test]
async fn ignore_unknown_values_drops_unknown_fields_instead_of_failing() {
    let world = World::start().await;
    world.create_candles().await;
    let mut row = candle("A", JUNE_1, 0, 1.0);
    row["venue"] = json!("extra");
    let mut job = load_job("a", "candles", "WRITE_APPEND");
    job["configuration"]["load"]["ignoreUnknownValues"] = json!(true);
    let answer = world.load(&job, &[row]).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}));
    assert!(world.rows("candles")[0].get("venue").is_none());
}

#[rstest]
#[case::integer_as_string(json!({"trades": "42"}), "trades", json!(42))]
#[case::float_as_string(json!({"close": "1.25"}), "close", json!(1.25))]
#[case::float_nan(json!({"close": "NaN"}), "close", json!("NaN"))]
#[case::float_infinity(json!({"close": "Infinity"}), "close", json!("Infinity"))]
#[case::rfc3339_with_fraction(json!({"open_time": "2024-06-01T00:01:00.123456Z"}), "open_time", json!((JUNE_1 + 60) * 1_000_000 + 123_456))]
#[case::rfc3339_with_offset(json!({"open_time": "2024-06-01T02:01:00+02:00"}), "open_time", json!((JUNE_1 + 60) * 1_000_000))]
#[case::sql_form_with_utc(json!({"open_time": "2024-06-01 00:01:00 UTC"}), "open_time", json!((JUNE_1 + 60) * 1_000_000))]
#[case::sql_form_with_micros(json!({"open_time": "2024-06-01 00:01:00.000001"}), "open_time", json!((JUNE_1 + 60) * 1_000_000 + 1))]
#[case::epoch_seconds(json!({"open_time": JUNE_1 + 60}), "open_time", json!((JUNE_1 + 60) * 1_000_000))]
#[case::null_nullable(json!({"close": null}), "close", json!(null))]
#[case::missing_nullable(json!({"trades": "__remove__"}), "trades", json!(null))]
#[tokio::test]
async fn ndjson_values_in_every_accepted_form_load_as_typed_values(
    #[case] override_: Value,
    #[case] column: &str,
    #[case] expected: Value,
) {
    let world = World::start().await;
    world.create_candles().await;
    let mut row = candle("A", JUNE_1, 0, 1.0);
    for (key, value) in override_.as_object().into_iter().flatten() {
        if value == "__remove__" {
            row.as_object_mut().map(|object| object.remove(key));
        } else {
            row[key] = value.clone();
        }
    }
    let answer = world.load(&load_job("a", "candles", "WRITE_APPEND"), &[row]).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}), "{}", answer.body);
    assert_eq!(world.rows("candles")[0][column], expected);
}

#[tokio::test]
async fn create_never_on_a_missing_table_fails_the_job_with_not_found() {
    let world = World::start().await;
    world.create_dataset().await;
    let answer = world.load(&load_job("a", "candles$20240601", "WRITE_TRUNCATE"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"]["errorResult"]["reason"], "notFound");
    assert_eq!(answer.body["status"]["errorResult"]["message"], "Not found: Table p:market.candles");
    assert!(!world.fake.table_exists(P, D, "candles"));
}

#[tokio::test]
async fn create_if_needed_makes_the_table_from_the_load_configuration() {
    let world = World::start().await;
    world.create_dataset().await;
    let mut job = load_job("a", "candles$20240601", "WRITE_TRUNCATE");
    let load = &mut job["configuration"]["load"];
    load["createDisposition"] = json!("CREATE_IF_NEEDED");
    load["schema"] = candles_schema();
    load["timePartitioning"] = json!({"type": "DAY", "field": "open_time"});
    load["clustering"] = json!({"fields": ["symbol"]});
    let answer = world.load(&job, &[candle("A", JUNE_1, 0, 1.0)]).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}), "{}", answer.body);
    let table = world.get(&format!("/projects/{P}/datasets/{D}/tables/candles")).await.body;
    assert_eq!(table["timePartitioning"], json!({"type": "DAY", "field": "open_time"}));
    assert_eq!(table["clustering"], json!({"fields": ["symbol"]}));
    assert_eq!(table["schema"]["fields"][4], json!({"name": "trades", "type": "INTEGER", "mode": "NULLABLE"}));
    assert_eq!(table["numRows"], "1");
}

#[tokio::test]
async fn a_load_into_an_existing_table_with_another_partitioning_fails() {
    let world = World::start().await;
    world.create_candles().await;
    let mut job = load_job("a", "candles", "WRITE_APPEND");
    job["configuration"]["load"]["timePartitioning"] = json!({"type": "MONTH", "field": "open_time"});
    let answer = world.load(&job, &[candle("A", JUNE_1, 0, 1.0)]).await;
    let message = answer.body["status"]["errorResult"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Incompatible table partitioning specification."), "{message}");
}

#[tokio::test]
async fn autodetect_keeps_the_schema_of_an_existing_table() {
    let world = World::start().await;
    world.create_candles().await;
    let mut job = load_job("a", "candles$20240601", "WRITE_TRUNCATE");
    job["configuration"]["load"]["autodetect"] = json!(true);
    job["configuration"]["load"]["createDisposition"] = Value::Null;
    let answer = world.load(&job, &[candle("A", JUNE_1, 0, 1.0)]).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}), "{}", answer.body);
    assert!(answer.body["configuration"]["load"].get("createDisposition").is_none(), "nulls are not echoed");
    assert_eq!(
        world.fake.table_schema(P, D, "candles").map(|schema| schema["fields"][2]["type"].clone()),
        Some(json!("TIMESTAMP"))
    );
}

#[tokio::test]
async fn a_source_format_other_than_ndjson_or_csv_fails_the_job_with_invalid() {
    let world = World::start().await;
    world.create_candles().await;
    let mut job = load_job("a", "candles", "WRITE_APPEND");
    job["configuration"]["load"]["sourceFormat"] = json!("AVRO");
    let answer = world.upload(&job, b"Obj\x01", Framing::Python).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"]["errorResult"]["reason"], "invalid");
    let message = answer.body["status"]["errorResult"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("loads CSV, NEWLINE_DELIMITED_JSON and PARQUET, not sourceFormat AVRO"), "{message}");
}

/// A CSV load into a date partition: a header skipped, a quoted delimiter, an empty cell as NULL, the schema
/// auto-detected from the header and the values; the same decorator rule as NDJSON.
#[tokio::test]
async fn a_csv_load_with_a_header_lands_its_rows_in_the_partition() {
    let world = World::start().await;
    world.create_dataset().await;
    let job = json!({
        "jobReference": {"projectId": P, "jobId": "csv_1"},
        "configuration": {"load": {
            "destinationTable": {"projectId": P, "datasetId": D, "tableId": "daily$20240603"},
            "sourceFormat": "CSV",
            "autodetect": true,
            "timePartitioning": {"type": "DAY", "field": "day"},
            "writeDisposition": "WRITE_TRUNCATE",
        }},
    });
    let csv = b"day,symbol,close,trades\n2024-06-03,\"BTC,USDT\",67000.5,12\n2024-06-03,ETHUSDT,,3\n";
    let answer = world.upload(&job, csv, Framing::Python).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], json!({"state": "DONE"}), "{}", answer.body);
    assert_eq!(answer.body["statistics"]["load"]["outputRows"], "2", "{}", answer.body);
    let types: Vec<Value> = world.fake.table_schema(P, D, "daily").expect("created")["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| json!([f["name"], f["type"]]))
        .collect();
    assert_eq!(
        types,
        [json!(["day", "DATE"]), json!(["symbol", "STRING"]), json!(["close", "FLOAT"]), json!(["trades", "INTEGER"])]
    );
    let rows = world.rows("daily");
    assert_eq!(rows[0]["symbol"], "BTC,USDT");
    assert_eq!(rows[1]["close"], Value::Null);

    // A row of another date is refused, as with NDJSON.
    let mut other = job.clone();
    other["jobReference"]["jobId"] = json!("csv_2");
    let answer = world.upload(&other, b"day,symbol,close,trades\n2024-06-04,BTCUSDT,1,1\n", Framing::Python).await;
    assert_eq!(answer.body["status"]["errorResult"]["reason"], "invalid", "{}", answer.body);
    assert_eq!(world.rows("daily").len(), 2, "nothing changed");
}

#[tokio::test]
async fn a_bad_csv_cell_fails_the_load_naming_the_row_and_the_column() {
    let world = World::start().await;
    world.create_dataset().await;
    let job = json!({
        "jobReference": {"projectId": P, "jobId": "csv_bad"},
        "configuration": {"load": {
            "destinationTable": {"projectId": P, "datasetId": D, "tableId": "daily"},
            "sourceFormat": "CSV",
            "skipLeadingRows": 1,
            "schema": {"fields": [{"name": "symbol", "type": "STRING"}, {"name": "trades", "type": "INTEGER"}]},
        }},
    });
    let answer = world.upload(&job, b"symbol,trades\nBTCUSDT,12\nETHUSDT,many\n", Framing::Python).await;
    assert_eq!(answer.body["status"]["errorResult"]["reason"], "invalid", "{}", answer.body);
    let summary = answer.body["status"]["errorResult"]["message"].as_str().unwrap_or_default();
    assert!(summary.contains("CSV table encountered too many errors, giving up. Rows: 2; errors: 1."), "{summary}");
    let detail = answer.body["status"]["errors"][1]["message"].as_str().unwrap_or_default();
    assert!(
        detail.contains(
            "Could not parse 'many' as INTEGER for field trades (position 1) starting at position: 25 (line 3)"
        ),
        "{detail}"
    );
    assert!(world.rows("daily").is_empty(), "a failed load writes nothing");
}

#[tokio::test]
async fn a_reused_job_id_is_409_duplicate_and_loads_nothing_twice() {
    let world = World::start().await;
    world.create_candles().await;
    let job = load_job("candles_20240601_0", "candles", "WRITE_APPEND");
    let rows = [candle("A", JUNE_1, 0, 1.0)];
    assert_eq!(world.load(&job, &rows).await.status, 200);
    let again = world.load(&job, &rows).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.reason(), "duplicate");
    assert_eq!(again.body["error"]["message"], "Already Exists: Job p:US.candles_20240601_0");
    assert_eq!(world.rows("candles").len(), 1);
    let logged: Vec<(Option<String>, u16)> =
        world.fake.requests().into_iter().filter(|r| r.job_id.is_some()).map(|r| (r.job_id, r.status)).collect();
    assert_eq!(logged, [(Some("candles_20240601_0".into()), 200), (Some("candles_20240601_0".into()), 409)]);
}

#[tokio::test]
async fn a_job_without_a_job_id_gets_a_generated_one() {
    let world = World::start().await;
    world.create_candles().await;
    let mut job = load_job("x", "candles", "WRITE_APPEND");
    job.as_object_mut().map(|object| object.remove("jobReference"));
    let answer = world.load(&job, &[candle("A", JUNE_1, 0, 1.0)]).await;
    let job_id = answer.body["jobReference"]["jobId"].as_str().unwrap_or_default().to_owned();
    assert!(!job_id.is_empty());
    assert_eq!(world.get(&format!("/projects/{P}/jobs/{job_id}")).await.status, 200);
}

#[tokio::test]
async fn a_resumable_upload_answers_308_until_the_last_chunk_then_the_job() {
    let world = World::start().await;
    world.create_candles().await;
    let data = ndjson(&[candle("A", JUNE_1, 0, 1.0), candle("B", JUNE_1, 1, 2.0)]).into_bytes();
    let start_url = format!("{}/upload/bigquery/v2/projects/{P}/jobs?uploadType=resumable", world.fake.uri());
    let started = world
        .send(world.http.post(start_url).header("x-upload-content-type", "*/*").json(&load_job(
            "r1",
            "candles$20240601",
            "WRITE_TRUNCATE",
        )))
        .await;
    assert_eq!(started.status, 200);
    let session = started.header("location").expect("a session URL").to_owned();
    assert!(session.contains("upload_id="), "{session}");

    let split = 10;
    let total = data.len();
    let first = world
        .send(
            world
                .http
                .put(&session)
                .header("content-range", format!("bytes 0-{}/{total}", split - 1))
                .body(data[..split].to_vec()),
        )
        .await;
    assert_eq!(first.status, 308);
    assert_eq!(first.header("range"), Some(format!("bytes=0-{}", split - 1).as_str()));
    assert!(world.rows("candles").is_empty(), "nothing loads before the last byte");

    let last = world
        .send(
            world
                .http
                .put(&session)
                .header("content-range", format!("bytes {split}-{}/{total}", total - 1))
                .body(data[split..].to_vec()),
        )
        .await;
    assert_eq!(last.status, 200, "{}", last.body);
    assert_eq!(last.body["jobReference"]["jobId"], "r1");
    assert_eq!(last.body["statistics"]["load"]["outputRows"], "2");
    assert_eq!(world.rows("candles").len(), 2);
}

/// Copy jobs on the wire: a partition copied into a partition, the dispositions, and BigQuery's refusals (a
/// different schema, a row of another date into a partition, a missing source) changing nothing.
#[tokio::test]
async fn copy_jobs_follow_dispositions_and_partition_rules() {
    let world = World::start().await;
    world.create_candles().await;
    let rows = [candle("A", JUNE_1, 0, 1.0), candle("B", JUNE_2, 0, 2.0)];
    assert_eq!(world.load(&load_job("l1", "candles", "WRITE_APPEND"), &rows).await.status, 200);
    let copy = |id: &str, source: &str, destination: &str, write: &str| {
        json!({
            "jobReference": {"projectId": P, "jobId": id},
            "configuration": {"copy": {
                "sourceTable": {"projectId": P, "datasetId": D, "tableId": source},
                "destinationTable": {"projectId": P, "datasetId": D, "tableId": destination},
                "writeDisposition": write,
            }},
        })
    };
    let path = format!("/projects/{P}/jobs");
    let answer = world.post(&path, &copy("c1", "candles$20240601", "copy$20240601", "WRITE_TRUNCATE")).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}), "{}", answer.body);
    assert_eq!(answer.body["configuration"]["jobType"], "COPY");
    assert_eq!(answer.body["statistics"]["copy"]["copiedRows"], "1");
    assert_eq!(world.rows("copy").len(), 1, "only the source partition");

    let refused = [
        (
            copy("c2", "candles", "copy$20240601", "WRITE_APPEND"),
            "invalid",
            "rather than destination partition 20240601",
        ),
        (copy("c3", "candles", "copy", "WRITE_EMPTY"), "duplicate", "Already Exists: Table"),
        (copy("c4", "nothing", "copy", "WRITE_APPEND"), "notFound", "Not found: Table p:market.nothing"),
    ];
    for (job, reason, message) in refused {
        let answer = world.post(&path, &job).await;
        assert_eq!(answer.body["status"]["errorResult"]["reason"], reason, "{}", answer.body);
        let said = answer.body["status"]["errorResult"]["message"].as_str().unwrap_or_default();
        assert!(said.contains(message), "{said}");
    }
    assert_eq!(world.rows("copy").len(), 1, "a refused copy changes nothing");
    let answer = world.post(&path, &copy("c5", "candles", "copy", "WRITE_TRUNCATE")).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}), "{}", answer.body);
    assert_eq!(world.rows("copy").len(), 2);
}
