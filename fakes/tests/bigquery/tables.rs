//! Tables: create with partitioning and clustering, legacy type spellings, validation, patch, delete.

use rstest::rstest;
use serde_json::{Value, json};

use crate::support::{D, JUNE_1, JUNE_2, P, World, candle, candles_table, is_int64_string, load_job};

#[tokio::test]
async fn a_created_table_echoes_its_layout_and_answers_in_legacy_type_spelling() {
    let world = World::start().await;
    world.create_dataset().await;
    let body = json!({
        "tableReference": {"projectId": P, "datasetId": D, "tableId": "typed"},
        "schema": {"fields": [
            {"name": "d", "type": "DATE", "mode": "NULLABLE"},
            {"name": "n", "type": "INT64"},
            {"name": "x", "type": "FLOAT64", "mode": "REQUIRED"},
            {"name": "b", "type": "BOOL"},
            {"name": "s", "type": "STRUCT", "fields": [{"name": "inner", "type": "INT64"}]},
        ]},
        "timePartitioning": {"type": "DAY", "field": "d", "expirationMs": "86400000"},
        "clustering": {"fields": ["n"]},
        "labels": {},
    });
    let created = world.post(&format!("/projects/{P}/datasets/{D}/tables"), &body).await;
    assert_eq!(created.status, 200, "{}", created.body);

    let table = world.get(&format!("/projects/{P}/datasets/{D}/tables/typed?prettyPrint=false")).await;
    assert_eq!(table.status, 200);
    let table = table.body;
    assert_eq!(table["kind"], "bigquery#table");
    assert_eq!(table["id"], "p:market.typed");
    assert_eq!(table["tableReference"], json!({"projectId": P, "datasetId": D, "tableId": "typed"}));
    assert_eq!(
        table["schema"],
        json!({"fields": [
            {"name": "d", "type": "DATE", "mode": "NULLABLE"},
            {"name": "n", "type": "INTEGER", "mode": "NULLABLE"},
            {"name": "x", "type": "FLOAT", "mode": "REQUIRED"},
            {"name": "b", "type": "BOOLEAN", "mode": "NULLABLE"},
            {"name": "s", "type": "RECORD", "mode": "NULLABLE", "fields": [{"name": "inner", "type": "INTEGER", "mode": "NULLABLE"}]},
        ]})
    );
    assert_eq!(table["timePartitioning"], json!({"type": "DAY", "field": "d", "expirationMs": "86400000"}));
    assert_eq!(table["clustering"], json!({"fields": ["n"]}));
    assert_eq!(table["numRows"], "0");
    assert_eq!(table["numBytes"], "0");
    assert_eq!(table["type"], "TABLE");
    assert_eq!(table["location"], "US");
    assert!(is_int64_string(&table["creationTime"]) && is_int64_string(&table["lastModifiedTime"]), "{table}");
    assert_eq!(world.fake.table_schema(P, D, "typed"), Some(table["schema"].clone()));
}

#[tokio::test]
async fn creating_a_table_twice_is_409_and_in_a_missing_dataset_is_404() {
    let world = World::start().await;
    world.create_candles().await;
    let again = world.post(&format!("/projects/{P}/datasets/{D}/tables"), &candles_table("candles")).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"]["message"], "Already Exists: Table p:market.candles");
    assert_eq!(again.reason(), "duplicate");

    let mut orphan = candles_table("candles");
    orphan["tableReference"]["datasetId"] = json!("nowhere");
    let missing = world.post(&format!("/projects/{P}/datasets/nowhere/tables"), &orphan).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["message"], "Not found: Dataset p:nowhere");
    assert_eq!(missing.reason(), "notFound");
}

#[rstest]
#[case::partition_on_an_integer(json!({"type": "DAY", "field": "trades"}), json!(null), "can only be of type TIMESTAMP, DATE or DATETIME")]
#[case::partition_on_a_missing_column(json!({"type": "DAY", "field": "nope"}), json!(null), "cannot be found in the schema")]
#[case::partition_on_a_nested_column(json!({"type": "DAY", "field": "open_time.x"}), json!(null), "cannot be found in the schema")]
#[case::five_clustering_columns(json!(null), json!({"fields": ["exchange", "symbol", "open_time", "trades", "exchange"]}), "Too many clustering fields: 5")]
#[case::clustering_on_a_missing_column(json!(null), json!({"fields": ["venue"]}), "Invalid field: venue")]
#[case::unknown_partition_type(json!({"type": "WEEK", "field": "open_time"}), json!(null), "WEEK is not a valid value")]
#[tokio::test]
async fn a_layout_bigquery_rejects_is_400_invalid(
    #[case] partitioning: Value,
    #[case] clustering: Value,
    #[case] fragment: &str,
) {
    let world = World::start().await;
    world.create_dataset().await;
    let mut body = candles_table("bad");
    body["timePartitioning"] = partitioning;
    body["clustering"] = clustering;
    let answer = world.post(&format!("/projects/{P}/datasets/{D}/tables"), &body).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.reason(), "invalid");
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(fragment), "{message}");
    assert!(!world.fake.table_exists(P, D, "bad"));
}

