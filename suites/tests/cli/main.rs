//! The `pipeline` binary driven through its documented environment contract (TARDIS_*, BIGQUERY_*,
//! DATABASE_URL, PIPELINE_*) against a world, as an operator or an external scheduler would run it.

use market::checks::ids::CANDLE_PER_TRADED_MINUTE;
use std::process::Command;

use harness::{World, WorldOptions};
use market::TradingDay;

use suites::workspace_binary as binary;

#[tokio::test]
async fn pipeline_run_through_the_environment_contract_passes_and_records_the_run() {
    let day = TradingDay::parse("2024-06-05").expect("valid");
    let world = World::start(
        WorldOptions::new(17, day).activity(0.05).pairs(&[("bitmex", "XBTUSD"), ("deribit", "ETH-PERPETUAL")]),
    )
    .await
    .expect("world");
    let data_dir = world.data_dir.path().join("cli");
    let out = Command::new(binary("pipeline"))
        .args(["run", "--date", "2024-06-05", "--data-dir"])
        .arg(&data_dir)
        .envs(world.env())
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("validation pass"), "{stdout}");
    for stage in ["download", "instruments", "candles", "upload", "validation"] {
        assert!(stdout.contains(&format!("✓ {stage}")), "{stage} in {stdout}");
    }
    let truth = world.generator.day_truth(day);
    assert_eq!(harness::run::landed_candles(&world.bigquery, day).expect("rows").len(), truth.candles().count());
    assert!(data_dir.join("trades/bitmex/2024-06-05/XBTUSD.csv.gz").is_file(), "files land in --data-dir");

    let runs = Command::new(binary("pipeline"))
        .args(["runs", "--date", "2024-06-05", "--json"])
        .envs(world.env())
        .output()
        .expect("runs");
    let json: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON output");
    assert_eq!(json[0]["status"], "succeeded");
    assert_eq!(json[0]["validation"], "pass");
}

#[tokio::test]
async fn a_wrong_key_through_the_environment_exits_2_with_the_cause() {
    let day = TradingDay::parse("2024-06-05").expect("valid");
    let world =
        World::start(WorldOptions::new(18, day).activity(0.05).pairs(&[("bitmex", "XBTUSD")])).await.expect("world");
    let out = Command::new(binary("pipeline"))
        .args(["run", "--date", "2024-06-05", "--data-dir"])
        .arg(world.data_dir.path())
        .envs(world.env())
        .env("TARDIS_API_KEY", "wrong")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("✗ download") && stdout.contains("401"), "{stdout}");
    let all_output = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!all_output.contains("wrong"), "the key never appears in output");
}

#[tokio::test]
async fn pipeline_validate_over_a_range_prints_a_line_per_date_and_totals_and_writes_reports() {
    let last = TradingDay::parse("2024-06-05").expect("valid");
    let world = World::start(
        WorldOptions::new(19, last).activity(0.05).pairs(&[("bitmex", "XBTUSD"), ("deribit", "BTC-PERPETUAL")]),
    )
    .await
    .expect("world");
    let pipeline = world.pipeline().await.expect("pipeline");
    for day in [last.pred(), last] {
        assert_eq!(pipeline.run_day(day, "test").await.expect("run").status, pipeline::store::RunStatus::Succeeded);
    }
    let reports = world.data_dir.path().join("reports");
    let out = Command::new(binary("pipeline"))
        .args(["validate", "--from", "2024-06-04", "--to", "2024-06-05", "--report-dir"])
        .arg(&reports)
        .envs(world.env())
        .env("PIPELINE_DATA_DIR", world.data_dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2024-06-04  pass") && stdout.contains("2024-06-05  pass"), "{stdout}");
    assert!(stdout.contains("2 dates: 2 pass, 0 warn, 0 fail"), "{stdout}");
    for day in ["2024-06-04", "2024-06-05"] {
        for file in ["report.json", "report.md", "report.html"] {
            assert!(reports.join(day).join(file).is_file(), "{day}/{file}");
        }
    }
    // Break one date behind the pipeline's back: the range now fails, and says which date.
    let url = format!(
        "{}/bigquery/v2/projects/{}/datasets/{}/tables/candles_1m%2420240604",
        world.bigquery.uri(),
        harness::world::PROJECT,
        harness::world::DATASET
    );
    let deleted = reqwest::Client::new().delete(url).send().await.expect("delete partition");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let out = Command::new(binary("pipeline"))
        .args(["validate", "--from", "2024-06-04", "--to", "2024-06-05"])
        .envs(world.env())
        .env("PIPELINE_DATA_DIR", world.data_dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("2024-06-04  fail") && stdout.contains(CANDLE_PER_TRADED_MINUTE), "{stdout}");
    assert!(stdout.contains("2 dates: 1 pass, 0 warn, 1 fail"), "{stdout}");
}
