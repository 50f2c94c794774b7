use market::{Exchange, Symbol};
use pipeline::tardis::TardisError;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{day, file_path, small_world};

fn btc() -> (Exchange, Symbol) {
    (Exchange::parse("binance-futures").expect("ok"), Symbol::parse("BTCUSDT").expect("ok"))
}

#[tokio::test]
async fn a_downloaded_file_is_byte_identical_and_verified() {
    let world = small_world(1).await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let (exchange, symbol) = btc();
    let file =
        pipeline.tardis().download_trades(&exchange, &symbol, day(), world.data_dir.path()).await.expect("downloads");
    let served = world.generator.trades_csv_gz(&exchange, &symbol, day()).expect("generated");
    assert_eq!(std::fs::read(&file.path).expect("file on disk"), served);
    let truth = world.generator.file_truth(&exchange, &symbol, day()).expect("truth");
    assert_eq!(file.stats.rows, truth.rows);
    assert_eq!(file.rows_before_day, truth.rows_before_day);
    assert_eq!((file.stats.rejected, file.attempts), (0, 1));
    let leftovers: Vec<_> = std::fs::read_dir(file.path.parent().expect("dir"))
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "no partial files left behind");
}

#[tokio::test]
async fn server_errors_are_retried_with_a_retry_attempt_marker() {
    let world = small_world(2).await;
    Mock::given(method("GET"))
        .and(path(file_path("binance-futures", "BTCUSDT")))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream busy"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let (exchange, symbol) = btc();
    let file = pipeline
        .tardis()
        .download_trades(&exchange, &symbol, day(), world.data_dir.path())
        .await
        .expect("retried to success");
    assert_eq!(file.attempts, 3);
    let served: Vec<_> =
        world.tardis.requests().into_iter().filter(|r| r.path == file_path("binance-futures", "BTCUSDT")).collect();
    assert_eq!(served.len(), 1, "the mock's own route answered only the third attempt");
    assert_eq!(served[0].query.as_deref(), Some("retryAttempt=2"));
}

