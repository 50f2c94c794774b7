//! The candle rows the BigQuery scenarios load, as a plan spells them (what a client sends and reads back) and as
//! the fake stores them (what `FakeBigQuery::rows` returns), shared by the Python and Node clients' tests. It
//! knows nothing of any client.

use fakes::FakeBigQuery;
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

/// One load job as the two-day scenario checks it: type, destination, write disposition, rows written.
pub type Load = (String, Option<String>, Option<String>, u64);

/// Every job the fake ran, as [`Load`]s, in the order it ran them.
pub fn loads(fake: &FakeBigQuery) -> Vec<Load> {
    fake.jobs().into_iter().map(|job| (job.job_type, job.destination, job.write_disposition, job.output_rows)).collect()
}

/// The loads of the two-day scenario: the first day (3 rows), the second (4), the first again (2), each a
/// `WRITE_TRUNCATE` into its partition of `project:dataset.table`.
pub fn two_days_and_a_rerun(project: &str, dataset: &str, table: &str) -> Vec<Load> {
    let load = |partition: &str, rows: u64| {
        let target = format!("{project}:{dataset}.{table}${partition}");
        ("LOAD".to_owned(), Some(target), Some("WRITE_TRUNCATE".to_owned()), rows)
    };
    vec![load("20240603", 3), load("20240604", 4), load("20240603", 2)]
}