#[tokio::test]
async fn patching_a_table_adds_columns_at_the_end_and_refuses_to_drop_any() {
    let world = World::start().await;
    world.create_candles().await;
    let url = world.url(&format!("/projects/{P}/datasets/{D}/tables/candles"));
    let mut fields = crate::support::candles_schema()["fields"].as_array().cloned().unwrap_or_default();
    fields.insert(0, json!({"name": "vwap", "type": "FLOAT64", "mode": "NULLABLE"}));
    let patched = world.send(world.http.patch(&url).json(&json!({"schema": {"fields": fields}}))).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let names: Vec<&str> =
        patched.body["schema"]["fields"].as_array().into_iter().flatten().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, ["exchange", "symbol", "open_time", "close", "trades", "vwap"]);

    let dropped = world
        .send(
            world
                .http
                .patch(&url)
                .json(&json!({"schema": {"fields": [{"name": "exchange", "type": "STRING", "mode": "REQUIRED"}]}})),
        )
        .await;
    assert_eq!(dropped.status, 400);
    assert_eq!(dropped.reason(), "invalid");
    assert!(
        dropped.body["error"]["message"].as_str().unwrap_or_default().contains("Field symbol is missing in new schema")
    );
}

#[tokio::test]
async fn deleting_a_table_is_204_and_then_it_is_not_found() {
    let world = World::start().await;
    world.create_candles().await;
    let listed = world.get(&format!("/projects/{P}/datasets/{D}/tables")).await;
    assert_eq!(listed.body["tables"][0]["tableReference"]["tableId"], "candles");
    assert_eq!(listed.body["totalItems"], 1);

    let deleted = world.delete(&format!("/projects/{P}/datasets/{D}/tables/candles")).await;
    assert_eq!(deleted.status, 204);
    let missing = world.get(&format!("/projects/{P}/datasets/{D}/tables/candles")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["message"], "Not found: Table p:market.candles");
    assert!(!world.fake.table_exists(P, D, "candles"));
}

#[tokio::test]
async fn null_members_in_a_request_are_treated_as_absent() {
    let world = World::start().await;
    world.create_dataset().await;
    let mut body = candles_table("nulls");
    body["clustering"] = Value::Null;
    body["description"] = Value::Null;
    body["expirationTime"] = Value::Null;
    let created = world.post(&format!("/projects/{P}/datasets/{D}/tables"), &body).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.body.get("clustering").is_none());
    assert!(created.body.get("description").is_none());
}

#[tokio::test]
async fn getting_a_decorated_table_answers_with_the_partition_and_its_decorated_reference() {
    // Python's `list_rows("p.d.t$20240601")` gets the table, then lists `{tableReference}/data`: an undecorated
    // reference would make it read every partition (found by the conformance suite).
    let world = World::start().await;
    world.create_candles().await;
    let rows = [candle("ONE", JUNE_1, 0, 1.0), candle("TWO", JUNE_2, 0, 2.0), candle("THREE", JUNE_2, 1, 3.0)];
    assert_eq!(world.load(&load_job("a", "candles", "WRITE_APPEND"), &rows).await.status, 200);

    let partition = world.get(&format!("/projects/{P}/datasets/{D}/tables/candles%2420240602")).await;
    assert_eq!(partition.status, 200, "{}", partition.body);
    assert_eq!(
        partition.body["tableReference"],
        json!({"projectId": P, "datasetId": D, "tableId": "candles$20240602"})
    );
    assert_eq!(partition.body["id"], "p:market.candles$20240602");
    let self_link = partition.body["selfLink"].as_str().expect("a selfLink");
    assert!(self_link.ends_with("/bigquery/v2/projects/p/datasets/market/tables/candles%2420240602"), "{self_link}");
    assert_eq!(partition.body["numRows"], "2");
    assert_eq!(partition.body["timePartitioning"], json!({"type": "DAY", "field": "open_time"}));

    let whole = world.get(&format!("/projects/{P}/datasets/{D}/tables/candles")).await;
    assert_eq!(whole.body["tableReference"]["tableId"], "candles");
    assert_eq!(whole.body["id"], "p:market.candles");
    assert_eq!(whole.body["numRows"], "3");
}
