//! Fault injection through `MockTardis::fail_next`: statuses with and without `Retry-After`, spoiled gzip
//! bodies, empty bodies and delays, each used the planned number of times, only on matching requests, and
//! every answer in the request log with its status.

use std::time::{Duration, Instant};

use fakes::tardis::{DatasetMatch, Fault, FaultTarget};
use fixtures::DataType;
use market::TradingDay;
use rstest::rstest;

use crate::support::{World, day, file_path, gunzip};

fn btc(d: TradingDay) -> String {
    file_path("binance-futures", "trades", d, "BTCUSDT")
}

fn btc_file() -> DatasetMatch {
    DatasetMatch::file("binance-futures", DataType::Trades, "BTCUSDT", day())
}

#[tokio::test]
async fn a_429_carries_retry_after_and_the_next_request_succeeds() {
    let world = World::start().await;
    world.mock.fail_next(btc_file(), 1, Fault::rate_limited(7));
    let limited = world.get_keyed(&btc(day())).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.header("content-type"), Some("application/json"));
    assert_eq!(limited.json()["code"], 429);
    let retried = world.get_keyed(&format!("{}?retryAttempt=1", btc(day()))).await;
    assert_eq!(retried.status, 200);
    let log = world.mock.requests();
    let statuses: Vec<(u16, Option<&str>)> = log.iter().map(|r| (r.status, r.fault.as_deref())).collect();
    assert_eq!(statuses, [(429, Some("status 429, retry after 7 s")), (200, None)]);
}

#[rstest]
#[case(Fault::server_error(500), 500, "Internal server error")]
#[case(Fault::server_error(502), 502, "Internal server error")]
#[case(Fault::server_error(503), 503, "Internal server error")]
#[case(Fault::iso_8601_bad_request(), 400, "ISO 8601 format")]
#[case(Fault::Status { code: 503, retry_after: None, body: "upstream busy".to_owned() }, 503, "upstream busy")]
#[tokio::test]
async fn status_faults_replace_the_answer_the_planned_number_of_times(
    #[case] fault: Fault,
    #[case] status: u16,
    #[case] text: &str,
) {
    let world = World::start().await;
    world.mock.fail_next(btc_file(), 2, fault);
    for _ in 0..2 {
        let answer = world.get_keyed(&btc(day())).await;
        assert_eq!(answer.status, status);
        assert!(answer.text().contains(text), "{}", answer.text());
        assert_eq!(answer.header("retry-after"), None);
    }
    assert_eq!(world.get_keyed(&btc(day())).await.status, 200, "the plan is used up");
    let statuses: Vec<u16> = world.mock.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [status, status, 200]);
}

#[tokio::test]
async fn a_403_can_strike_a_free_file_and_status_faults_come_before_auth() {
    let world = World::start().await;
    let first = TradingDay::parse("2024-06-01").expect("valid");
    world.mock.fail_next(DatasetMatch { day: Some(first), ..DatasetMatch::any() }, 1, Fault::forbidden());
    let answer = world.get(&btc(first), None).await;
    assert_eq!((answer.status, answer.json()["code"].as_i64()), (403, Some(403)));
    assert_eq!(world.get(&btc(first), None).await.status, 200);
}

#[tokio::test]
async fn body_faults_spoil_the_real_file_and_are_logged() {
    let world = World::start().await;
    let good = world.get_keyed(&btc(day())).await.body;
    world.mock.fail_next(btc_file(), 1, Fault::TruncatedGzip);
    world.mock.fail_next(btc_file(), 1, Fault::CorruptGzip);
    world.mock.fail_next(btc_file(), 1, Fault::EmptyBody);

    let truncated = world.get_keyed(&btc(day())).await;
    assert_eq!(truncated.status, 200);
    assert_eq!(truncated.body, good[..good.len() / 2]);
    assert_eq!(truncated.header("content-length"), Some((good.len() / 2).to_string().as_str()));
    assert!(gunzip(&truncated.body).is_err(), "a truncated gzip does not decompress");

    let corrupt = world.get_keyed(&btc(day())).await;
    assert_eq!((corrupt.status, corrupt.body.len()), (200, good.len()));
    assert_ne!(corrupt.body, good);
    assert!(gunzip(&corrupt.body).is_err(), "a corrupt gzip does not decompress");

    let empty = world.get_keyed(&btc(day())).await;
    assert_eq!((empty.status, empty.body.len(), empty.header("content-length")), (200, 0, Some("0")));

    let faults: Vec<Option<String>> = world.mock.requests().into_iter().map(|r| r.fault).collect();
    let want = [None, Some("truncated gzip"), Some("corrupt gzip"), Some("empty body")].map(|f| f.map(str::to_owned));
    assert_eq!(faults, want);
    assert_eq!(world.get_keyed(&btc(day())).await.body, good, "plans are used up");
}

#[tokio::test]
async fn a_delay_holds_the_answer_back() {
    let world = World::start().await;
    world.mock.fail_next(btc_file(), 1, Fault::Delay(Duration::from_millis(400)));
    let started = Instant::now();
    let answer = world.get_keyed(&btc(day())).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(answer.status, 200);
    assert!(answer.gunzip().lines().count() > 100);
    assert_eq!(world.mock.requests()[0].fault.as_deref(), Some("delay 400 ms"));
}

#[tokio::test]
async fn plans_strike_only_matching_requests() {
    let world = World::start().await;
    world.mock.fail_next("/v1/exchanges", 1, Fault::server_error(502));
    world.mock.fail_next(btc_file(), 1, Fault::server_error(500));
    assert_eq!(world.get_keyed(&file_path("binance-futures", "quotes", day(), "BTCUSDT")).await.status, 200);
    assert_eq!(world.get_keyed(&btc(day().succ())).await.status, 200);
    assert_eq!(world.get_keyed("/v1/instruments/bitmex").await.status, 200);
    assert_eq!(world.get("/v1/exchanges/bitmex", None).await.status, 502);
    assert_eq!(world.get_keyed(&btc(day())).await.status, 500);
    world.mock.fail_next(FaultTarget::Any, 1, Fault::server_error(503));
    assert_eq!(world.get_keyed("/v1/instruments/bitmex").await.status, 503);
    world.mock.fail_next(FaultTarget::Any, 5, Fault::server_error(503));
    world.mock.clear_faults();
    assert_eq!(world.get("/v1/exchanges", None).await.status, 200);
}
