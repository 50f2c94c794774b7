//! The pipeline's own BigQuery client (`pipeline::bigquery`, typed REST calls on reqwest) against the fake
//! BigQuery, through its public operations: the dataset and the partitioned, clustered tables created once and
//! then only read, an existing table's schema checked, load jobs into a partition (multipart upload, `jobs.get`
//! polls, a transient `errorResult` run again under a new id), `tabledata.list` paged back into candles and
//! instruments, and every failure carrying BigQuery's status and reason, retried only when transient and after
//! the wait a `Retry-After` asks for. What the pipeline never calls (insertAll, queries, listing, deleting) is
//! the official Python and Node clients' part of this binary.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fakes::FakeBigQuery;
use fakes::bigquery::{RecordedRequest, Route};
use fakes::front::{Action, Answer, BodyFault, Front, NetworkFault, Rule, Select, path_prefix};
use market::{Candle, Exchange, Instrument, InstrumentKind, Symbol, TradingDay};
use pipeline::bigquery::schema::{CANDLES_1M, INSTRUMENTS, TableDef};
use pipeline::bigquery::{
    AccessToken, BigQueryAuth, BigQueryClient, BigQueryConfig, BigQueryError, LoadOutcome, candle_to_json,
    instrument_to_json,
};
use pipeline::retry::RetryPolicy;
use serde_json::{Value, json};

const PROJECT: &str = "conformance-project";
const DATASET: &str = "market_data";

fn day() -> TradingDay {
    TradingDay::parse("2024-06-03").expect("a valid date")
}

/// The client as the pipeline configures it, pointed at `api_url`, reading two rows a page so that paging shows.
async fn client(api_url: &str) -> BigQueryClient {
    BigQueryClient::new(BigQueryConfig {
        api_url: api_url.parse().expect("a URL"),
        project: PROJECT.to_owned(),
        dataset: DATASET.to_owned(),
        location: "US".to_owned(),
        auth: BigQueryAuth::StaticToken(AccessToken::new("conformance-token")),
        retry: RetryPolicy::FAST,
        poll_interval: Duration::from_millis(1),
        job_timeout: Duration::from_secs(10),
        page_size: 2,
        table_suffix: String::new(),
    })
    .await
    .expect("a client with a static token builds offline")
}

/// A client with the dataset and both tables in place.
async fn with_tables(fake: &FakeBigQuery) -> BigQueryClient {
    let bq = client(&fake.uri()).await;
    bq.ensure_dataset().await.expect("dataset");
    for def in [&CANDLES_1M, &INSTRUMENTS] {
        bq.ensure_table(def).await.expect("table");
    }
    bq
}

/// `(route, status)` of every request the fake answered since `from`.
fn calls(fake: &FakeBigQuery, from: usize) -> Vec<(Route, u16)> {
    fake.requests()[from..].iter().map(|r| (r.route.unwrap_or(Route::Any), r.status)).collect()
}

fn of_route(fake: &FakeBigQuery, route: Route) -> Vec<RecordedRequest> {
    fake.requests().into_iter().filter(|r| r.route == Some(route)).collect()
}

/// `minute` minutes into the day, with prices that survive BigQuery's FLOAT text exactly.
fn candle(symbol: &str, minute: i64, close: f64) -> Candle {
    Candle {
        exchange: Exchange::parse("bitmex").expect("an exchange"),
        symbol: Symbol::parse(symbol).expect("a symbol"),
        open_time_us: day().start_us() + minute * 60_000_000,
        open: close - 0.5,
        high: close + 1.0,
        low: close - 1.0,
        close,
        volume: 10.0 + minute as f64,
        quote_volume: 1_000.25,
        trade_count: 3 + minute as u64,
        vwap: close,
        buy_volume: 4.0,
        sell_volume: 6.0 + minute as f64,
    }
}

fn instrument(id: &str, available_to: Option<&str>) -> Instrument {
    let at = |text: &str| DateTime::parse_from_rfc3339(text).expect("a time").with_timezone(&Utc);
    Instrument {
        exchange: Exchange::parse("deribit").expect("an exchange"),
        id: id.to_owned(),
        dataset_id: Symbol::parse(id).expect("a symbol"),
        base_currency: "BTC".to_owned(),
        quote_currency: "USD".to_owned(),
        kind: if available_to.is_some() { InstrumentKind::Future } else { InstrumentKind::Perpetual },
        contract_type: available_to.map(|_| "inverse_future".to_owned()),
        active: available_to.is_none(),
        available_since: at("2024-03-01T08:00:00Z"),
        available_to: available_to.map(at),
        price_increment: 2.5,
        amount_increment: 10.0,
        min_trade_amount: 10.0,
        inverse: true,
        contract_multiplier: available_to.map(|_| 10.0),
    }
}

