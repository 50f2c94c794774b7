//! The metadata API: `/v1/exchanges`, `/v1/exchanges/{exchange}` and `/v1/instruments/{exchange}[/{id}]`,
//! with Tardis' exact field names and shapes.

use chrono::{TimeZone, Utc};
use fakes::tardis::{IncidentReport, IncidentStatus, TardisOptions};
use serde_json::{Value, json};

use crate::support::{World, exchange, last_exported};

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn the_exchange_list_has_one_summary_per_exchange_without_a_key() {
    let world = World::start().await;
    let answer = world.get("/v1/exchanges", None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let list = answer.json();
    let ids: Vec<&str> = list.as_array().expect("an array").iter().map(|e| e["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["binance-futures", "bitmex", "deribit"]);
    assert_eq!(keys(&list[0]), ["availableSince", "enabled", "id", "name", "supportsDatasets"]);
    assert_eq!(list[1]["name"], "BitMEX");
    assert_eq!(list[0]["supportsDatasets"], true);
}

#[tokio::test]
async fn exchange_details_have_the_documented_shape_and_a_configured_incident_list() {
    let incident = IncidentReport {
        from: Utc.with_ymd_and_hms(2024, 6, 3, 10, 0, 0).single().expect("valid"),
        to: Utc.with_ymd_and_hms(2024, 6, 3, 11, 30, 0).single().expect("valid"),
        status: IncidentStatus::Resolved,
        details: "exchange WebSocket outage".to_owned(),
    };
    let options = TardisOptions::exported_through(last_exported()).with_incident(exchange("deribit"), incident);
    let world = World::start_with(0.1, options).await;
    let details = world.get("/v1/exchanges/deribit", None).await.json();
    assert_eq!(
        keys(&details),
        [
            "availableChannels",
            "availableSince",
            "availableSymbols",
            "datasets",
            "enabled",
            "id",
            "incidentReports",
            "name",
            "supportsDatasets"
        ]
    );
    assert_eq!((details["id"].as_str(), details["name"].as_str()), (Some("deribit"), Some("Deribit")));
    assert!(details["availableChannels"].as_array().expect("array").contains(&json!("trades")));
    assert_eq!(
        details["incidentReports"],
        json!([{"from": "2024-06-03T10:00:00.000Z", "to": "2024-06-03T11:30:00.000Z", "status": "resolved",
                "details": "exchange WebSocket outage"}])
    );
    let datasets = &details["datasets"];
    assert_eq!(keys(datasets), ["exportedFrom", "exportedUntil", "formats", "stats", "symbols"]);
    assert_eq!(datasets["exportedUntil"], "2024-07-01T00:00:00.000Z");
    assert_eq!(datasets["formats"], json!(["csv"]));
    let symbols = datasets["symbols"].as_array().expect("array");
    let btc = symbols.iter().find(|s| s["id"] == "BTC-PERPETUAL").expect("listed");
    assert_eq!(
        *btc,
        json!({"id": "BTC-PERPETUAL", "type": "perpetual", "availableSince": "2019-03-30T00:00:00.000Z",
               "dataTypes": ["trades", "quotes", "derivative_ticker", "book_snapshot_5"]})
    );
    let group = symbols.iter().find(|s| s["id"] == "PERPETUALS").expect("the grouped symbol is listed");
    assert_eq!(group["type"], "perpetual");
    // The other exchanges have no incident.
    let bitmex = world.get("/v1/exchanges/bitmex", None).await.json();
    assert_eq!(bitmex["incidentReports"], json!([]));
    let binance = world.get("/v1/exchanges/binance-futures", None).await.json();
    let native: Vec<&str> =
        binance["availableSymbols"].as_array().expect("array").iter().map(|s| s["id"].as_str().expect("id")).collect();
    assert_eq!(native, ["btcusdt", "ethusdt", "solusdt", "xrpusdt"], "availableSymbols are exchange-native ids");
    let unknown = world.get("/v1/exchanges/kraken", None).await;
    assert_eq!((unknown.status, unknown.json()), (404, json!({"code": 404, "message": "Unknown exchange 'kraken'"})));
}

#[tokio::test]
async fn instruments_use_tardis_field_names_and_carry_their_changes() {
    let world = World::start().await;
    let answer = world.get_keyed("/v1/instruments/bitmex").await;
    assert_eq!(answer.status, 200);
    let list = answer.json();
    let bitmex = fixtures::Universe::default_universe().exchanges()[1].listed().count();
    assert!(bitmex > 4, "the traded four and the catalogue: futures, a delisted and an inactive perpetual");
    assert_eq!(list.as_array().expect("array").len(), bitmex);
    let xbt = list.as_array().expect("array").iter().find(|i| i["id"] == "XBTUSD").expect("listed");
    assert_eq!(
        keys(xbt),
        [
            "active",
            "amountIncrement",
            "availableSince",
            "baseCurrency",
            "changes",
            "contractMultiplier",
            "contractType",
            "datasetId",
            "exchange",
            "id",
            "inverse",
            "makerFee",
            "minTradeAmount",
            "priceIncrement",
            "quoteCurrency",
            "settlementCurrency",
            "takerFee",
            "type",
            "underlyingType"
        ]
    );
    assert_eq!(
        (&xbt["baseCurrency"], &xbt["quoteCurrency"], &xbt["type"], &xbt["contractType"]),
        (&json!("BTC"), &json!("USD"), &json!("perpetual"), &json!("inverse_perpetual"))
    );
    assert_eq!((&xbt["priceIncrement"], &xbt["amountIncrement"]), (&json!(0.5), &json!(100.0)));
    assert_eq!(
        xbt["changes"],
        json!([{"until": "2021-06-08T04:30:00.000Z", "amountIncrement": 1.0, "minTradeAmount": 1.0},
               {"until": "2024-10-22T00:00:00.000Z", "makerFee": 0.0002, "takerFee": 0.00075}])
    );
    assert!(xbt.get("availableTo").is_none(), "a listed instrument has no availableTo");
    let one = world.get_keyed("/v1/instruments/bitmex/XBTUSD").await;
    assert_eq!((one.status, &one.json()), (200, xbt), "the single-instrument URL returns the object");
    let native = world.get_keyed("/v1/instruments/binance-futures/btcusdt").await.json();
    assert_eq!((native["id"].as_str(), native["datasetId"].as_str()), (Some("btcusdt"), Some("BTCUSDT")));
}

#[tokio::test]
async fn unknown_instruments_and_exchanges_are_404_json() {
    let world = World::start().await;
    let instrument = world.get_keyed("/v1/instruments/bitmex/NOPE").await;
    assert_eq!(
        (instrument.status, instrument.json()),
        (404, json!({"code": 404, "message": "Unknown instrument 'NOPE' for bitmex"}))
    );
    let exchange = world.get_keyed("/v1/instruments/kraken").await;
    assert_eq!((exchange.status, exchange.json()), (404, json!({"code": 404, "message": "Unknown exchange 'kraken'"})));
    let elsewhere = world.get_keyed("/v2/anything").await;
    assert_eq!((elsewhere.status, elsewhere.json()["code"].as_i64()), (404, Some(404)));
}
