//! Datasets: create, get, list, delete, and BigQuery's 404 and 409 bodies.

use serde_json::json;

use crate::support::{D, P, World, is_int64_string};

#[tokio::test]
async fn creating_a_dataset_returns_the_dataset_resource() {
    let world = World::start().await;
    let created = world
        .post(&format!("/projects/{P}/datasets"), &json!({"datasetReference": {"projectId": P, "datasetId": D}}))
        .await;
    assert_eq!(created.status, 200);
    assert_eq!(created.body["kind"], "bigquery#dataset");
    assert_eq!(created.body["id"], "p:market");
    assert_eq!(created.body["datasetReference"], json!({"projectId": P, "datasetId": D}));
    assert_eq!(created.body["location"], "US");
    assert!(is_int64_string(&created.body["creationTime"]), "{}", created.body);
    assert!(is_int64_string(&created.body["lastModifiedTime"]), "{}", created.body);
    assert!(created.body["etag"].is_string());

    let fetched = world.get(&format!("/projects/{P}/datasets/{D}")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body["datasetReference"], created.body["datasetReference"]);
    assert_eq!(fetched.body["creationTime"], created.body["creationTime"]);
    assert!(world.fake.dataset_exists(P, D));
}

#[tokio::test]
async fn creating_an_existing_dataset_is_409_duplicate_in_bigquery_error_shape() {
    let world = World::start().await;
    world.create_dataset().await;
    let again = world
        .post(&format!("/projects/{P}/datasets"), &json!({"datasetReference": {"projectId": P, "datasetId": D}}))
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body,
        json!({"error": {"code": 409, "message": "Already Exists: Dataset p:market",
            "errors": [{"message": "Already Exists: Dataset p:market", "domain": "global", "reason": "duplicate"}],
            "status": "ALREADY_EXISTS"}})
    );
}

#[tokio::test]
async fn getting_a_missing_dataset_is_404_not_found_in_bigquery_error_shape() {
    let world = World::start().await;
    let missing = world.get(&format!("/projects/{P}/datasets/nope")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!({"error": {"code": 404, "message": "Not found: Dataset p:nope",
            "errors": [{"message": "Not found: Dataset p:nope", "domain": "global", "reason": "notFound"}],
            "status": "NOT_FOUND"}})
    );
}

#[tokio::test]
async fn an_invalid_dataset_id_is_400_invalid() {
    let world = World::start().await;
    let answer = world
        .post(&format!("/projects/{P}/datasets"), &json!({"datasetReference": {"projectId": P, "datasetId": "bad-id"}}))
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.reason(), "invalid");
    assert_eq!(answer.body["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn deleting_a_dataset_with_tables_needs_delete_contents() {
    let world = World::start().await;
    world.create_candles().await;
    let refused = world.delete(&format!("/projects/{P}/datasets/{D}")).await;
    assert_eq!((refused.status, refused.reason()), (400, "resourceInUse"));
    assert!(world.fake.table_exists(P, D, "candles"));

    let deleted = world.delete(&format!("/projects/{P}/datasets/{D}?deleteContents=True")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, serde_json::Value::Null);
    assert!(!world.fake.table_exists(P, D, "candles"));
    assert_eq!(world.get(&format!("/projects/{P}/datasets/{D}")).await.status, 404);
}

#[tokio::test]
async fn listing_datasets_names_each_one_and_omits_the_key_when_there_are_none() {
    let world = World::start().await;
    let empty = world.get(&format!("/projects/{P}/datasets")).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["kind"], "bigquery#datasetList");
    assert!(empty.body.get("datasets").is_none());
    world.create_dataset().await;
    let listed = world.get(&format!("/projects/{P}/datasets")).await;
    assert_eq!(listed.body["datasets"][0]["datasetReference"], json!({"projectId": P, "datasetId": D}));
    assert_eq!(listed.body["datasets"].as_array().map(Vec::len), Some(1));
}

/// Node's official client, pointed at an emulator with BIGQUERY_EMULATOR_HOST, sends the API paths without the
/// `/bigquery/v2` prefix: the same calls answer the same way.
#[tokio::test]
async fn the_api_also_answers_without_the_bigquery_v2_prefix() {
    let world = World::start().await;
    let base = world.fake.uri();
    let body = json!({"datasetReference": {"projectId": P, "datasetId": D}});
    let created = world.send(world.http.post(format!("{base}/projects/{P}/datasets")).json(&body)).await;
    assert_eq!((created.status, created.body["id"].clone()), (200, json!("p:market")), "{}", created.body);
    let fetched = world.get(&format!("/projects/{P}/datasets/{D}")).await;
    assert_eq!(fetched.status, 200, "and the prefixed path sees it");
    let listed = world.send(world.http.get(format!("{base}/projects/{P}/datasets"))).await;
    assert_eq!(listed.body["datasets"][0]["datasetReference"]["datasetId"], D, "{}", listed.body);
    let missing = world.send(world.http.get(format!("{base}/projects/{P}/datasets/nothing"))).await;
    assert_eq!((missing.status, missing.body["error"]["errors"][0]["reason"].clone()), (404, json!("notFound")));
}