#[tokio::test]
async fn the_dataset_and_partitioned_clustered_tables_are_created_once_and_then_only_read() {
    let fake = FakeBigQuery::start().await;
    let bq = client(&fake.uri()).await;
    bq.ensure_dataset().await.expect("dataset created");
    bq.ensure_table(&CANDLES_1M).await.expect("table created");
    assert_eq!(
        calls(&fake, 0),
        [(Route::GetDataset, 404), (Route::CreateDataset, 200), (Route::GetTable, 404), (Route::CreateTable, 200)]
    );
    let table = fake.table_resource(PROJECT, DATASET, "candles_1m").expect("the table exists");
    assert_eq!(table["timePartitioning"], json!({"type": "DAY", "field": "open_time"}));
    assert_eq!(table["clustering"]["fields"], json!(["exchange", "symbol"]));
    assert_eq!(table["description"], CANDLES_1M.description);
    let fields = table["schema"]["fields"].as_array().expect("fields");
    let got: Vec<(&str, &str, &str)> = fields
        .iter()
        .map(|f| (f["name"].as_str().unwrap_or(""), f["type"].as_str().unwrap_or(""), f["mode"].as_str().unwrap_or("")))
        .collect();
    let want: Vec<(&str, &str, &str)> = CANDLES_1M
        .columns
        .iter()
        .map(|c| (c.name, c.kind.legacy_name(), if c.required { "REQUIRED" } else { "NULLABLE" }))
        .collect();
    assert_eq!(got, want);

    let before = fake.requests().len();
    bq.ensure_dataset().await.expect("dataset exists");
    bq.ensure_table(&CANDLES_1M).await.expect("table exists with its schema");
    assert_eq!(calls(&fake, before), [(Route::GetDataset, 200), (Route::GetTable, 200)], "nothing created twice");
    for request in fake.requests() {
        assert!(request.authorized, "{} carried no bearer token", request.path);
        let agent = request.header("user-agent").unwrap_or_default();
        assert!(agent.starts_with("market-pipeline/"), "{}: {agent}", request.path);
    }
    let dataset_url = format!("{}/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}", fake.uri());
    let dataset: Value = reqwest::get(dataset_url).await.expect("get").json().await.expect("json");
    assert_eq!(dataset["location"], "US");
}

#[tokio::test]
async fn a_dataset_or_table_another_run_created_in_between_is_accepted() {
    let fake = FakeBigQuery::start().await;
    let bq = with_tables(&fake).await;
    // Both exist, but the client's get sees 404 first, as when another run creates them in between.
    fake.fail_next(Route::GetDataset, 1, 404, "notFound");
    fake.fail_next(Route::GetTable, 1, 404, "notFound");
    let before = fake.requests().len();
    bq.ensure_dataset().await.expect("a duplicate dataset is what we wanted");
    bq.ensure_table(&CANDLES_1M).await.expect("a duplicate table is what we wanted");
    assert_eq!(
        calls(&fake, before),
        [(Route::GetDataset, 404), (Route::CreateDataset, 409), (Route::GetTable, 404), (Route::CreateTable, 409)]
    );
    // The response of a create that took effect is lost: the retry's 409 duplicate means success.
    fake.fail_next_after_commit(Route::CreateTable, 1, 500, "backendError");
    let second = TableDef { name: "candles_second", ..CANDLES_1M };
    bq.ensure_table(&second).await.expect("the lost create is recognised");
    assert!(fake.table_exists(PROJECT, DATASET, "candles_second"));
    let creates: Vec<u16> = of_route(&fake, Route::CreateTable).iter().map(|r| r.status).collect();
    assert_eq!(creates[creates.len() - 2..], [500, 409]);
}

/// Creates `candles_1m` with `fields` behind the client's back, then lets `ensure_table` judge it.
#[track_caller]
fn check_existing(fields: Value, expected: Result<(), &str>) -> impl Future<Output = ()> {
    let caller = std::panic::Location::caller();
    async move {
        let fake = FakeBigQuery::start().await;
        let bq = client(&fake.uri()).await;
        bq.ensure_dataset().await.expect("dataset");
        let body = json!({
            "tableReference": {"projectId": PROJECT, "datasetId": DATASET, "tableId": "candles_1m"},
            "schema": {"fields": fields},
        });
        let url = format!("{}/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables", fake.uri());
        let created = reqwest::Client::new().post(url).json(&body).send().await.expect("create");
        assert!(created.status().is_success(), "{caller}: {}", created.status());
        let got = bq.ensure_table(&CANDLES_1M).await.map_err(|err| match err {
            BigQueryError::Schema { table, reason } => format!("{table}: {reason}"),
            other => panic!("{caller}: expected a schema error, got {other:?}"),
        });
        assert_eq!(got, expected.map_err(str::to_owned), "{caller}");
    }
}

