//! Prometheus metrics as a platform reads them: scraped from a following worker (with its health and readiness
//! endpoints), written for the textfile collector and pushed to a Pushgateway by a one-shot run.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use pipeline::store::{JobStatus, Store};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{binary, eventually, world};

/// Parses its first argument with `prometheus_client.parser` and prints `{family: type}` as JSON.
const PARSE: &str = "import json, sys\nfrom prometheus_client.parser import text_string_to_metric_families\n\
print(json.dumps({f.name: f.type for f in text_string_to_metric_families(sys.argv[1])}))";

fn pipeline_command(world: &harness::World) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary());
    command
        .envs(world.env())
        .env("PIPELINE_DATA_DIR", world.data_dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The samples of a text exposition, `name{labels}` → value, after checking every line is a comment or a sample.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("HELP pipeline_") || comment.starts_with("TYPE pipeline_"), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        assert!(series.starts_with("pipeline_"), "{line}");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(out.insert(series.to_owned(), value).is_none(), "a series twice: {line}");
    }
    out
}

#[tokio::test]
async fn a_following_worker_serves_metrics_health_and_readiness_and_counts_the_dates_it_runs() {
    let world = world(31).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    store.seed(market::DateRange::parse("2024-06-10", "2024-06-11").expect("range"), None).await.expect("seeded");
    let mut worker = pipeline_command(&world)
        .args(["worker", "--follow", "--worker-id", "scraped", "--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(worker.stderr.take().expect("stderr")).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("readable") {
            if let Some(url) = line.strip_prefix("metrics: ") {
                return url.to_owned();
            }
        }
        panic!("the worker ended without serving metrics");
    })
    .await
    .expect("the metrics address within a minute");
    // Keep draining its standard error so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let base = url.strip_suffix("/metrics").expect("a /metrics URL").to_owned();
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{base}{path}"));
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned());
            (status, content_type, response.text().await.expect("a body"))
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200, "the database answers");
    assert_eq!(get("/nowhere").await.0, 404);

    eventually("both dates counted in the metrics", Duration::from_secs(120), || async {
        let text = get("/metrics").await.2;
        samples(&text).get("pipeline_runs_total{status=\"succeeded\"}") == Some(&2.0)
    })
    .await;
    let (status, content_type, text) = get("/metrics").await;
    assert_eq!((status, content_type.as_deref()), (200, Some("text/plain; version=0.0.4; charset=utf-8")));
    assert!(text.contains("# TYPE pipeline_stage_duration_seconds histogram"), "{text}");
    let found = samples(&text);
    for stage in ["instruments", "download", "candles", "upload", "validation"] {
        assert_eq!(
            found.get(&format!("pipeline_stage_duration_seconds_count{{stage=\"{stage}\"}}")),
            Some(&2.0),
            "{text}"
        );
    }
    let trades = found["pipeline_rows_total{stage=\"download\"}"];
    assert!(trades > 0.0, "{text}");
    assert_eq!(found["pipeline_backfill_jobs{status=\"completed\"}"], 2.0, "{text}");
    assert_eq!(found["pipeline_backfill_jobs{status=\"pending\"}"], 0.0, "{text}");
    assert_eq!(found["pipeline_validation_score{dimension=\"completeness\"}"], 1.0, "{text}");
    assert_eq!(found["pipeline_tardis_retries_total"], 0.0, "{text}");
    let day_11 = 1_718_064_000.0; // 2024-06-11T00:00:00Z, the later date: oldest first
    assert_eq!(found["pipeline_last_run_date_timestamp_seconds"], day_11, "{text}");
    assert!(found["pipeline_last_success_timestamp_seconds"] > 1.7e9, "{text}");
    // Prometheus' own parser (its Python client's) reads the exposition: every family, of the type declared.
    let parsed = std::process::Command::new(suites::conformance_python())
        .args(["-c", PARSE, &text])
        .output()
        .expect("the venv's python runs");
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    let families: BTreeMap<String, String> = serde_json::from_slice(&parsed.stdout).expect("JSON");
    for (family, kind) in [
        ("pipeline_runs", "counter"),
        ("pipeline_stage_duration_seconds", "histogram"),
        ("pipeline_rows", "counter"),
        ("pipeline_validation_score", "gauge"),
        ("pipeline_backfill_jobs", "gauge"),
        ("pipeline_tardis_retries", "counter"),
        ("pipeline_last_success_timestamp_seconds", "gauge"),
    ] {
        assert_eq!(families.get(family).map(String::as_str), Some(kind), "{family}: {families:?}");
    }
    let jobs = store.jobs(market::DateRange::parse("2024-06-10", "2024-06-11").expect("range")).await.expect("jobs");
    assert!(jobs.iter().all(|j| j.status == JobStatus::Completed));

    let pid = worker.id().expect("running");
    let killed = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), worker.wait()).await.expect("stops").expect("waited");
    assert_eq!(status.code(), Some(0), "a SIGTERM stops a following worker cleanly");
}

#[tokio::test]
async fn a_run_writes_its_metrics_for_the_textfile_collector_and_pushes_them_to_a_pushgateway() {
    let world = world(32).await;
    let gateway = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("PUT"))
        .and(wiremock::matchers::path("/metrics/job/pipeline"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .expect(1)
        .mount(&gateway)
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pipeline.prom");
    let out = pipeline_command(&world)
        .args(["run", "--date", "2024-06-12", "--metrics-file"])
        .arg(&file)
        .args(["--metrics-push", &gateway.uri()])
        .output()
        .await
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(&file).expect("the metrics file");
    let found = samples(&written);
    assert_eq!(found["pipeline_runs_total{status=\"succeeded\"}"], 1.0, "{written}");
    assert_eq!(found["pipeline_stage_duration_seconds_count{stage=\"upload\"}"], 1.0, "{written}");
    assert!(found["pipeline_rows_total{stage=\"candles\"}"] > 0.0, "{written}");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("listable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["pipeline.prom"], "nothing half-written is left beside it");

    let pushed = gateway.received_requests().await.expect("recorded");
    assert_eq!(pushed.len(), 1);
    let content_type = pushed[0].headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(String::from_utf8_lossy(&pushed[0].body), written, "the same metrics pushed as written");

    // A port already taken is refused before any run, as bad input.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("bound").to_string();
    let out = pipeline_command(&world)
        .args(["run", "--date", "2024-06-13", "--metrics-listen", &addr])
        .output()
        .await
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("--metrics-listen {addr}: cannot listen there")), "{stderr}");
    let store = Store::connect(world.database.url()).await.expect("store");
    let day = market::TradingDay::parse("2024-06-13").expect("valid");
    assert!(store.runs_of_day(day).await.expect("runs").is_empty(), "no run started");
}
