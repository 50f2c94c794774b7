//! The datasets API: the four data types with their exact headers, the body being the gzip file itself
//! with `Content-Length`, and the URL rules (query strings ignored, percent-decoding, case-sensitive data
//! types, upper-case dataset ids only).

use fakes::tardis::TardisOptions;
use fixtures::{DataType, Universe};
use market::{InstrumentKind, TradingDay};
use rstest::rstest;

use crate::support::{World, day, file_path, generated_csv, table};

#[rstest]
#[case("trades", "exchange,symbol,timestamp,local_timestamp,id,side,price,amount")]
#[case("quotes", "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount")]
#[case(
    "derivative_ticker",
    "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,predicted_funding_rate,open_interest,last_price,index_price,mark_price"
)]
#[case(
    "book_snapshot_5",
    "exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,bids[0].amount,asks[1].price,asks[1].amount,bids[1].price,bids[1].amount,asks[2].price,asks[2].amount,bids[2].price,bids[2].amount,asks[3].price,asks[3].amount,bids[3].price,bids[3].amount,asks[4].price,asks[4].amount,bids[4].price,bids[4].amount"
)]
#[tokio::test]
async fn every_data_type_is_served_as_a_gzip_file_with_its_exact_header(#[case] data_type: &str, #[case] header: &str) {
    let world = World::start().await;
    let answer = world.get_keyed(&file_path("bitmex", data_type, day(), "XBTUSD")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(&answer.body[..2], &[0x1f, 0x8b], "the body is the gzip file itself");
    assert_eq!(answer.header("content-type"), Some("application/gzip"));
    assert_eq!(answer.header("content-encoding"), None, "no transport encoding by default");
    let length: usize = answer.header("content-length").expect("Content-Length is set").parse().expect("a number");
    assert_eq!(length, answer.body.len());
    let text = answer.gunzip();
    let (served_header, rows) = table(&text);
    assert_eq!(served_header.join(","), header);
    assert!(rows.len() > 100, "{data_type}: {} rows", rows.len());
    assert!(rows.iter().all(|r| r.len() == served_header.len() && r[0] == "bitmex" && r[1] == "XBTUSD"));
    let data_type = DataType::parse(data_type).expect("a generated type");
    assert_eq!(text, generated_csv(&world.generator, data_type, "bitmex", "XBTUSD", day()), "the generator's file");
}

#[tokio::test]
async fn query_strings_are_ignored_and_the_retry_marker_is_logged() {
    let world = World::start().await;
    let path = file_path("deribit", "trades", day(), "BTC-PERPETUAL");
    let plain = world.get_keyed(&path).await;
    let retried = world.get_keyed(&format!("{path}?retryAttempt=3")).await;
    assert_eq!((plain.status, retried.status), (200, 200));
    assert_eq!(plain.body, retried.body);
    let log = world.mock.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].query.as_deref(), Some("retryAttempt=3"));
    assert_eq!(log[1].path, path);
    assert_eq!(log[1].status, 200);
}

#[tokio::test]
async fn percent_encoded_symbols_are_decoded() {
    let world = World::start().await;
    let encoded = file_path("deribit", "quotes", day(), "SOL_USDC%2DPERPETUAL");
    let plain = file_path("deribit", "quotes", day(), "SOL_USDC-PERPETUAL");
    let (a, b) = (world.get_keyed(&encoded).await, world.get_keyed(&plain).await);
    assert_eq!((a.status, b.status), (200, 200), "{}", a.text());
    assert_eq!(a.body, b.body);
}