#[tokio::test]
async fn an_existing_table_is_accepted_in_either_type_spelling_and_refused_naming_the_column() {
    let columns = |overrides: &[(&str, &str)]| -> Value {
        CANDLES_1M
            .columns
            .iter()
            .map(|c| {
                let standard = match c.kind.legacy_name() {
                    "INTEGER" => "INT64",
                    "FLOAT" => "FLOAT64",
                    other => other,
                };
                let kind = overrides.iter().find(|(name, _)| *name == c.name).map_or(standard, |(_, kind)| *kind);
                json!({"name": c.name, "type": kind})
            })
            .filter(|field| field["type"] != "DROP")
            .collect()
    };
    check_existing(columns(&[]), Ok(())).await;
    check_existing(
        columns(&[("open_time", "STRING")]),
        Err("candles_1m: column open_time is STRING, expected TIMESTAMP"),
    )
    .await;
    check_existing(columns(&[("symbol", "DROP")]), Err("candles_1m: column symbol is missing")).await;
}

#[tokio::test]
async fn a_load_replaces_its_partition_and_reads_back_page_by_page() {
    let fake = FakeBigQuery::start().await;
    let bq = with_tables(&fake).await;
    let candles: Vec<Candle> =
        (0..5).map(|m| candle(if m % 2 == 0 { "XBTUSD" } else { "ETHUSD" }, m, 67_000.5)).collect();
    let rows: Vec<Value> = candles.iter().map(candle_to_json).collect();
    let outcome = bq.load_partition(&CANDLES_1M, day(), &rows, "run").await.expect("loaded");
    let want = LoadOutcome { job_id: "candles_1m_20240603_run_1".to_owned(), output_rows: 5, jobs_created: 1 };
    assert_eq!(outcome, want);
    assert_eq!(fake.partition_rows(PROJECT, DATASET, "candles_1m", "20240603").len(), 5);

    let before = of_route(&fake, Route::ListTableData).len();
    let mut read = bq.read_candles(day()).await.expect("read back");
    let pages = of_route(&fake, Route::ListTableData).split_off(before);
    read.sort_by_key(|c| c.open_time_us);
    assert_eq!(read, candles);
    assert_eq!(pages.len(), 3, "5 rows at 2 a page");
    for (n, page) in pages.iter().enumerate() {
        assert!(page.path.ends_with("/tables/candles_1m$20240603/data"), "{}", page.path);
        assert_eq!(page.query_param("maxResults"), Some("2"));
        assert_eq!(page.query_param("pageToken").is_some(), n > 0, "page {n}: {:?}", page.query);
    }
    assert_eq!(bq.partition_rows(&CANDLES_1M, day()).await.expect("counted"), 5);
    assert_eq!(bq.partition_rows(&CANDLES_1M, day().succ()).await.expect("counted"), 0);

    // A rerun replaces the partition (WRITE_TRUNCATE), it does not add to it.
    let rerun = bq.load_partition(&CANDLES_1M, day(), &rows[..2], "rerun").await.expect("loaded again");
    assert_eq!((rerun.job_id.as_str(), rerun.output_rows), ("candles_1m_20240603_rerun_1", 2));
    assert_eq!(bq.read_candles(day()).await.expect("read back").len(), 2);

    // Instruments, with their NULL cells and TIMESTAMP cells in BigQuery's float seconds.
    let instruments = [instrument("BTC-28JUN24", Some("2024-06-28T08:00:00Z")), instrument("BTC-PERPETUAL", None)];
    let rows: Vec<Value> = instruments.iter().map(|i| instrument_to_json(i, day())).collect();
    bq.load_partition(&INSTRUMENTS, day(), &rows, "run").await.expect("loaded");
    assert_eq!(bq.read_instruments(day()).await.expect("read back"), instruments);
}

#[tokio::test]
async fn the_partition_count_of_a_table_that_does_not_exist_is_zero() {
    let fake = FakeBigQuery::start().await;
    let bq = client(&fake.uri()).await;
    bq.ensure_dataset().await.expect("dataset");
    assert_eq!(bq.partition_rows(&CANDLES_1M, day()).await.expect("a missing table holds nothing"), 0);
    assert_eq!(calls(&fake, 2), [(Route::ListTableData, 404)]);
    let err = bq.read_candles(day()).await.expect_err("nothing to read");
    assert_eq!(err.reason(), Some("notFound"), "{err}");
}