#[tokio::test]
async fn a_429_waits_for_retry_after_and_a_long_one_gives_up() {
    let world = small_world(3).await;
    Mock::given(method("GET"))
        .and(path(file_path("binance-futures", "BTCUSDT")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_string(r#"{"code":429,"message":"slow down"}"#),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    Mock::given(method("GET"))
        .and(path(file_path("bitmex", "XBTUSD")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3600")
                .set_body_string(r#"{"code":429,"message":"quota"}"#),
        )
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let (exchange, symbol) = btc();
    let started = std::time::Instant::now();
    let file =
        pipeline.tardis().download_trades(&exchange, &symbol, day(), world.data_dir.path()).await.expect("retried");
    assert_eq!(file.attempts, 2);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "Retry-After was honoured");

    let err = pipeline
        .tardis()
        .download_trades(
            &Exchange::parse("bitmex").expect("ok"),
            &Symbol::parse("XBTUSD").expect("ok"),
            day(),
            world.data_dir.path(),
        )
        .await
        .expect_err("a quota-sized wait is not worth waiting");
    assert!(matches!(err, TardisError::RateLimited { retry_after_s: 3600, .. }), "{err}");
}

#[tokio::test]
async fn not_found_and_forbidden_are_final_and_not_retried() {
    let world = small_world(4).await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let tardis = pipeline.tardis();
    let unknown = Symbol::parse("NOPEUSDT").expect("ok");
    let err =
        tardis.download_trades(&btc().0, &unknown, day(), world.data_dir.path()).await.expect_err("unknown symbol");
    assert!(matches!(err, TardisError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("Unknown symbol"), "the server's message is kept: {err}");
    let hits = world.tardis.requests().iter().filter(|r| r.path.contains("NOPEUSDT")).count();
    assert_eq!(hits, 1, "404 is not retried");

    let mut config = world.pipeline_config();
    config.tardis.api_key = pipeline::tardis::ApiKey::new("harness-key-without-access");
    let limited = pipeline::tardis::TardisClient::new(config.tardis).expect("client");
    let err = limited.download_trades(&btc().0, &btc().1, day(), world.data_dir.path()).await.expect_err("no access");
    assert!(matches!(err, TardisError::Forbidden { .. }), "{err}");
}

#[tokio::test]
async fn a_truncated_gzip_is_detected_and_downloaded_again() {
    let world = small_world(5).await;
    let (exchange, symbol) = btc();
    let good = world.generator.trades_csv_gz(&exchange, &symbol, day()).expect("generated");
    let truncated = good[..good.len() / 2].to_vec();
    Mock::given(method("GET"))
        .and(path(file_path("binance-futures", "BTCUSDT")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(truncated, "application/gzip"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let file = pipeline
        .tardis()
        .download_trades(&exchange, &symbol, day(), world.data_dir.path())
        .await
        .expect("re-downloaded");
    assert_eq!(file.attempts, 2);
    assert_eq!(std::fs::read(&file.path).expect("on disk"), good);
}

#[tokio::test]
async fn a_body_that_is_never_valid_gzip_fails_the_file_and_leaves_nothing() {
    let world = small_world(6).await;
    let (exchange, symbol) = btc();
    let mut corrupt = world.generator.trades_csv_gz(&exchange, &symbol, day()).expect("generated");
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    Mock::given(method("GET"))
        .and(path(file_path("binance-futures", "BTCUSDT")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(corrupt, "application/gzip"))
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let err =
        pipeline.tardis().download_trades(&exchange, &symbol, day(), world.data_dir.path()).await.expect_err("corrupt");
    assert!(matches!(err, TardisError::Exhausted { attempts: 5, .. }), "{err}");
    assert!(err.to_string().contains("gzip"), "{err}");
    let dest = pipeline::tardis::trades_path(world.data_dir.path(), &exchange, &symbol, day());
    let dir = dest.parent().expect("dir");
    let files: Vec<_> = std::fs::read_dir(dir).expect("dir exists").filter_map(Result::ok).collect();
    assert!(files.is_empty(), "no partial or final file left: {files:?}");
}

#[tokio::test]
async fn a_day_not_yet_exported_fails_the_run_instead_of_looking_empty() {
    let world = small_world(7).await;
    // Tardis has exported only up to the start of the day.
    world.tardis.set_exported_until(chrono::DateTime::from_timestamp_micros(day().start_us()).expect("valid"));
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("recorded");
    assert_eq!(outcome.status, pipeline::store::RunStatus::Failed);
    let error = outcome.error.unwrap_or_default();
    assert!(error.contains("not exported yet"), "{error}");
    assert!(!world.tardis.requests().iter().any(|r| r.path.ends_with(".csv.gz")), "no file requested before export");
    assert!(!world.bigquery.table_exists(harness::world::PROJECT, harness::world::DATASET, "candles_1m"));
}

#[tokio::test]
async fn instruments_are_fetched_with_their_increments() {
    let world = small_world(8).await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let instruments = pipeline.tardis().instruments(&btc().0).await.expect("instruments");
    let spec = world.generator.universe().symbol(&btc().0, &btc().1).expect("spec");
    let got = instruments.iter().find(|i| i.dataset_id == btc().1).expect("BTCUSDT listed");
    assert_eq!(got, &spec.instrument);
}

#[tokio::test]
async fn the_run_waits_for_the_export_and_goes_on_once_the_day_is_published() {
    let world = small_world(9).await;
    let not_yet = chrono::DateTime::from_timestamp_micros(day().start_us()).expect("valid");
    world.tardis.set_exported_until(not_yet);
    let mut config = world.pipeline_config();
    config.tardis.export_wait = std::time::Duration::from_secs(20);
    config.tardis.export_poll = std::time::Duration::from_millis(20);
    let pipeline = pipeline::Pipeline::connect(config).await.expect("pipeline");
    let run = tokio::spawn(async move { pipeline.run_day(day(), "test").await });
    // Publish the day once the pipeline has seen that it is not exported (two polls of the exchange).
    let polls =
        |w: &harness::World| w.tardis.requests().iter().filter(|r| r.path == "/v1/exchanges/binance-futures").count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while polls(&world) < 2 {
        assert!(std::time::Instant::now() < deadline, "the pipeline never polled exportedUntil");
        tokio::task::yield_now().await;
    }
    world.tardis.set_exported_until(chrono::DateTime::from_timestamp_micros(day().end_us()).expect("valid"));
    let outcome = run.await.expect("joined").expect("recorded");
    assert_eq!(outcome.status, pipeline::store::RunStatus::Succeeded, "{:?}", outcome.error);
    assert!(polls(&world) >= 3);
}

#[tokio::test]
async fn a_connection_reset_is_retried() {
    let world = small_world(10).await;
    Mock::given(method("GET"))
        .and(path(file_path("binance-futures", "BTCUSDT")))
        .respond_with_err(|_: &wiremock::Request| {
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer")
        })
        .up_to_n_times(1)
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let (exchange, symbol) = btc();
    let file =
        pipeline.tardis().download_trades(&exchange, &symbol, day(), world.data_dir.path()).await.expect("retried");
    assert_eq!(file.attempts, 2);
}

#[tokio::test]
async fn one_file_that_keeps_failing_fails_the_date_and_nothing_is_uploaded() {
    let world = small_world(11).await;
    Mock::given(method("GET"))
        .and(path(file_path("bitmex", "XBTUSD")))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "test").await.expect("recorded");
    assert_eq!(outcome.status, pipeline::store::RunStatus::Failed);
    let error = outcome.error.unwrap_or_default();
    assert!(error.contains("1 of 2 files failed") && error.contains("XBTUSD") && error.contains("502"), "{error}");
    assert!(
        !world.bigquery.table_exists(harness::world::PROJECT, harness::world::DATASET, "candles_1m"),
        "no partial upload"
    );
    let btc_file = pipeline::tardis::trades_path(world.data_dir.path(), &btc().0, &btc().1, day());
    assert!(btc_file.is_file(), "the file that did download is kept for the rerun");
}

/// A real transport failure (the network front before the mock Tardis): the connection is reset, or closed,
/// halfway through a body whose `Content-Length` promised more. The client retries and the file on disk is
/// the whole, verified file; nothing half-written is left.
#[rstest::rstest]
#[case::reset(fakes::front::NetworkFault::ResetMidBody)]
#[case::close(fakes::front::NetworkFault::CloseMidBody)]
#[tokio::test]
async fn a_connection_cut_mid_body_is_retried_to_the_whole_file(#[case] fault: fakes::front::NetworkFault) {
    let world = small_world(9).await;
    let front = fakes::front::Front::start(&world.tardis.uri()).await.expect("front");
    front.fail_next(&file_path("binance-futures", "BTCUSDT"), 1, fault);
    let mut config = world.pipeline_config();
    config.tardis.datasets_url = reqwest::Url::parse(&format!("{}/v1", front.uri())).expect("valid");
    let tardis = pipeline::tardis::TardisClient::new(config.tardis).expect("client");
    let (exchange, symbol) = btc();
    let file = tardis.download_trades(&exchange, &symbol, day(), world.data_dir.path()).await.expect("retried");
    assert_eq!(file.attempts, 2);
    assert_eq!(
        std::fs::read(&file.path).expect("on disk"),
        world.generator.trades_csv_gz(&exchange, &symbol, day()).expect("generated")
    );
    let faults: Vec<Option<String>> = front.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(faults, [Some(fault.label()), None], "the cut attempt, then the retry");
    let leftovers = std::fs::read_dir(file.path.parent().expect("dir"))
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .count();
    assert_eq!(leftovers, 0, "no partial file left behind");
}
