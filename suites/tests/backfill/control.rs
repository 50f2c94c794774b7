//! The backfill control API (`--control-listen`) as a platform drives it: a real `pipeline worker --follow` process
//! with `PIPELINE_CONTROL_TOKEN` set, called over HTTP. Only the right bearer token is let in (a missing, wrong or
//! malformed one gets the same 401), a backfill posted is enqueued and run by the worker, the same request again
//! while it is unfinished gets its id and enqueues nothing, a cancel leaves the queued dates unrun, bad requests
//! get the library's message, and the token never reaches the process's output, even with debug logs.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use market::{DateRange, TradingDay};
use pipeline::store::{JobStatus, Store};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{binary, eventually, world};

/// The token the served processes require (never to be seen in their output).
const TOKEN: &str = "ctl-7f3a9c2e41b8d6055e9f1a2b";

/// A process serving the control API: killed when dropped (on every path, a failed assertion included), with
/// the base URL it printed and everything it wrote on standard output and error.
struct Served {
    child: tokio::process::Child,
    base: String,
    output: Arc<Mutex<String>>,
    client: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Appends every line of `stream` to `output`; the first `control: URL` line's URL goes to `found`.
fn drain(
    stream: impl AsyncRead + Unpin + Send + 'static,
    output: Arc<Mutex<String>>,
    mut found: Option<tokio::sync::oneshot::Sender<String>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("control: ")
                && let Some(found) = found.take()
            {
                let _ = found.send(url.to_owned());
            }
            let mut output = output.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            output.push_str(&line);
            output.push('\n');
        }
    });
}

impl Served {
    /// Starts `pipeline ARGS --control-listen 127.0.0.1:0` in `world` with debug logs, and waits for its address.
    async fn start(world: &harness::World, args: &[&str]) -> Served {
        let mut child = tokio::process::Command::new(binary())
            .envs(world.env())
            .env("PIPELINE_DATA_DIR", world.data_dir.path().join("data"))
            .env("RUST_LOG", "debug")
            .env("PIPELINE_CONTROL_TOKEN", TOKEN)
            .args(args)
            .args(["--control-listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn");
        let output = Arc::new(Mutex::new(String::new()));
        let (found, address) = tokio::sync::oneshot::channel();
        drain(child.stdout.take().expect("stdout"), Arc::clone(&output), None);
        drain(child.stderr.take().expect("stderr"), Arc::clone(&output), Some(found));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        let mut served = Served { child, base: String::new(), output, client };
        let url = tokio::time::timeout(Duration::from_secs(60), address).await;
        let Ok(Ok(url)) = url else {
            panic!("no `control: URL` line within a minute:\n{}", served.output());
        };
        served.base = url.strip_suffix("/backfills").expect("a /backfills URL").to_owned();
        served
    }

    fn output(&self) -> String {
        self.output.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// `METHOD path` with `authorization` as given and `body` as raw text: the status, the headers and the
    /// body as JSON (every answer of the API is JSON).
    async fn call_as(
        &self,
        authorization: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_owned());
        }
        let response = request.send().await.expect("the API answers");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let text = response.text().await.expect("a body");
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
        (status, headers, value)
    }

    /// As [`Served::call_as`], with the right token.
    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, headers, value) = self.call_as(Some(&format!("Bearer {TOKEN}")), method, path, body).await;
        let content_type = headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        assert_eq!(content_type, Some("application/json"), "{value}");
        (status, value)
    }

    /// SIGTERM, then the exit code (a following worker stops cleanly).
    async fn stop(&mut self) -> Option<i32> {
        let pid = self.child.id().expect("running");
        let killed = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await;
        status.expect("stops within a minute").expect("waited").code()
    }

    /// The process's output never holds the token, and it logged its requests by status.
    fn assert_token_never_shown(&self) {
        let output = self.output();
        assert!(!output.contains(TOKEN), "the token is in the output:\n{output}");
        assert!(output.contains("Control API request.") && output.contains("status=401"), "{output}");
        assert!(output.contains("DEBUG"), "debug logs were on: {output}");
    }
}