#[tokio::test]
async fn running_jobs_are_polled_and_a_transient_error_result_runs_again_under_a_new_id() {
    let fake = FakeBigQuery::start().await;
    let bq = with_tables(&fake).await;
    fake.set_running_polls(2);
    fake.fail_next_job("backendError");
    let rows: Vec<Value> = (0..3).map(|m| candle_to_json(&candle("XBTUSD", m, 1.5))).collect();
    let outcome = bq.load_partition(&CANDLES_1M, day(), &rows, "k").await.expect("loaded on the second job");
    assert_eq!((outcome.job_id.as_str(), outcome.jobs_created), ("candles_1m_20240603_k_2", 2));
    for job in ["candles_1m_20240603_k_1", "candles_1m_20240603_k_2"] {
        let polls: Vec<RecordedRequest> =
            of_route(&fake, Route::GetJob).into_iter().filter(|r| r.path.ends_with(&format!("/jobs/{job}"))).collect();
        assert_eq!(polls.len(), 3, "{job}: RUNNING twice, then DONE");
        assert!(polls.iter().all(|r| r.query_param("location") == Some("US")), "{polls:?}");
    }

    fake.set_running_polls(0);
    fake.fail_next_job("invalid");
    let err = bq.load_partition(&CANDLES_1M, day(), &rows, "bad").await.expect_err("invalid is final");
    match err {
        BigQueryError::JobFailed { job_id, reason, .. } => {
            assert_eq!((job_id.as_str(), reason.as_str()), ("candles_1m_20240603_bad_1", "invalid"));
        }
        other => panic!("expected a failed job, got {other:?}"),
    }
    let jobs: Vec<String> = fake.jobs().into_iter().map(|j| j.job_id).filter(|id| id.contains("_bad_")).collect();
    assert_eq!(jobs, ["candles_1m_20240603_bad_1"], "not run again");
    assert_eq!(
        fake.partition_rows(PROJECT, DATASET, "candles_1m", "20240603").len(),
        3,
        "the failed job loaded nothing"
    );

    let err = bq.wait_for_job("no_such_job").await.expect_err("an unknown job");
    assert_eq!(err.reason(), Some("notFound"), "{err}");
}

