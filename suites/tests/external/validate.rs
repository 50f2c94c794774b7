//! `pipeline validate` as run against production: the same binary and code path, pointed at the fake. It reads
//! BigQuery (tables.get, tabledata.list) and never writes to it, and it authenticates with a service-account key
//! file as it would against Google.

use fakes::bigquery::Route;
use harness::{World, WorldOptions};
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{binary, command, day, describe, output};

const PAIRS: [(&str, &str); 2] = [("bitmex", "XBTUSD"), ("deribit", "ETH-PERPETUAL")];

/// A world whose date was run (and therefore landed) by the in-process pipeline.
async fn landed_world() -> World {
    let world = World::start(WorldOptions::new(23, day()).activity(0.05).pairs(&PAIRS)).await.expect("world");
    let outcome = world.pipeline().await.expect("pipeline").run_day(day(), "external-suite").await.expect("recorded");
    assert_eq!(outcome.error, None, "{outcome:?}");
    world
}

/// `pipeline validate --date D` with the world's environment (and a data directory of its own, so the trades
/// files are downloaded again, as on a machine other than the one that ran the date).
fn validate(world: &World, data_dir: &std::path::Path) -> tokio::process::Command {
    let mut validate = command(&binary("pipeline"));
    validate.args(["validate", "--date"]).arg(day().to_string()).envs(world.env()).env("PIPELINE_DATA_DIR", data_dir);
    validate
}

#[tokio::test]
async fn pipeline_validate_reads_bigquery_and_never_writes_to_it() {
    let world = landed_world().await;
    let before = world.bigquery.requests().len();
    let (jobs, partitions) =
        (world.bigquery.jobs().len(), world.bigquery.partitions(harness::world::PROJECT, "market_data", "candles_1m"));
    let data_dir = tempfile::tempdir().expect("temp dir");

    let out = output(validate(&world, data_dir.path())).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let requests = &world.bigquery.requests()[before..];
    assert!(requests.iter().any(|r| r.route == Some(Route::ListTableData)), "it read the partitions: {requests:#?}");
    let reads = [Route::GetDataset, Route::GetTable, Route::ListTables, Route::ListTableData];
    let writes: Vec<String> = requests
        .iter()
        .filter(|r| r.method != "GET" || !r.route.is_some_and(|route| reads.contains(&route)))
        .map(|r| format!("{} {} ({:?})", r.method, r.path, r.route))
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "validate made requests that are not reads");
    assert_eq!(world.bigquery.jobs().len(), jobs, "no job was created");
    assert_eq!(world.bigquery.partitions(harness::world::PROJECT, "market_data", "candles_1m"), partitions);
}

#[tokio::test]
async fn pipeline_validate_authenticates_with_a_service_account_key_file() {
    let world = landed_world().await;
    // Google's token endpoint, as the key file names it: a signed JWT in, an access token out.
    let oauth = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"))
        .and(body_string_contains("assertion="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "minted-for-validate", "expires_in": 3600, "token_type": "Bearer"
        })))
        .expect(1..)
        .mount(&oauth)
        .await;
    // BigQuery refuses any request without that token, with its own 401.
    Mock::given(|request: &Request| {
        request.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer minted-for-validate")
    })
    .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
        "code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED",
        "errors": [{"reason": "authError", "message": "Invalid Credentials", "domain": "global"}]
    }})))
    .with_priority(1)
    .mount(world.bigquery.server())
    .await;

    let before = world.bigquery.requests().len();
    let dir = tempfile::tempdir().expect("temp dir");
    let pem = dir.path().join("key.pem");
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&pem)
        .output()
        .expect("openssl is installed (it makes a throwaway RSA key for this test)");
    assert!(made.status.success(), "openssl genpkey: {}", String::from_utf8_lossy(&made.stderr));
    let key = json!({
        "type": "service_account",
        "project_id": harness::world::PROJECT,
        "private_key_id": "0123456789abcdef",
        "private_key": std::fs::read_to_string(&pem).expect("key written"),
        "client_email": "validate@harness-project.iam.gserviceaccount.com",
        "client_id": "1",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": format!("{}/token", oauth.uri()),
    });
    let key_file = dir.path().join("service-account.json");
    std::fs::write(&key_file, key.to_string()).expect("key file written");

    let mut validate = validate(&world, &dir.path().join("data"));
    validate.env_remove("BIGQUERY_ACCESS_TOKEN").env("GOOGLE_APPLICATION_CREDENTIALS", &key_file);
    let out = output(validate).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    oauth.verify().await;
    // Requests without the minted token never reach the fake (the mock above answers them): these did.
    let reads = &world.bigquery.requests()[before..];
    assert!(reads.iter().any(|r| r.route == Some(Route::ListTableData) && r.authorized), "{reads:#?}");
}
