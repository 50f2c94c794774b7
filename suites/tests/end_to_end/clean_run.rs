use std::collections::BTreeMap;

use market::checks::Status;
use market::{Candle, CandleKey};
use pipeline::store::RunStatus;

use crate::{day, world};

#[tokio::test]
async fn candles_read_back_from_bigquery_equal_the_generated_truth() {
    let world = world(7).await;
    let pipeline = world.pipeline().await.expect("pipeline connects");
    let outcome = pipeline.run_day(day(), "test").await.expect("run recorded");
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);

    let truth = world.generator.day_truth(day());
    let expected: BTreeMap<CandleKey, &Candle> = truth.candles().map(|c| (c.key(), c)).collect();
    // Read back through the pipeline's own BigQuery client (tabledata.list over the partition).
    let landed = pipeline.bigquery().read_candles(day()).await.expect("candles readable");
    assert_eq!(landed.len(), expected.len(), "one landed candle per generated candle");
    for got in &landed {
        let want = expected.get(&got.key()).unwrap_or_else(|| panic!("unexpected candle {:?}", got.key()));
        assert_eq!(
            (got.open, got.high, got.low, got.close),
            (want.open, want.high, want.low, want.close),
            "{:?}",
            got.key()
        );
        assert_eq!(got.trade_count, want.trade_count, "{:?}", got.key());
        for (name, g, w) in [
            ("volume", got.volume, want.volume),
            ("quote_volume", got.quote_volume, want.quote_volume),
            ("vwap", got.vwap, want.vwap),
            ("buy_volume", got.buy_volume, want.buy_volume),
            ("sell_volume", got.sell_volume, want.sell_volume),
        ] {
            assert!((g - w).abs() <= 1e-9 * w.abs().max(g.abs()), "{name} of {:?}: {g} vs {w}", got.key());
        }
    }
}

#[tokio::test]
async fn a_clean_run_scores_one_everywhere_and_reports_every_symbol() {
    let world = world(11).await;
    let pipeline = world.pipeline().await.expect("pipeline connects");
    let outcome = pipeline.run_day(day(), "test").await.expect("run recorded");
    let report = harness::run::score_world(&world, day(), Some(&outcome), chrono::Utc::now()).expect("scored");
    assert_eq!(report.status, Status::Pass, "{}", report.text());
    assert_eq!((report.scores.completeness, report.scores.quality, report.scores.consistency), (1.0, 1.0, 1.0));
    assert_eq!(report.sections.symbols.len(), 12, "3 exchanges × 4 symbols");
    assert!(report.sections.symbols.iter().all(|s| s.landed_candles == s.expected_candles && s.expected_candles > 0));
    assert!(
        report.sections.counts.expected.rows_before_day > 0,
        "the generator puts late trades of the day before in every file"
    );
    // Every instrument the three exchanges list: the 12 traded pairs and the catalogue (expired futures,
    // options, delisted and inactive perpetuals).
    let listed: usize = fixtures::Universe::default_universe().exchanges().iter().map(|e| e.listed().count()).sum();
    assert!(listed > 12);
    assert_eq!(report.sections.counts.landed_instruments, listed as u64);

    // The pipeline's own validation (no ground truth) agrees.
    let own = outcome.validation.expect("validation ran");
    assert_eq!(own.status, Status::Pass, "{:?}", own.checks);

    // The run record in Postgres carries stages, counts and scores.
    let runs = pipeline.store().runs_of_day(day()).await.expect("runs listed");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.candles, Some(report.sections.counts.expected.candles as i64));
    assert_eq!(run.trades, Some(report.sections.counts.expected.trades_in_day as i64));
    assert_eq!(run.validation.as_deref(), Some("pass"));
    let stages: Vec<&str> = run.stages.iter().map(|(stage, _, _)| stage.as_str()).collect();
    for stage in ["download", "instruments", "candles", "upload", "validation"] {
        assert!(stages.contains(&stage), "{stage} missing from {stages:?}");
    }
    assert!(run.stages.iter().all(|(_, status, _)| status == "succeeded"));
}

#[tokio::test]
async fn rows_before_the_day_are_counted_and_never_bucketed() {
    let world = world(3).await;
    let pipeline = world.pipeline().await.expect("pipeline connects");
    let outcome = pipeline.run_day(day(), "test").await.expect("run recorded");
    let truth = world.generator.day_truth(day());
    let before: u64 = truth.files.iter().map(|f| f.rows_before_day).sum();
    assert!(before > 0);
    assert_eq!(outcome.rows_before_day, before);
    let landed = harness::run::landed_candles(&world.bigquery, day()).expect("readable");
    assert!(landed.iter().all(|c| day().contains_us(c.open_time_us)), "every candle lies inside the date");
}