/// What one metadata call ends with after the fake answers `times` × `status` `reason`, and how many requests
/// it took.
#[track_caller]
fn check_failure(
    times: u32,
    status: u16,
    reason: &str,
    expected: Result<u32, (i64, &str)>,
) -> impl Future<Output = ()> {
    let caller = std::panic::Location::caller();
    let reason = reason.to_owned();
    async move {
        let fake = FakeBigQuery::start().await;
        let bq = client(&fake.uri()).await;
        fake.fail_next(Route::GetDataset, times, status, &reason);
        let got = bq.ensure_dataset().await;
        let requests = of_route(&fake, Route::GetDataset).len() as u32;
        match (got, expected) {
            (Ok(()), Ok(attempts)) => assert_eq!(requests, attempts, "{caller}: {status} {reason}"),
            (Err(BigQueryError::Api { code, reason: got, .. }), Err((want_code, want))) => {
                assert_eq!((code, got.as_str()), (want_code, want), "{caller}");
                assert_eq!(requests, 1, "{caller}: {status} {reason} is not retried");
            }
            (got, expected) => panic!("{caller}: {status} {reason}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[tokio::test]
async fn errors_carry_bigquerys_status_and_reason_and_only_transient_ones_are_retried() {
    check_failure(2, 500, "backendError", Ok(3)).await;
    check_failure(1, 503, "internalError", Ok(2)).await;
    check_failure(1, 403, "rateLimitExceeded", Ok(2)).await;
    check_failure(1, 502, "badGateway", Ok(2)).await;
    check_failure(1, 403, "quotaExceeded", Err((403, "quotaExceeded"))).await;
    check_failure(1, 401, "authError", Err((401, "authError"))).await;
    check_failure(1, 400, "invalid", Err((400, "invalid"))).await;

    let fake = FakeBigQuery::start().await;
    let bq = client(&fake.uri()).await;
    fake.fail_next(Route::GetDataset, RetryPolicy::FAST.max_attempts, 503, "backendError");
    match bq.ensure_dataset().await {
        Err(BigQueryError::Exhausted { operation, attempts, last }) => {
            assert_eq!((operation.as_str(), attempts), ("datasets.get", RetryPolicy::FAST.max_attempts));
            assert!(last.starts_with("503 backendError"), "{last}");
        }
        other => panic!("expected the attempts to run out, got {other:?}"),
    }

    // Errors of the creates, as BigQuery words them: a table in a missing dataset, partitioning on a STRING.
    let err = bq.ensure_table(&CANDLES_1M).await.expect_err("no dataset");
    assert!(matches!(&err, BigQueryError::Api { code: 404, operation, .. } if operation == "tables.insert"), "{err:?}");
    bq.ensure_dataset().await.expect("dataset");
    let on_a_string = TableDef { partition_field: "symbol", ..CANDLES_1M };
    let err = bq.ensure_table(&on_a_string).await.expect_err("partitioning on a STRING");
    assert!(matches!(&err, BigQueryError::Api { code: 400, .. }) && err.reason() == Some("invalid"), "{err:?}");
}

/// A front before the fake that answers the first `first` metadata requests (dataset and table gets) itself.
async fn front_answering(fake: &FakeBigQuery, first: u64, answer: Answer) -> Front {
    let front = Front::start(&fake.uri()).await.expect("a front");
    front.add(Rule {
        name: "metadata".to_owned(),
        matcher: path_prefix(&format!("/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}")),
        select: Select::First(first),
        action: Action::Answer(answer),
    });
    front
}

fn rate_limited(retry_after: u64) -> Answer {
    Answer {
        status: 429,
        retry_after: Some(retry_after),
        body: json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED",
                     "errors": [{"reason": "rateLimitExceeded", "message": "slow down"}]}})
        .to_string(),
        after_forwarding: false,
    }
}

#[tokio::test]
async fn retry_after_is_waited_for_on_every_call_and_one_beyond_the_cap_ends_the_call() {
    let fake = FakeBigQuery::start().await;
    let front = front_answering(&fake, 1, rate_limited(1)).await;
    let bq = client(&front.uri()).await;
    bq.ensure_dataset().await.expect("the second attempt succeeds");
    let log = front.requests();
    assert_eq!((log[0].status, log[0].retry_after, log[1].status), (Some(429), Some(1), Some(404)));
    // The policy's own backoff is at most 50 ms: a wait of a second is the server's.
    let waited = log[1].at - log[0].at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");

    let fake = FakeBigQuery::start().await;
    let front = front_answering(&fake, 1, rate_limited(30)).await;
    let bq = client(&front.uri()).await;
    match bq.ensure_dataset().await {
        Err(BigQueryError::RateLimited { operation, retry_after_s, cap_s }) => {
            assert_eq!((operation.as_str(), retry_after_s), ("datasets.get", 30));
            assert_eq!(cap_s, RetryPolicy::FAST.max_retry_after.as_secs());
        }
        other => panic!("expected the call to end rate-limited, got {other:?}"),
    }
    assert_eq!(front.requests().len(), 1, "no second attempt");
}

#[tokio::test]
async fn an_answer_cut_short_or_spoiled_on_its_way_is_asked_for_again() {
    let fake = FakeBigQuery::start().await;
    let bq = with_tables(&fake).await;
    let rows: Vec<Value> = (0..5).map(|m| candle_to_json(&candle("XBTUSD", m, 2.5))).collect();
    bq.load_partition(&CANDLES_1M, day(), &rows, "run").await.expect("loaded");
    let front = Front::start(&fake.uri()).await.expect("a front");
    let table = format!("/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables/candles_1m");
    front.add(Rule {
        name: "truncated".to_owned(),
        matcher: path_prefix(&table),
        select: Select::Calls(vec![1]),
        action: Action::Spoil(BodyFault::Truncated),
    });
    front.fail_next(&format!("{table}$20240603/data"), 1, NetworkFault::ResetMidBody);
    let through_front = client(&front.uri()).await;
    assert_eq!(through_front.read_candles(day()).await.expect("read after retries").len(), 5);
    let log: Vec<(String, Option<String>)> = front.requests().into_iter().map(|r| (r.path, r.fault)).collect();
    let spoiled: Vec<&str> = log.iter().filter(|(_, fault)| fault.is_some()).map(|(path, _)| path.as_str()).collect();
    assert_eq!(spoiled.len(), 2, "a truncated tables.get and a reset tabledata.list: {log:?}");
    assert!(spoiled[0].ends_with("/tables/candles_1m") && spoiled[1].contains("/data?"), "{spoiled:?}");
    // tables.get twice, the first page twice, then the other two pages: each spoiled answer asked for again.
    assert_eq!(log.len(), 2 + 4, "{log:?}");
}
