//! tabledata.list: paging, selectedFields, cell encoding, both timestamp encodings, empty tables.

use serde_json::{Value, json};

use crate::support::{D, JUNE_1, JUNE_2, P, World, candle, load_job};

async fn world_with_candles(count: i64) -> World {
    let world = World::start().await;
    world.create_candles().await;
    let rows: Vec<Value> = (0..count).map(|minute| candle("BTCUSDT", JUNE_1, minute, 100.0 + minute as f64)).collect();
    let answer = world.load(&load_job("seed", "candles", "WRITE_APPEND"), &rows).await;
    assert_eq!(answer.body["status"], json!({"state": "DONE"}));
    world
}

fn data_path(query: &str) -> String {
    format!("/projects/{P}/datasets/{D}/tables/candles/data?{query}")
}

#[tokio::test]
async fn pages_follow_page_tokens_until_the_last_one_which_has_none() {
    let world = world_with_candles(5).await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let query = match &token {
            Some(token) => {
                format!("maxResults=2&pageToken={token}&formatOptions.useInt64Timestamp=true")
            }
            None => "maxResults=2&formatOptions.useInt64Timestamp=true".to_owned(),
        };
        let page = world.get(&data_path(&query)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body["kind"], "bigquery#tableDataList");
        assert_eq!(page.body["totalRows"], "5", "totalRows is an int64 string on every page");
        let rows = page.body["rows"].as_array().cloned().unwrap_or_default();
        pages.push(rows.len());
        seen.extend(rows.iter().map(|row| row["f"][4]["v"].clone()));
        token = page.body["pageToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(seen, ["1", "2", "3", "4", "5"].map(|n| json!(n)));
}

#[tokio::test]
async fn start_index_skips_rows_and_a_bad_page_token_is_400() {
    let world = world_with_candles(3).await;
    let page = world.get(&data_path("startIndex=2")).await;
    assert_eq!(page.body["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(page.body["rows"][0]["f"][4], json!({"v": "3"}));
    assert!(page.body.get("pageToken").is_none());
    let bad = world.get(&data_path("pageToken=garbage")).await;
    assert_eq!((bad.status, bad.reason()), (400, "invalid"));
}

#[tokio::test]
async fn cells_are_strings_timestamps_float_seconds_by_default_and_null_is_v_null() {
    let world = World::start().await;
    world.create_candles().await;
    let mut row = candle("BTCUSDT", JUNE_1, 0, 67000.5);
    row["trades"] = Value::Null;
    world.load(&load_job("a", "candles", "WRITE_APPEND"), &[row]).await;
    let page = world.get(&data_path("prettyPrint=false")).await;
    assert_eq!(
        page.body["rows"],
        json!([{"f": [{"v": "binance"}, {"v": "BTCUSDT"}, {"v": "1.7172E9"}, {"v": "67000.5"}, {"v": null}]}])
    );
    let micros = world.get(&data_path("formatOptions.useInt64Timestamp=True")).await;
    assert_eq!(micros.body["rows"][0]["f"][2], json!({"v": "1717200000000000"}), "Python sends True with a capital T");
}

#[tokio::test]
async fn selected_fields_returns_only_those_columns_in_table_order() {
    let world = world_with_candles(1).await;
    let page = world.get(&data_path("selectedFields=trades,symbol")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["rows"], json!([{"f": [{"v": "BTCUSDT"}, {"v": "1"}]}]));
    let unknown = world.get(&data_path("selectedFields=venue")).await;
    assert_eq!((unknown.status, unknown.reason()), (400, "invalid"));
}

#[tokio::test]
async fn an_empty_table_and_max_results_zero_answer_without_a_rows_key() {
    let world = World::start().await;
    world.create_candles().await;
    let empty = world.get(&data_path("")).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["totalRows"], "0");
    assert!(empty.body.get("rows").is_none(), "{}", empty.body);
    assert!(empty.body.get("pageToken").is_none());

    let world = world_with_candles(2).await;
    let zero = world.get(&data_path("maxResults=0")).await;
    assert_eq!(zero.body["totalRows"], "2");
    assert!(zero.body.get("rows").is_none(), "{}", zero.body);
}

#[tokio::test]
async fn a_decorated_table_lists_only_that_partition() {
    let world = World::start().await;
    world.create_candles().await;
    let rows = [candle("ONE", JUNE_1, 0, 1.0), candle("TWO", JUNE_2, 0, 2.0)];
    world.load(&load_job("a", "candles", "WRITE_APPEND"), &rows).await;
    let page = world.get(&format!("/projects/{P}/datasets/{D}/tables/candles%2420240602/data")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["totalRows"], "1");
    assert_eq!(page.body["rows"][0]["f"][1], json!({"v": "TWO"}));
    let table = world.get(&format!("/projects/{P}/datasets/{D}/tables/candles$20240601")).await;
    assert_eq!(table.body["numRows"], "1");
}

#[tokio::test]
async fn listing_a_missing_table_is_404() {
    let world = World::start().await;
    world.create_dataset().await;
    let missing = world.get(&data_path("")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["message"], "Not found: Table p:market.candles");
}
