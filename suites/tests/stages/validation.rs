use harness::world::{DATASET, PROJECT};
use market::checks::Status;
use market::checks::ids::{CANDLE_PER_TRADED_MINUTE, CANDLES_MATCH_TRADES, FILES_PRESENT, VOLUME_ANOMALIES};
use pipeline::store::RunStatus;

use crate::{day, small_world};

/// Appends rows to the candles partition behind the pipeline's back, as a buggy writer would.
async fn append_rows(world: &harness::World, rows: &[serde_json::Value]) {
    let job = serde_json::json!({
        "jobReference": {"projectId": PROJECT, "jobId": format!("tamper-{}", rows.len())},
        "configuration": {"load": {
            "destinationTable": {"projectId": PROJECT, "datasetId": DATASET, "tableId": format!("candles_1m${}", day().compact())},
            "sourceFormat": "NEWLINE_DELIMITED_JSON",
            "writeDisposition": "WRITE_APPEND",
        }},
    });
    let mut body = format!("--b\r\ncontent-type: application/json\r\n\r\n{job}\r\n--b\r\ncontent-type: */*\r\n\r\n");
    for row in rows {
        body.push_str(&row.to_string());
        body.push('\n');
    }
    body.push_str("\r\n--b--");
    let url = format!("{}/upload/bigquery/v2/projects/{PROJECT}/jobs?uploadType=multipart", world.bigquery.uri());
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "multipart/related; boundary=b")
        .body(body)
        .send()
        .await
        .expect("upload");
    assert!(response.status().is_success());
}

#[tokio::test]
async fn validation_catches_a_duplicated_and_a_wrong_candle_that_landed() {
    let world = small_world(41).await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("run");
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(outcome.validation.as_ref().map(|v| v.status), Some(Status::Pass));

    let landed = pipeline.bigquery().read_candles(day()).await.expect("read");
    let duplicate = pipeline::bigquery::candle_to_json(&landed[0]);
    let mut wrong = landed[1].clone();
    wrong.vwap *= 1.01;
    wrong.open_time_us = day().start_us() + 7; // not on a minute boundary, and not a traded minute
    append_rows(&world, &[duplicate, pipeline::bigquery::candle_to_json(&wrong)]).await;

    let validation = pipeline.revalidate(day()).await.expect("validates");
    assert_ne!(validation.status, Status::Pass);
    let matches = validation.checks.iter().find(|c| c.id == CANDLES_MATCH_TRADES).expect("check present");
    assert_eq!(matches.failed, 2, "{:?}", matches.samples);
    let details: Vec<&str> = matches.samples.iter().map(|s| s.detail.as_str()).collect();
    assert!(details.contains(&"landed 2 times"), "{details:?}");
    assert!(details.contains(&"landed candle has no trades behind it"), "{details:?}");
    let coverage = validation.checks.iter().find(|c| c.id == CANDLE_PER_TRADED_MINUTE).expect("present");
    assert_eq!(coverage.failed, 1, "the stray candle is a candle for a minute without trades");
}

#[tokio::test]
async fn revalidation_downloads_missing_files_again_and_counts_the_unavailable_ones() {
    let world = small_world(42).await;
    let pipeline = world.pipeline().await.expect("pipeline");
    assert_eq!(pipeline.run_day(day(), "test").await.expect("run").status, RunStatus::Succeeded);
    std::fs::remove_dir_all(world.data_dir.path().join("trades")).expect("remove files");
    wiremock::Mock::given(wiremock::matchers::path(crate::file_path("bitmex", "XBTUSD")))
        .respond_with(wiremock::ResponseTemplate::new(404).set_body_string(r#"{"code":404,"message":"gone"}"#))
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let validation = pipeline.revalidate(day()).await.expect("validates");
    assert_eq!(validation.status, Status::Fail);
    let files = validation.check(FILES_PRESENT).expect("present");
    assert_eq!((files.evaluated, files.failed), (2, 1), "BTCUSDT was downloaded again, XBTUSD could not be");
    assert!(files.samples[0].symbol.as_ref().is_some_and(|s| s.as_str() == "XBTUSD"));
    let matches = validation.check(CANDLES_MATCH_TRADES).expect("present");
    assert!(matches.failed > 0, "XBTUSD candles in BigQuery have no trades behind them any more");
    // The re-validation is stored next to the run's own validation.
    let history = pipeline.store().score_history(day(), day()).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, "fail", "the latest validation of the date wins");
}

#[tokio::test]
async fn a_volume_far_below_the_trailing_window_warns_and_shows_its_baseline() {
    let world = small_world(43).await;
    let pipeline = world.pipeline().await.expect("pipeline");
    // Ten earlier dates traded ten times today's volume of XBTUSD.
    let truth = world
        .generator
        .file_truth(
            &market::Exchange::parse("bitmex").expect("ok"),
            &market::Symbol::parse("XBTUSD").expect("ok"),
            day(),
        )
        .expect("truth");
    let volume: f64 = truth.candles.iter().map(|c| c.volume).sum();
    let mut past = day();
    for i in 0..10 {
        past = past.pred();
        sqlx::query("INSERT INTO validation_metrics (day, exchange, symbol, metric, value) VALUES ($1, 'bitmex', 'XBTUSD', 'volume', $2)")
            .bind(past.date())
            .bind(volume * (10.0 + f64::from(i % 3)))
            .execute(pipeline.store().pool())
            .await
            .expect("history inserted");
    }
    let outcome = pipeline.run_day(day(), "test").await.expect("run");
    assert_eq!(pipeline::cli::Exit::of_run(&outcome).code(), 1, "exit code 1: warn");
    let validation = outcome.validation.expect("validated");
    assert_eq!(validation.status, Status::Warn, "an anomaly warns, it does not fail the date");
    let anomalies = validation.check(VOLUME_ANOMALIES).expect("present");
    assert_eq!((anomalies.failed, anomalies.status), (1, Status::Warn));
    let baseline = validation.baselines.iter().find(|b| b.anomalous).expect("baseline reported");
    assert_eq!(
        (baseline.exchange.as_str(), baseline.symbol.as_str(), baseline.metric.as_str(), baseline.history),
        ("bitmex", "XBTUSD", "volume", 10)
    );
    assert!((baseline.median / volume - 11.0).abs() < 1e-9, "{baseline:?}");
    // Today's metrics are now history for tomorrow.
    let stored: f64 = sqlx::query_scalar("SELECT value FROM validation_metrics WHERE day = $1 AND exchange = 'bitmex' AND symbol = 'XBTUSD' AND metric = 'volume'")
        .bind(day().date())
        .fetch_one(pipeline.store().pool())
        .await
        .expect("stored");
    assert!((stored - volume).abs() <= volume * 1e-9);
}
