use pipeline::store::RunStatus;
use pipeline::tardis::ApiKey;

use crate::{day, world};

#[tokio::test]
async fn a_wrong_api_key_is_an_authentication_error_and_nothing_is_uploaded() {
    let world = world(13).await;
    let mut config = world.pipeline_config();
    config.tardis.api_key = ApiKey::new("not-the-right-key");
    let pipeline = pipeline::Pipeline::connect(config).await.expect("pipeline connects");
    let outcome = pipeline.run_day(day(), "test").await.expect("run recorded");
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(outcome.auth_failure, "the failure is classified as an authentication error");
    let error = outcome.error.as_deref().unwrap_or_default();
    assert!(error.contains("401") && error.contains("TARDIS_API_KEY"), "{error}");
    assert!(
        !world.bigquery.table_exists(harness::world::PROJECT, harness::world::DATASET, "candles_1m"),
        "nothing uploaded"
    );
    let uploads = world.bigquery.requests().iter().filter(|r| r.path.contains("/upload/")).count();
    assert_eq!(uploads, 0);
    let failed_stage = outcome.stages.iter().find(|s| s.stage == "download").expect("download stage recorded");
    assert!(!failed_stage.succeeded);
    assert!(outcome.stages.iter().all(|s| s.stage != "upload"), "no upload stage after a failed download");

    // The failure is recorded with its cause.
    let runs = pipeline.store().runs_of_day(day()).await.expect("runs listed");
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert!(runs[0].error.as_deref().unwrap_or_default().contains("401"));
}

#[tokio::test]
async fn the_first_day_of_a_month_downloads_without_a_key() {
    let first = market::TradingDay::parse("2024-06-01").expect("valid");
    let world = harness::World::start(harness::WorldOptions::new(2, first).activity(0.05)).await.expect("world");
    let mut config = world.pipeline_config();
    config.tardis.api_key = None;
    let pipeline = pipeline::Pipeline::connect(config).await.expect("pipeline connects");
    let download = pipeline.tardis();
    let (exchange, symbol) = world.generator.universe().pairs().remove(0);
    let file =
        download.download_trades(&exchange, &symbol, first, world.data_dir.path()).await.expect("free day downloads");
    assert!(file.stats.rows > 0);
    let err = download
        .download_trades(&exchange, &symbol, first.succ(), world.data_dir.path())
        .await
        .expect_err("needs a key");
    assert!(err.is_auth(), "{err}");
    // Instruments always need a key.
    let err = download.instruments(&exchange).await.expect_err("instruments need a key");
    assert!(err.to_string().contains("401"), "{err}");
}
