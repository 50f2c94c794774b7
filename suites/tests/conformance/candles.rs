//! The candle rows the BigQuery scenarios load, as a plan spells them (what a client sends and reads back) and as
//! the fake stores them (what `FakeBigQuery::rows` returns), shared by the Python and Node clients' tests. It
//! knows nothing of any client.

use serde_json::{Map, Value, json};

/// A candle row as the plan and the clients spell it.
pub fn candle(symbol: &str, day: &str, minute: u32, close: f64, trade_count: i64) -> Value {
    json!({
        "exchange": "binance-futures",
        "symbol": symbol,
        "open_time": format!("{day}T{:02}:{:02}:00Z", minute / 60, minute % 60),
        "close": close,
        "trade_count": trade_count,
    })
}

/// The same row as the fake stores it (`FakeBigQuery::rows`): TIMESTAMP as microseconds since the epoch.
pub fn stored(row: &Value) -> Map<String, Value> {
    let mut row = row.as_object().expect("rows are objects").clone();
    let text = row["open_time"].as_str().expect("open_time is text").to_owned();
    let at = chrono::DateTime::parse_from_rfc3339(&text).expect("RFC 3339 timestamps");
    row.insert("open_time".into(), json!(at.timestamp_micros()));
    row
}

/// Rows in a fixed order, for comparing sets of rows the fake keeps in load order.
pub fn sorted(mut rows: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    rows.sort_by_key(|row| Value::Object(row.clone()).to_string());
    rows
}
