//! `/v1/instruments/{exchange}?filter=<url-encoded JSON>`: every documented key, string or array values,
//! combinations, and a 400 `{code, message}` for a filter that is not valid.

use chrono::{TimeZone, Utc};
use fakes::tardis::TardisOptions;
use fixtures::Universe;
use rstest::rstest;
use serde_json::Value;

use crate::support::{World, last_exported};

/// Deribit's four perpetuals, with XRP_USDC-PERPETUAL delisted at the start of 2023 (without the catalogue of
/// futures and options, so that each filter's answer is short enough to read).
async fn world() -> World {
    let mut universe = Universe::default_universe();
    let deribit = &mut universe.exchanges_mut()[2];
    deribit.catalogue.clear();
    let xrp = deribit.symbols.iter_mut().find(|s| s.symbol().as_str() == "XRP_USDC-PERPETUAL").expect("listed");
    xrp.instrument.active = false;
    xrp.instrument.available_to = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).single();
    World::start_universe(universe, 0.05, TardisOptions::exported_through(last_exported())).await
}

fn encoded(filter: &str) -> String {
    url::form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

#[rstest]
#[case(r#"{"baseCurrency":"BTC"}"#, &["BTC-PERPETUAL"])]
#[case(r#"{"baseCurrency":["SOL","XRP"]}"#, &["SOL_USDC-PERPETUAL", "XRP_USDC-PERPETUAL"])]
#[case(r#"{"quoteCurrency":"USDC"}"#, &["SOL_USDC-PERPETUAL", "XRP_USDC-PERPETUAL"])]
#[case(r#"{"quoteCurrency":["USD"]}"#, &["BTC-PERPETUAL", "ETH-PERPETUAL"])]
#[case(r#"{"type":"spot"}"#, &[])]
#[case(r#"{"type":["spot","perpetual"]}"#, &["BTC-PERPETUAL", "ETH-PERPETUAL", "SOL_USDC-PERPETUAL", "XRP_USDC-PERPETUAL"])]
#[case(r#"{"contractType":"inverse_perpetual"}"#, &["BTC-PERPETUAL", "ETH-PERPETUAL"])]
#[case(r#"{"contractType":["linear_perpetual","quanto_perpetual"]}"#, &["SOL_USDC-PERPETUAL", "XRP_USDC-PERPETUAL"])]
#[case(r#"{"underlyingType":"native"}"#, &["BTC-PERPETUAL", "ETH-PERPETUAL", "SOL_USDC-PERPETUAL", "XRP_USDC-PERPETUAL"])]
#[case(r#"{"underlyingType":["equity","fx"]}"#, &[])]
#[case(r#"{"active":false}"#, &["XRP_USDC-PERPETUAL"])]
#[case(r#"{"active":true}"#, &["BTC-PERPETUAL", "ETH-PERPETUAL", "SOL_USDC-PERPETUAL"])]
#[case(r#"{"availableSince":"2023-06-01T00:00:00.000Z"}"#, &["BTC-PERPETUAL", "ETH-PERPETUAL", "SOL_USDC-PERPETUAL"])]
#[case(r#"{"availableTo":"2020-01-01T00:00:00.000Z"}"#, &["BTC-PERPETUAL", "ETH-PERPETUAL"])]
#[case(
    r#"{"availableSince":"2022-06-01T00:00:00.000Z","availableTo":"2022-07-01T00:00:00.000Z","quoteCurrency":"USDC"}"#,
    &["SOL_USDC-PERPETUAL", "XRP_USDC-PERPETUAL"]
)]
#[case(r#"{"baseCurrency":"BTC","active":true,"type":"perpetual","contractType":"inverse_perpetual"}"#, &["BTC-PERPETUAL"])]
#[case(r#"{"baseCurrency":"btc"}"#, &[])]
#[case("{}", &["BTC-PERPETUAL", "ETH-PERPETUAL", "SOL_USDC-PERPETUAL", "XRP_USDC-PERPETUAL"])]
#[tokio::test]
async fn each_filter_key_selects_the_instruments_it_names(#[case] filter: &str, #[case] want: &[&str]) {
    let world = world().await;
    let answer = world.get_keyed(&format!("/v1/instruments/deribit?filter={}", encoded(filter))).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let ids: Vec<String> =
        answer.json().as_array().expect("an array").iter().map(|i| i["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(ids, want, "{filter}");
}

#[rstest]
#[case("{", "not valid JSON")]
#[case("", "not valid JSON")]
#[case("[]", "must be a JSON object")]
#[case(r#"{"active":"yes"}"#, "'active' must be a boolean")]
#[case(r#"{"baseCurrency":5}"#, "'baseCurrency' must be a string or an array of strings")]
#[case(r#"{"type":["perpetual",1]}"#, "'type' must be a string or an array of strings")]
#[case(r#"{"availableSince":"yesterday"}"#, "'availableSince' must be an ISO 8601 date")]
#[tokio::test]
async fn a_bad_filter_is_a_400_with_tardis_error_body(#[case] filter: &str, #[case] reason: &str) {
    let world = world().await;
    let answer = world.get_keyed(&format!("/v1/instruments/deribit?filter={}", encoded(filter))).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    assert_eq!(body["code"], Value::from(400));
    let message = body["message"].as_str().expect("a message");
    assert!(message.starts_with("Invalid 'filter' param") && message.contains(reason), "{message}");
    assert_eq!(body.as_object().expect("an object").len(), 2, "exactly {{code, message}}");
}
