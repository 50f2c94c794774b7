//! Postgres provisioning: an existing server from HARNESS_DATABASE_URL, a
//! container through testcontainers (podman and the locally built image on these machines), or a
//! throwaway cluster from the local binaries; every caller gets a fresh database of its own.

use harness::{Backend, PostgresServer};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

async fn database_exists(server: &PostgresServer, name: &str) -> bool {
    let mut conn = PgConnection::connect(server.admin_url()).await.expect("admin connection");
    sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .expect("query")
}

/// Two fresh databases do not see each other's tables, and each disappears with its handle.
async fn check_isolation(server: &PostgresServer) {
    let first = server.fresh_database().await.expect("first database");
    let second = server.fresh_database().await.expect("second database");
    assert_ne!(first.name(), second.name());
    let mut conn = PgConnection::connect(first.url()).await.expect("connect first");
    sqlx::query("CREATE TABLE marker (x int)").execute(&mut conn).await.expect("create");
    conn.close().await.expect("close");
    let mut conn = PgConnection::connect(second.url()).await.expect("connect second");
    let seen: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('marker')::text").fetch_one(&mut conn).await.expect("query");
    assert_eq!(seen, None, "databases are isolated");
    conn.close().await.expect("close");
    let name = first.name().to_owned();
    drop(first);
    assert!(!database_exists(server, &name).await, "a dropped handle drops its database");
    assert!(database_exists(server, second.name()).await);
}

#[tokio::test]
async fn the_server_given_by_harness_database_url_comes_first() {
    assert!(std::env::var("HARNESS_DATABASE_URL").is_ok(), "the nextest setup script exports HARNESS_DATABASE_URL");
    let server = PostgresServer::provision().await.expect("provisioned");
    assert_eq!(server.backend(), Backend::External);
    check_isolation(&server).await;
}

#[tokio::test]
async fn a_container_started_through_testcontainers_serves_fresh_databases() {
    let server = PostgresServer::container().await.expect("container starts (run scripts/setup-podman.sh as root)");
    assert_eq!(server.backend(), Backend::Container);
    check_isolation(&server).await;
}

#[tokio::test]
async fn a_throwaway_cluster_from_local_binaries_serves_fresh_databases() {
    let server = PostgresServer::local_binaries().await.expect("local cluster starts");
    assert_eq!(server.backend(), Backend::LocalBinaries);
    check_isolation(&server).await;
}

#[tokio::test]
async fn a_pipeline_migrates_a_fresh_database_and_records_into_it() {
    let server = PostgresServer::provision().await.expect("provisioned");
    let database = server.fresh_database().await.expect("database");
    let store = pipeline::store::Store::connect(database.url()).await.expect("connect and migrate");
    let day = market::TradingDay::parse("2024-06-01").expect("valid");
    let id = store.start_run(day, "abc123", "test").await.expect("start");
    assert!(id > 0);
    // Migrating again is a no-op.
    pipeline::store::Store::connect(database.url()).await.expect("second migration is idempotent");
    let runs = store.runs_of_day(day).await.expect("list");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, pipeline::store::RunStatus::Running);
}
