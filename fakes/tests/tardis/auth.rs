//! Tardis' authentication rules: the first day of a month is free; other days and instruments need
//! `Authorization: Bearer <key>`; a missing, empty or `Bearer ` key is 401, an unknown key 401, a key
//! without access 403, all with `{code, message}`; exchange details need no key.

use fakes::tardis::TardisOptions;
use market::TradingDay;
use rstest::rstest;

use crate::support::{KEY, World, day, file_path};

const NO_ACCESS: &str = TardisOptions::KEY_WITHOUT_ACCESS;

#[rstest]
#[case::no_header(None, 401, "Missing API key")]
#[case::empty_header(Some(""), 401, "Missing API key")]
#[case::bearer_without_key(Some("Bearer "), 401, "Missing API key")]
#[case::bare_bearer(Some("Bearer"), 401, "Missing API key")]
#[case::wrong_key(Some("Bearer not-a-key"), 401, "Invalid API key")]
#[case::key_without_access(Some("Bearer harness-key-without-access"), 403, "does not have access")]
#[case::valid_key(Some("Bearer harness-tardis-key"), 200, "")]
#[tokio::test]
async fn datasets_of_paid_days_and_instruments_follow_the_key_matrix(
    #[case] authorization: Option<&str>,
    #[case] status: u16,
    #[case] message: &str,
) {
    let world = World::start().await;
    assert_eq!((KEY, NO_ACCESS), ("harness-tardis-key", "harness-key-without-access"));
    for path in [file_path("bitmex", "trades", day(), "XBTUSD"), "/v1/instruments/bitmex".to_owned()] {
        let answer = world.get(&path, authorization).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
        if status != 200 {
            let body = answer.json();
            assert_eq!(body["code"], status, "{path}");
            assert!(body["message"].as_str().expect("a message").contains(message), "{path}: {body}");
        }
    }
    let logged: Vec<Option<String>> = world.mock.requests().into_iter().map(|r| r.authorization).collect();
    // HTTP drops trailing whitespace of header values: "Bearer " arrives as "Bearer".
    assert_eq!(logged, vec![authorization.map(|a| a.trim_end().to_owned()); 2], "the header is logged as received");
}

#[rstest]
#[case(None)]
#[case(Some(""))]
#[case(Some("Bearer "))]
#[tokio::test]
async fn the_first_day_of_a_month_is_free_without_a_key(#[case] authorization: Option<&str>) {
    let world = World::start().await;
    let first = TradingDay::parse("2024-06-01").expect("valid");
    for data_type in ["trades", "quotes", "book_snapshot_5", "derivative_ticker"] {
        let answer = world.get(&file_path("deribit", data_type, first, "ETH-PERPETUAL"), authorization).await;
        assert_eq!(answer.status, 200, "{data_type}: {}", answer.text());
        assert!(answer.gunzip().lines().count() > 10);
    }
    // The day after is not free.
    let answer = world.get(&file_path("deribit", "trades", first.succ(), "ETH-PERPETUAL"), authorization).await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn exchange_details_need_no_key_even_a_wrong_one() {
    let world = World::start().await;
    for authorization in [None, Some("Bearer not-a-key")] {
        assert_eq!(world.get("/v1/exchanges/bitmex", authorization).await.status, 200);
        assert_eq!(world.get("/v1/exchanges", authorization).await.status, 200);
    }
}

#[tokio::test]
async fn unknown_exchanges_are_404_before_the_key_is_checked() {
    let world = World::start().await;
    let answer = world.get(&file_path("kraken", "trades", day(), "XBTUSD"), None).await;
    assert_eq!(answer.status, 404);
}