#[rstest]
#[case("binance-futures", "trades", "btcusdt", "Unknown symbol 'btcusdt'")]
#[case("binance-futures", "trades", "BTC%3AUSDT", "Unknown symbol 'BTC:USDT'")]
#[case("binance-futures", "trades", "BTC%2FUSDT", "Unknown symbol 'BTC/USDT'")]
#[case("binance-futures", "trades", "NOPEUSDT", "Unknown symbol 'NOPEUSDT'")]
#[case("binance-futures", "Trades", "BTCUSDT", "Data type 'Trades' is not available")]
#[case("binance-futures", "incremental_book_L2", "BTCUSDT", "Data type 'incremental_book_L2' is not available")]
#[case("binance-futures", "book_snapshot_25", "BTCUSDT", "Data type 'book_snapshot_25' is not available")]
#[case("kraken", "trades", "XBTUSD", "Unknown exchange 'kraken'")]
#[tokio::test]
async fn names_clients_must_normalise_or_that_do_not_exist_are_404_json(
    #[case] exchange: &str,
    #[case] data_type: &str,
    #[case] symbol: &str,
    #[case] message: &str,
) {
    let world = World::start().await;
    let answer = world.get_keyed(&file_path(exchange, data_type, day(), symbol)).await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    assert_eq!(body["code"], 404);
    let text = body["message"].as_str().expect("a message");
    assert!(text.contains(message), "{text}");
}

#[tokio::test]
async fn only_csv_gz_files_on_real_dates_exist() {
    let world = World::start().await;
    let csv = world.get_keyed("/v1/bitmex/trades/2024/06/04/XBTUSD.csv").await;
    assert_eq!(csv.status, 404);
    assert!(csv.json()["message"].as_str().expect("a message").contains("expected SYMBOL.csv.gz"));
    let bad_date = world.get_keyed("/v1/bitmex/trades/2024/02/30/XBTUSD.csv.gz").await;
    assert_eq!(bad_date.status, 404);
    assert!(bad_date.json()["message"].as_str().expect("a message").contains("Invalid date 2024/02/30"));
}

#[tokio::test]
async fn a_day_not_yet_exported_is_404_until_exported_until_moves() {
    let world = World::start_with(0.1, TardisOptions::exported_through(day().pred())).await;
    let path = file_path("bitmex", "trades", day(), "XBTUSD");
    let early = world.get_keyed(&path).await;
    assert_eq!(early.status, 404);
    let message = early.json()["message"].as_str().expect("a message").to_owned();
    assert!(message.contains("not available yet (exported until 2024-06-04T00:00:00.000Z)"), "{message}");
    world.mock.set_exported_until(chrono::DateTime::from_timestamp_micros(day().end_us()).expect("valid"));
    assert_eq!(world.get_keyed(&path).await.status, 200);
}

#[tokio::test]
async fn days_before_the_listing_are_404_and_spot_symbols_have_no_derivative_ticker() {
    let mut universe = Universe::default_universe();
    // Make bitmex XRPUSD a spot instrument to see the derivative ticker refused for it.
    let xrp = universe.exchanges_mut()[1].symbols.iter_mut().find(|s| s.symbol().as_str() == "XRPUSD").expect("listed");
    xrp.instrument.kind = InstrumentKind::Spot;
    let world = World::start_universe(universe, 0.05, TardisOptions::exported_through(day())).await;
    let ticker = world.get_keyed(&file_path("bitmex", "derivative_ticker", day(), "XRPUSD")).await;
    assert_eq!(ticker.status, 404);
    assert!(
        ticker.json()["message"]
            .as_str()
            .expect("a message")
            .contains("'derivative_ticker' is not available for XRPUSD")
    );
    assert_eq!(world.get_keyed(&file_path("bitmex", "quotes", day(), "XRPUSD")).await.status, 200);
    let before_listing = TradingDay::parse("2022-03-21").expect("valid");
    let answer = world.get_keyed(&file_path("deribit", "trades", before_listing, "SOL_USDC-PERPETUAL")).await;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["message"].as_str().expect("a message").contains("not available on 2022-03-21"));
}

#[tokio::test]
async fn the_content_encoding_switch_labels_files_as_gzip_encoded() {
    let mut options = TardisOptions::exported_through(day());
    options.content_encoding_gzip = true;
    let world = World::start_with(0.05, options).await;
    let answer = world.get_keyed(&file_path("bitmex", "trades", day(), "XBTUSD")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-encoding"), Some("gzip"));
    assert_eq!(&answer.body[..2], &[0x1f, 0x8b], "reqwest without its gzip feature keeps the bytes");
}
