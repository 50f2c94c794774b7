//! The proof that validation catches bugs: a correct pipeline passes with no finding above warn on
//! many seeds, and each realistic defect (pipeline::defects) fails the harness with a finding that names
//! the problem — and, where the data alone can tell, fails the pipeline's own validation too.

use harness::defects::Defect;
use harness::scoring::ids::{CANDLES_EQUAL_TRUTH, INSTRUMENTS_EQUAL_TRUTH, SYMBOLS_LANDED};
use harness::{World, WorldOptions};
use market::TradingDay;
use market::checks::ids::{
    CANDLE_PER_TRADED_MINUTE, CANDLE_SYMBOLS_IN_INSTRUMENTS, CANDLES_MATCH_TRADES, FILES_PRESENT, OHLC_INVARIANTS,
};
use market::checks::{Status, Validation};
use rstest::rstest;

fn day() -> TradingDay {
    TradingDay::parse("2024-06-05").expect("valid day")
}

/// BTC on three venues (so cross-exchange divergence is judged) and one more symbol.
const PAIRS: [(&str, &str); 4] = [
    ("binance-futures", "BTCUSDT"),
    ("binance-futures", "ETHUSDT"),
    ("bitmex", "XBTUSD"),
    ("deribit", "BTC-PERPETUAL"),
];

async fn run(seed: u64, defect: Option<Defect>) -> (harness::report::Report, Option<Validation>) {
    let world =
        World::start(WorldOptions::new(seed, day()).activity(0.05).pairs(&PAIRS).defect(defect)).await.expect("world");
    let pipeline = world.pipeline().await.expect("pipeline");
    let outcome = pipeline.run_day(day(), "defect-suite").await.expect("run recorded");
    let report = harness::run::score_world(&world, day(), Some(&outcome), chrono::Utc::now()).expect("scored");
    (report, outcome.validation)
}

fn not_passing(checks: &[market::checks::CheckOutcome]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| format!("{} {} {:?}", c.id, c.status.as_str(), c.samples.first().map(|s| &s.detail)))
        .collect()
}

#[rstest]
#[tokio::test]
async fn a_correct_pipeline_has_no_finding_above_warn(
    #[values(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)] seed: u64,
) {
    let (report, own) = run(seed, None).await;
    assert_eq!(report.status, Status::Pass, "harness on seed {seed}: {:?}", not_passing(&report.checks));
    let own = own.expect("validation ran");
    let above_warn: Vec<_> = own.checks.iter().filter(|c| c.status > Status::Warn).map(|c| c.id.clone()).collect();
    assert!(above_warn.is_empty(), "own validation on seed {seed}: {:?}", not_passing(&own.checks));
}

#[rstest]
#[case::dropped_hour(
    Defect::DroppedHour,
    CANDLE_PER_TRADED_MINUTE,
    "minute had trades but has no candle",
    Some(CANDLE_PER_TRADED_MINUTE)
)]
#[case::missing_symbol(Defect::MissingSymbol, SYMBOLS_LANDED, "no trades file for this symbol", Some(FILES_PRESENT))]
#[case::duplicated_upload(Defect::DuplicatedUpload, CANDLES_EQUAL_TRUTH, "landed 2 times", Some(CANDLES_MATCH_TRADES))]
#[case::shifted_hour(Defect::ShiftedHour, CANDLES_EQUAL_TRUTH, "", Some(CANDLES_MATCH_TRADES))]
#[case::wrong_vwap(Defect::WrongVwap, CANDLES_EQUAL_TRUTH, "vwap is", Some(CANDLES_MATCH_TRADES))]
#[case::swapped_high_low(Defect::SwappedHighLow, OHLC_INVARIANTS, "OHLC out of order", Some(OHLC_INVARIANTS))]
#[case::volume_in_quote_units(Defect::VolumeInQuoteUnits, CANDLES_EQUAL_TRUTH, "volume is", Some(CANDLES_MATCH_TRADES))]
#[case::swallowed_429(Defect::Swallowed429, SYMBOLS_LANDED, "no trades file for this symbol", Some(FILES_PRESENT))]
#[case::last_minute_lost(
    Defect::LastMinuteLost,
    CANDLE_PER_TRADED_MINUTE,
    "minute had trades but has no candle",
    Some(CANDLE_PER_TRADED_MINUTE)
)]
#[case::stale_instruments(
    Defect::StaleInstruments,
    INSTRUMENTS_EQUAL_TRUTH,
    "missing from the date's instruments partition",
    Some(CANDLE_SYMBOLS_IN_INSTRUMENTS)
)]
#[tokio::test]
async fn each_defect_fails_with_a_finding_that_names_it(
    #[case] defect: Defect,
    #[case] harness_check: &str,
    #[case] detail: &str,
    #[case] own_check: Option<&str>,
) {
    let (report, own) = run(42, Some(defect)).await;
    assert_eq!(report.status, Status::Fail, "{}: {:?}", defect.name(), not_passing(&report.checks));
    let check = report.checks.iter().find(|c| c.id == harness_check).expect("check present");
    assert_eq!(check.status, Status::Fail, "{}: {check:?}", defect.name());
    assert!(check.samples.iter().any(|s| s.detail.contains(detail)), "{}: {:?}", defect.name(), check.samples);
    if let Some(own_check) = own_check {
        let own = own.expect("the defective run still validates");
        let check = own.check(own_check).expect("own check present");
        assert_eq!(check.status, Status::Fail, "{} in own validation: {:?}", defect.name(), not_passing(&own.checks));
        assert_eq!(own.status, Status::Fail);
    }
}
