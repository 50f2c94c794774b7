//! tabledata.insertAll: per-row errors, `stopped`, skipInvalidRows, insertId dedupe, gzip bodies.

use serde_json::{Value, json};

use crate::support::{D, JUNE_1, P, World, candle, gzip};

fn insert_all_path() -> String {
    format!("/projects/{P}/datasets/{D}/tables/candles/insertAll")
}

fn request(rows: &[Value], skip_invalid: bool) -> Value {
    let rows: Vec<Value> =
        rows.iter().enumerate().map(|(index, row)| json!({"insertId": format!("id-{index}"), "json": row})).collect();
    json!({"rows": rows, "skipInvalidRows": skip_invalid, "ignoreUnknownValues": null, "templateSuffix": null})
}

#[tokio::test]
async fn a_bad_row_is_reported_and_every_other_row_is_stopped() {
    let world = World::start().await;
    world.create_candles().await;
    let mut bad = candle("B", JUNE_1, 1, 1.0);
    bad["venue"] = json!("x");
    let answer = world.post(&insert_all_path(), &request(&[candle("A", JUNE_1, 0, 1.0), bad], false)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body,
        json!({"kind": "bigquery#tableDataInsertAllResponse", "insertErrors": [
            {"index": 0, "errors": [{"reason": "stopped", "location": "", "debugInfo": "", "message": ""}]},
            {"index": 1, "errors": [{"reason": "invalid", "location": "venue", "debugInfo": "", "message": "no such field: venue."}]},
        ]})
    );
    assert!(world.rows("candles").is_empty());
}

#[tokio::test]
async fn skip_invalid_rows_inserts_the_good_ones() {
    let world = World::start().await;
    world.create_candles().await;
    let mut bad = candle("B", JUNE_1, 1, 1.0);
    bad["trades"] = json!("many");
    let answer = world.post(&insert_all_path(), &request(&[candle("A", JUNE_1, 0, 1.0), bad], true)).await;
    assert_eq!(answer.body["insertErrors"].as_array().map(Vec::len), Some(1));
    assert_eq!(answer.body["insertErrors"][0]["index"], 1);
    assert_eq!(answer.body["insertErrors"][0]["errors"][0]["location"], "trades");
    assert_eq!(world.rows("candles").len(), 1);
    let table = world.get(&format!("/projects/{P}/datasets/{D}/tables/candles")).await.body;
    assert_eq!(table["streamingBuffer"]["estimatedRows"], "1");
}

#[tokio::test]
async fn retried_rows_with_the_same_insert_id_are_stored_once() {
    let world = World::start().await;
    world.create_candles().await;
    let body = request(&[candle("A", JUNE_1, 0, 1.0), candle("B", JUNE_1, 1, 1.0)], false);
    for _ in 0..2 {
        let answer = world.post(&insert_all_path(), &body).await;
        assert_eq!(answer.body, json!({"kind": "bigquery#tableDataInsertAllResponse"}));
    }
    assert_eq!(world.rows("candles").len(), 2);
}

#[tokio::test]
async fn a_gzip_body_is_decompressed() {
    let world = World::start().await;
    world.create_candles().await;
    let body = request(&[candle("A", JUNE_1, 0, 1.0)], false).to_string();
    let answer = world
        .send(
            world
                .http
                .post(world.url(&insert_all_path()))
                .header("content-encoding", "gzip")
                .header("content-type", "application/octet-stream")
                .body(gzip(body.as_bytes())),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.get("insertErrors").is_none());
    assert_eq!(world.rows("candles")[0]["symbol"], "A");
    let logged = world.fake.requests().pop().expect("the insert was logged");
    assert_eq!(logged.header("content-encoding"), Some("gzip"));
    assert!(logged.body_bytes < body.len() + 32, "the log keeps the wire size");
}

#[tokio::test]
async fn inserting_into_a_missing_table_is_404_not_insert_errors() {
    let world = World::start().await;
    world.create_dataset().await;
    let answer = world.post(&insert_all_path(), &request(&[candle("A", JUNE_1, 0, 1.0)], false)).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.reason(), "notFound");
}
