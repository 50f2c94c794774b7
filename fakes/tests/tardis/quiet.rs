//! Days without data: 200 with a valid gzip of zero bytes, whether declared quiet or naturally empty.

use fakes::tardis::{QuietFile, TardisOptions};
use fixtures::DataType;

use crate::support::{World, day, exchange, file_path, last_exported, symbol};

#[tokio::test]
async fn a_declared_quiet_day_is_an_empty_gzip_for_every_data_type() {
    let options = TardisOptions::exported_through(last_exported()).with_quiet(
        exchange("deribit"),
        symbol("BTC-PERPETUAL"),
        day(),
    );
    let world = World::start_with(0.1, options).await;
    for data_type in DataType::ALL {
        let answer = world.get_keyed(&file_path("deribit", data_type.as_str(), day(), "BTC-PERPETUAL")).await;
        assert_eq!(answer.status, 200, "{data_type}");
        assert_eq!(&answer.body[..2], &[0x1f, 0x8b], "{data_type}: a gzip file, not an empty body");
        assert_eq!(answer.header("content-length"), Some(answer.body.len().to_string().as_str()));
        assert_eq!(answer.gunzip(), "", "{data_type}: zero bytes inside");
    }
    // Other days and symbols are untouched.
    let next = world.get_keyed(&file_path("deribit", "trades", day().succ(), "BTC-PERPETUAL")).await;
    assert!(next.gunzip().lines().count() > 100);
}

#[tokio::test]
async fn the_header_only_variant_holds_just_the_header_line() {
    let mut options = TardisOptions::exported_through(last_exported());
    options.quiet.insert((exchange("bitmex"), symbol("SOLUSD"), day()), QuietFile::HeaderOnly);
    let world = World::start_with(0.1, options).await;
    let answer = world.get_keyed(&file_path("bitmex", "quotes", day(), "SOLUSD")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.gunzip(), DataType::Quotes.header());
}

#[tokio::test]
async fn a_listed_instrument_without_trades_is_an_empty_gzip_too() {
    let world = World::start_with(0.0, TardisOptions::exported_through(last_exported())).await;
    for data_type in ["trades", "quotes", "book_snapshot_5", "derivative_ticker"] {
        let answer = world.get_keyed(&file_path("bitmex", data_type, day(), "XBTUSD")).await;
        assert_eq!(answer.status, 200, "{data_type}");
        assert_eq!(answer.gunzip(), "", "{data_type}");
    }
    // A grouped file of a dead market is empty as well, not missing.
    let group = world.get_keyed(&file_path("bitmex", "trades", day(), "PERPETUALS")).await;
    assert_eq!((group.status, group.gunzip().as_str()), (200, ""));
}

#[tokio::test]
async fn a_quiet_day_not_yet_exported_is_still_404() {
    let options = TardisOptions::exported_through(day().pred()).with_quiet(exchange("bitmex"), symbol("XBTUSD"), day());
    let world = World::start_with(0.1, options).await;
    let answer = world.get_keyed(&file_path("bitmex", "trades", day(), "XBTUSD")).await;
    assert_eq!(answer.status, 404, "quiet is not the same as not exported");
}
