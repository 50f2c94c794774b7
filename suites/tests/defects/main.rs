//! The proof that validation catches bugs: a correct pipeline passes with no finding above warn on
//! many seeds, and each realistic defect (harness::defects) fails the harness with the finding its row of the
//! coverage matrix names — and, where the data alone can tell, fails the pipeline's own validation too.

use std::sync::Arc;

use harness::PostgresServer;
use harness::coverage::{self, MATRIX, SCORED_CHECKS};
use harness::defects::Defect;
use market::checks::ids::{
    CANDLE_PER_TRADED_MINUTE, CANDLE_SYMBOLS_IN_INSTRUMENTS, CANDLES_MATCH_TRADES, COUNTS_AGREE, FILES_PRESENT,
    OHLC_INVARIANTS,
};
use market::checks::{Status, Validation};
use rstest::rstest;

async fn run(seed: u64, defect: Option<Defect>) -> (harness::report::Report, Option<Validation>) {
    let server = Arc::new(PostgresServer::provision().await.expect("postgres"));
    coverage::observe(server, seed, defect).await.expect("run scored")
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

/// The pipeline's own validation (from the data alone) must fail these defects too. The others it cannot see
/// by design: a bug of the candle builder is consistent with itself, a wrong instruments column or table
/// layout, or a write into another date, is not in what it reads back; only the ground truth tells.
fn own_check(defect: Defect) -> Option<&'static str> {
    Some(match defect {
        Defect::DroppedHour | Defect::LastMinuteLost => CANDLE_PER_TRADED_MINUTE,
        Defect::MissingSymbol | Defect::Swallowed429 => FILES_PRESENT,
        Defect::DuplicatedUpload
        | Defect::ShiftedHour
        | Defect::WrongVwap
        | Defect::VolumeInQuoteUnits
        | Defect::EmptyMinutesFilled => CANDLES_MATCH_TRADES,
        Defect::SwappedHighLow => OHLC_INVARIANTS,
        Defect::StaleInstruments => CANDLE_SYMBOLS_IN_INSTRUMENTS,
        Defect::LateRowsInCounts => COUNTS_AGREE,
        _ => return None,
    })
}

/// Every row of the coverage matrix: its defect fails the harness, with the row's check failing and a finding
/// that names the column or the rule.
#[rstest]
#[case::dropped_hour(Defect::DroppedHour)]
#[case::missing_symbol(Defect::MissingSymbol)]
#[case::duplicated_upload(Defect::DuplicatedUpload)]
#[case::shifted_hour(Defect::ShiftedHour)]
#[case::wrong_vwap(Defect::WrongVwap)]
#[case::swapped_high_low(Defect::SwappedHighLow)]
#[case::volume_in_quote_units(Defect::VolumeInQuoteUnits)]
#[case::swallowed_429(Defect::Swallowed429)]
#[case::last_minute_lost(Defect::LastMinuteLost)]
#[case::stale_instruments(Defect::StaleInstruments)]
#[case::local_time_buckets(Defect::LocalTimeBuckets)]
#[case::open_in_file_order(Defect::OpenInFileOrder)]
#[case::close_in_file_order(Defect::CloseInFileOrder)]
#[case::small_trades_dropped(Defect::SmallTradesDropped)]
#[case::unknown_side_as_sell(Defect::UnknownSideAsSell)]
#[case::dedupe_by_exchange_id(Defect::DedupeByExchangeId)]
#[case::empty_minutes_filled(Defect::EmptyMinutesFilled)]
#[case::late_rows_in_counts(Defect::LateRowsInCounts)]
#[case::late_rows_to_previous_date(Defect::LateRowsToPreviousDate)]
#[case::active_instruments_only(Defect::ActiveInstrumentsOnly)]
#[case::swapped_currencies(Defect::SwappedCurrencies)]
#[case::inverse_always_false(Defect::InverseAlwaysFalse)]
#[case::nullable_trade_count(Defect::NullableTradeCount)]
#[case::no_clustering(Defect::NoClustering)]
#[case::open_end_as_far_future(Defect::OpenEndAsFarFuture)]
#[tokio::test]
async fn each_defect_fails_with_the_finding_of_its_row_of_the_matrix(#[case] defect: Defect) {
    let (report, own) = run(42, Some(defect)).await;
    assert_eq!(report.status, Status::Fail, "{defect}: {:?}", not_passing(&report.checks));
    for rule in coverage::rules_of(defect) {
        let check = report.checks.iter().find(|c| c.id == rule.check).expect("check present");
        assert_eq!(check.status, Status::Fail, "{defect} ({}): {check:?}", rule.id);
        assert!(
            check.samples.iter().any(|s| s.detail.contains(rule.finding)),
            "{defect} ({}): no finding with {:?} in {:?}",
            rule.id,
            rule.finding,
            check.samples
        );
    }
    let own = own.expect("the defective run still validates");
    if let Some(own_check) = own_check(defect) {
        let check = own.check(own_check).expect("own check present");
        assert_eq!(check.status, Status::Fail, "{defect} in own validation: {:?}", not_passing(&own.checks));
        assert_eq!(own.status, Status::Fail);
    }
}

/// The cases above are every defect, and the matrix has no empty row: each defect breaks a rule, and each
/// scored check is the one that catches at least one defect.
#[test]
fn the_matrix_covers_every_defect_and_every_scored_check() {
    let source = include_str!("main.rs");
    for &defect in Defect::ALL {
        let case = format!("Defect::{defect:?})]");
        assert!(source.contains(&case), "no case for {defect}");
        assert!(coverage::rules_of(defect).next().is_some(), "{defect} breaks no rule");
    }
    for check in SCORED_CHECKS {
        assert!(MATRIX.iter().any(|r| r.check == check), "{check} catches no defect");
    }
    assert!(Defect::ALL.len() >= 20, "{} defects", Defect::ALL.len());
}