fn day(text: &str) -> TradingDay {
    TradingDay::parse(text).expect("valid")
}

#[tokio::test]
async fn only_the_right_token_is_let_in_and_a_posted_backfill_is_run_by_the_worker() {
    let world = world(41).await;
    let mut api =
        Served::start(&world, &["worker", "--follow", "--worker-id", "api-worker", "--daily-slots", "0"]).await;

    // Without the right token: 401 with `www-authenticate: Bearer`, the same answer whatever is wrong.
    let same_length_wrong: String = TOKEN.chars().rev().collect();
    let unauthorized = api.call_as(None, Method::GET, "/backfills", None).await;
    assert_eq!(unauthorized.0, 401, "{}", unauthorized.2);
    assert_eq!(unauthorized.1.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    assert!(unauthorized.2["error"].as_str().is_some_and(|e| e.contains("bearer token")), "{}", unauthorized.2);
    for authorization in [
        format!("Bearer {same_length_wrong}"),
        "Bearer short".to_owned(),
        format!("Bearer {TOKEN}x"),
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
        "Bearer ".to_owned(),
    ] {
        for (method, path) in [(Method::GET, "/backfills"), (Method::POST, "/backfills"), (Method::GET, "/nowhere")] {
            let (status, headers, body) = api.call_as(Some(&authorization), method.clone(), path, Some("{}")).await;
            assert_eq!((status, &body), (401, &unauthorized.2), "{authorization:?} {method} {path}");
            assert_eq!(headers.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
        }
    }

    // With it: the routes, and what is not one.
    assert_eq!(api.call(Method::GET, "/backfills", None).await, (200, json!([])));
    let (status, stats) = api.call(Method::GET, "/backfills/stats", None).await;
    assert_eq!((status, &stats["pending"], &stats["completed"]), (200, &json!(0), &json!(0)), "{stats}");
    assert_eq!(api.call(Method::GET, "/nowhere", None).await.0, 404);
    assert_eq!(api.call(Method::GET, "/backfills?limit=many", None).await.0, 400);
    let (status, headers, _) = api.call_as(Some(&format!("Bearer {TOKEN}")), Method::DELETE, "/backfills", None).await;
    assert_eq!((status, headers.get("allow").and_then(|v| v.to_str().ok())), (405, Some("GET, POST")));
    assert_eq!(api.call(Method::POST, "/backfills/abc/cancel", None).await.0, 400);
    let (status, body) = api.call(Method::POST, "/backfills/999999/cancel", None).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("there is no backfill 999999")), "{body}");

    // Bad requests get the library's message, and nothing is recorded.
    let too_big =
        format!("{{\"start\": \"2024-06-01\", \"end\": \"2024-06-02\", \"requested_by\": \"{}\"}}", "x".repeat(70_000));
    for (body, status, message) in [
        (r#"{"start": "2024-06-30", "end": "2024-06-01"}"#, 400, "Start date 2024-06-30 is after end date 2024-06-01"),
        (
            r#"{"start": "2024-06-01", "end": "2099-01-01", "max_days": 100000}"#,
            422,
            "End date 2099-01-01 is in the future or today",
        ),
        (r#"{"start": "2024-06-01", "end": "2024-08-01"}"#, 422, "more than --max-days 31"),
        (r#"{"start": "2024-06-01", "end": "2024-06-02", "symbols": ["NOPE"]}"#, 422, "unknown symbol \"NOPE\""),
        (
            r#"{"start": "2024-06-01", "end": "2024-06-02", "exchanges": ["kraken"]}"#,
            422,
            "unknown exchange \"kraken\"",
        ),
        (r#"{"start": "2024-6-1", "end": "2024-06-02"}"#, 400, "expected YYYY-MM-DD"),
        (r#"{"start": "2024-06-01", "end": "2024-06-02", "symbol": ["XBTUSD"]}"#, 400, "unknown field `symbol`"),
        ("{not json", 400, "not valid JSON"),
        ("", 400, "a JSON body is required"),
        (too_big.as_str(), 413, "larger than 64 KiB"),
    ] {
        let (got, answer) = api.call(Method::POST, "/backfills", Some(body)).await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(got == status && error.contains(message), "{}: {got} {answer}", &body[..body.len().min(80)]);
    }
    assert_eq!(api.call(Method::GET, "/backfills", None).await, (200, json!([])), "nothing recorded");

    // A backfill posted is enqueued, and the worker runs it.
    let request = r#"{"start": "2024-06-03", "end": "2024-06-04", "requested_by": "platform"}"#;
    let (status, created) = api.call(Method::POST, "/backfills", Some(request)).await;
    assert_eq!((status, &created["dates"], &created["existing"]), (201, &json!(2), &json!(false)), "{created}");
    let id = created["id"].as_i64().expect("an id");
    eventually("both dates completed, as the stats say", Duration::from_secs(120), || async {
        api.call(Method::GET, "/backfills/stats", None).await.1["completed"] == json!(2)
    })
    .await;
    let (status, list) = api.call(Method::GET, "/backfills?limit=5", None).await;
    assert_eq!(status, 200);
    assert_eq!((&list[0]["id"], &list[0]["requested_by"]), (&json!(id), &json!("platform")), "{list}");
    assert_eq!((&list[0]["start"], &list[0]["dates"]["completed"]), (&json!("2024-06-03"), &json!(2)), "{list}");
    for d in ["2024-06-03", "2024-06-04"] {
        let landed = harness::run::landed_candles(&world.bigquery, day(d)).expect("rows");
        assert_eq!(landed.len(), world.generator.day_truth(day(d)).candles().count(), "{d}");
    }
    // The same request once it is done is a new backfill with nothing to run: both dates are complete.
    let (status, again) = api.call(Method::POST, "/backfills", Some(request)).await;
    assert_eq!((status, &again["dates"], &again["existing"]), (201, &json!(0), &json!(false)), "{again}");
    assert_ne!(again["id"], json!(id));

    assert_eq!(api.stop().await, Some(0), "{}", api.output());
    api.assert_token_never_shown();
}

#[tokio::test]
async fn the_same_request_again_gets_the_unfinished_backfill_and_a_cancel_leaves_its_queued_dates_unrun() {
    let world = world(42).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    // The first date hangs for 30 s, so the worker (one slot) holds it while the other dates wait in the queue.
    wiremock::Mock::given(wiremock::matchers::path("/v1/bitmex/trades/2024/06/01/XBTUSD.csv.gz"))
        .respond_with(wiremock::ResponseTemplate::new(503).set_delay(Duration::from_secs(30)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let args = ["worker", "--follow", "--parallel", "1", "--daily-slots", "0", "--worker-id", "slow"];
    let mut api = Served::start(&world, &args).await;
    let request = r#"{"start": "2024-06-01", "end": "2024-06-10"}"#;
    let (status, created) = api.call(Method::POST, "/backfills", Some(request)).await;
    assert_eq!((status, &created["dates"], &created["existing"]), (201, &json!(10), &json!(false)), "{created}");
    let id = created["id"].as_i64().expect("an id");

    // Again while it is unfinished: its id, and nothing new.
    let (status, again) = api.call(Method::POST, "/backfills", Some(request)).await;
    assert_eq!((status, &again["id"], &again["existing"]), (200, &json!(id), &json!(true)), "{again}");
    assert_eq!(again["dates"], json!(10), "{again}");
    assert!(again["message"].as_str().is_some_and(|m| m.contains("nothing enqueued")), "{again}");
    let (_, list) = api.call(Method::GET, "/backfills", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "one backfill recorded: {list}");
    assert_eq!((&list[0]["requested_by"], &list[0]["status"]), (&json!("api"), &json!("enqueued")), "{list}");

    let first = day("2024-06-01");
    eventually("the worker to hold the first date", Duration::from_secs(30), || async {
        matches!(store.job(first).await, Ok(Some(job)) if job.status == JobStatus::Processing)
    })
    .await;
    let cancel = r#"{"now": true, "by": "platform"}"#;
    let path = format!("/backfills/{id}/cancel");
    let refused = api.call_as(Some("Bearer not-the-token-at-all"), Method::POST, &path, Some(cancel)).await;
    assert_eq!(refused.0, 401, "{}", refused.2);
    assert_eq!(api.call(Method::GET, "/backfills", None).await.1[0]["status"], json!("enqueued"), "not cancelled");
    let (status, outcome) = api.call(Method::POST, &path, Some(cancel)).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(
        outcome,
        json!({"backfills": [id], "queued": 9, "in_flight": [{"day": "2024-06-01", "worker_id": "slow"}],
               "now": true, "by": "platform"})
    );
    eventually("the worker to abandon the first date", Duration::from_secs(30), || async {
        matches!(store.job(first).await, Ok(Some(job)) if job.status != JobStatus::Processing)
    })
    .await;
    // Time for the worker to claim more, were the cancelled dates claimable (it polls every second); none ran.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let range = DateRange::parse("2024-06-01", "2024-06-10").expect("valid");
    let jobs = store.jobs(range).await.expect("jobs");
    assert_eq!(jobs.len(), 10);
    for job in jobs {
        assert_eq!(job.status, JobStatus::Cancelled, "{}: the first abandoned, the others never claimed", job.day);
        assert!(harness::run::landed_candles(&world.bigquery, job.day).expect("rows").is_empty(), "{}", job.day);
    }
    let (_, list) = api.call(Method::GET, "/backfills", None).await;
    assert_eq!((&list[0]["status"], &list[0]["cancelled_by"]), (&json!("cancelled"), &json!("platform")), "{list}");
    // Cancelling it again changes nothing; an unfinished twin is no more, so the same request is a new backfill.
    let (status, outcome) = api.call(Method::POST, &path, None).await;
    assert_eq!(
        (status, &outcome["backfills"], &outcome["queued"], &outcome["by"]),
        (200, &json!([]), &json!(0), &json!("api"))
    );

    assert_eq!(api.stop().await, Some(0), "{}", api.output());
    api.assert_token_never_shown();
}

/// Refused before anything runs (no database needed): no token, a short one (not shown), a worker that is not a
/// service, `schedule --once`, and a taken port. Exit 3 with the reason.
#[test]
fn the_control_api_is_refused_without_a_good_token_a_service_or_a_free_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("address").to_string();
    let run = |token: Option<&str>, args: &[&str]| {
        let mut command = std::process::Command::new(binary());
        command.env_remove("PIPELINE_CONTROL_TOKEN").env_remove("PIPELINE_CONTROL_LISTEN").env("RUST_LOG", "debug");
        if let Some(token) = token {
            command.env("PIPELINE_CONTROL_TOKEN", token);
        }
        let out = command.args(args).stdin(Stdio::null()).output().expect("runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let follow = ["worker", "--follow", "--control-listen", "127.0.0.1:0"];
    for (token, args, message) in [
        (None, &follow[..], "set PIPELINE_CONTROL_TOKEN"),
        (Some("  "), &follow[..], "set PIPELINE_CONTROL_TOKEN"),
        (Some("tiny-token"), &follow[..], "16 characters or more"),
        (Some(TOKEN), &["worker", "--control-listen", "127.0.0.1:0"][..], "needs --follow"),
        (Some(TOKEN), &["schedule", "--once", "--control-listen", "127.0.0.1:0"][..], "not with --once"),
        (Some(TOKEN), &["worker", "--follow", "--control-listen", taken.as_str()][..], "cannot listen there"),
    ] {
        let (code, output) = run(token, args);
        assert_eq!(code, Some(3), "{args:?}: {output}");
        assert!(output.contains(message), "{args:?}: {output}");
        assert!(!output.contains("tiny-token") && !output.contains(TOKEN), "{args:?}: the token shown: {output}");
    }
}
