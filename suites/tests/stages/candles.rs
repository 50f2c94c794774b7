use market::{Exchange, Symbol};

use crate::{day, small_world};

#[tokio::test]
async fn candles_built_from_a_downloaded_file_equal_the_truth_bit_for_bit() {
    let world = harness::World::start(harness::WorldOptions::new(21, day()).pairs(&[("deribit", "BTC-PERPETUAL")]))
        .await
        .expect("world");
    let pipeline = world.pipeline().await.expect("pipeline");
    let (exchange, symbol) = (Exchange::parse("deribit").expect("ok"), Symbol::parse("BTC-PERPETUAL").expect("ok"));
    let file =
        pipeline.tardis().download_trades(&exchange, &symbol, day(), world.data_dir.path()).await.expect("download");
    let spec = world.generator.universe().symbol(&exchange, &symbol).expect("spec");
    let increments =
        [((exchange.clone(), symbol.clone()), (spec.instrument.price_increment, spec.instrument.amount_increment))]
            .into();
    let set = pipeline::candles::build(std::slice::from_ref(&file), &increments).expect("candles");
    let truth = world.generator.file_truth(&exchange, &symbol, day()).expect("truth");
    assert_eq!(set.candles, truth.candles, "same candles, same floating-point sums (both add in file order)");
    let profile = &set.profiles[0];
    assert!(profile.grid_checked);
    assert_eq!(
        (profile.off_grid_prices, profile.off_grid_amounts, profile.duplicate_ids, profile.arrival_regressions),
        (0, 0, 0, 0)
    );
    assert_eq!(profile.rows_with_id, profile.rows, "deribit trades carry numeric ids, unique within the file");
    for (interval, direct) in &set.direct {
        assert_eq!(direct, &market::rollup(&set.candles, *interval), "{interval:?} built directly equals the roll-up");
    }
    assert_eq!(set.rows_before_day, truth.rows_before_day);
    assert_eq!(set.trades_in_day, truth.rows - truth.rows_before_day - truth.rows_after_day);
}

#[tokio::test]
async fn an_empty_file_is_a_quiet_day_with_no_candles() {
    let world = small_world(22).await;
    let (exchange, symbol) = (Exchange::parse("bitmex").expect("ok"), Symbol::parse("XBTUSD").expect("ok"));
    let empty_gzip = {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(b"").expect("in memory");
        encoder.finish().expect("in memory")
    };
    wiremock::Mock::given(wiremock::matchers::path(crate::file_path("bitmex", "XBTUSD")))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(empty_gzip, "application/gzip"))
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let pipeline = world.pipeline().await.expect("pipeline");
    let file =
        pipeline.tardis().download_trades(&exchange, &symbol, day(), world.data_dir.path()).await.expect("download");
    assert_eq!(file.stats.rows, 0);
    let set = pipeline::candles::build(&[file], &Default::default()).expect("candles");
    assert!(set.candles.is_empty());
}
