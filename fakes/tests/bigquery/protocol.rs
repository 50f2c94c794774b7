//! Cross-cutting wire behaviour: unknown routes, gzip uploads, paging of list calls, the request log, binding a
//! given listener.

use fakes::FakeBigQuery;
use fakes::bigquery::Route;
use rstest::rstest;
use serde_json::{Value, json};

use crate::support::{D, Framing, JUNE_1, P, World, candle, gzip, load_job, multipart, ndjson};

#[tokio::test]
async fn an_unknown_route_gets_a_404_in_bigquery_error_shape() {
    let world = World::start().await;
    let answer = world.send(world.http.get(format!("{}/storage/v1/b", world.fake.uri()))).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["error"]["code"], 404);
    assert_eq!(answer.body["error"]["status"], "NOT_FOUND");
    let item = &answer.body["error"]["errors"][0];
    assert_eq!(item["reason"], "notFound");
    assert_eq!(item["domain"], "global");
    assert!(
        item.as_object().into_iter().flatten().all(|(_, value)| value.is_string()),
        "only strings in errors[]: {item}"
    );
    let logged = world.fake.requests().pop().expect("unknown routes are logged too");
    assert_eq!((logged.route, logged.status), (None, 404));
}

#[tokio::test]
async fn a_gzip_multipart_upload_is_decompressed() {
    let world = World::start().await;
    world.create_candles().await;
    let (content_type, body) = multipart(
        &load_job("gz", "candles", "WRITE_APPEND"),
        ndjson(&[candle("A", JUNE_1, 0, 1.0)]).as_bytes(),
        Framing::Python,
    );
    let url = format!("{}/upload/bigquery/v2/projects/{P}/jobs?uploadType=multipart", world.fake.uri());
    let answer = world
        .send(
            world
                .http
                .post(url)
                .header("content-type", content_type)
                .header("content-encoding", "gzip")
                .body(gzip(&body)),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], json!({"state": "DONE"}));
    assert_eq!(world.rows("candles").len(), 1);
}

#[tokio::test]
async fn a_multipart_body_without_its_closing_delimiter_is_400() {
    let world = World::start().await;
    world.create_candles().await;
    let url = format!("{}/upload/bigquery/v2/projects/{P}/jobs?uploadType=multipart", world.fake.uri());
    let answer = world
        .send(
            world
                .http
                .post(url)
                .header("content-type", "multipart/related; boundary=B")
                .body("--B\r\ncontent-type: application/json\r\n\r\n{}"),
        )
        .await;
    assert_eq!((answer.status, answer.reason()), (400, "invalid"));
}

#[tokio::test]
async fn the_request_log_records_what_tests_assert_on() {
    let world = World::start().await;
    world.create_candles().await;
    world.load(&load_job("logged", "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    let _ =
        world.send(world.http.get(world.url(&format!("/projects/{P}/datasets/{D}"))).bearer_auth("fake-token")).await;
    let log = world.fake.requests();
    let routes: Vec<Option<Route>> = log.iter().map(|request| request.route).collect();
    assert_eq!(
        routes,
        [Some(Route::CreateDataset), Some(Route::CreateTable), Some(Route::InsertJob), Some(Route::GetDataset)]
    );
    let upload = &log[2];
    assert_eq!(upload.method, "POST");
    assert_eq!(upload.path, "/upload/bigquery/v2/projects/p/jobs");
    assert_eq!(upload.query_param("uploadType"), Some("multipart"));
    assert!(upload.header("content-type").is_some_and(|value| value.starts_with("multipart/related")));
    assert_eq!(upload.job_id.as_deref(), Some("logged"));
    assert_eq!(upload.status, 200);
    assert!(upload.body_bytes > 0);
    assert!(!upload.authorized && log[3].authorized);
}

#[tokio::test]
async fn start_on_serves_on_the_listener_it_is_given() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = listener.local_addr().expect("a bound address").port();
    let fake = FakeBigQuery::start_on(listener).await;
    assert_eq!(fake.uri(), format!("http://127.0.0.1:{port}"));
    let status = reqwest::get(format!("{}/bigquery/v2/projects/{P}/datasets/{D}", fake.uri()))
        .await
        .expect("the fake answers")
        .status();
    assert_eq!(status.as_u16(), 404);
}

/// The names a list answer gives its items, in order.
fn listed_names(body: &Value, items: &str) -> Vec<String> {
    let name = |item: &Value| {
        ["datasetReference", "tableReference", "jobReference"]
            .iter()
            .find_map(|reference| item[reference].as_object())
            .and_then(|reference| ["datasetId", "tableId", "jobId"].iter().find_map(|key| reference.get(*key)))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    body[items].as_array().map(|array| array.iter().map(name).collect()).unwrap_or_default()
}

#[rstest]
#[case::datasets("/projects/p/datasets", "datasets")]
#[case::tables("/projects/p/datasets/market/tables", "tables")]
#[case::jobs("/projects/p/jobs", "jobs")]
#[tokio::test]
async fn list_calls_page_with_max_results_and_next_page_token(#[case] path: &str, #[case] items: &str) {
    // Python's `list_jobs(max_results=1)` and friends rely on it: a fake that answered everything at once made
    // `list_jobs(max_results=3)` yield every job (found by the conformance suite).
    let world = World::start().await;
    world.create_candles().await;
    for name in ["b_second", "c_third"] {
        let dataset =
            world.post(&format!("/projects/{P}/datasets"), &json!({"datasetReference": {"datasetId": name}})).await;
        assert_eq!(dataset.status, 200);
        let table =
            world.post(&format!("/projects/{P}/datasets/{D}/tables"), &crate::support::candles_table(name)).await;
        assert_eq!(table.status, 200);
    }
    for job_id in ["job_1", "job_2", "job_3"] {
        world.load(&load_job(job_id, "candles", "WRITE_APPEND"), &[candle("A", JUNE_1, 0, 1.0)]).await;
    }
    let whole = world.get(path).await;
    let everything = listed_names(&whole.body, items);
    assert_eq!(everything.len(), 3, "{}", whole.body);
    assert!(whole.body.get("nextPageToken").is_none());

    let first = world.get(&format!("{path}?maxResults=2&prettyPrint=false")).await;
    assert_eq!(listed_names(&first.body, items), everything[..2]);
    let token = first.body["nextPageToken"].as_str().expect("more items remain").to_owned();
    let rest = world.get(&format!("{path}?maxResults=2&pageToken={token}")).await;
    assert_eq!(listed_names(&rest.body, items), everything[2..]);
    assert!(rest.body.get("nextPageToken").is_none(), "{}", rest.body);
    if items == "tables" {
        assert_eq!((first.body["totalItems"].clone(), rest.body["totalItems"].clone()), (json!(3), json!(3)));
    }
    let bad = world.get(&format!("{path}?pageToken=not-a-token")).await;
    assert_eq!((bad.status, bad.reason()), (400, "invalid"));
}
