//! The fake's public face: starting the wiremock server with one mock per endpoint, and the handle tests use
//! to inspect stored rows, read the request log and plan faults. It does not decide how requests are answered.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value as Json};
use wiremock::matchers::{any, method, path_regex};
use wiremock::{Mock, MockServer};

use super::faults::{Fault, Phase, Route};
use super::job::JobSummary;
use super::recording::RecordedRequest;
use super::routes::{CatchAllResponder, ENDPOINTS, EndpointResponder, Shared};
use super::state::State;
use super::table::Table;
use super::values::canonical_record;

/// Priority of the fake's own routes. wiremock's default is 5 and lower wins, so a test's own mock mounted
/// with the default priority overrides the fake (fault injection by hand).
pub const ROUTE_PRIORITY: u8 = 10;

/// A fake BigQuery REST v2 server on loopback: datasets, tables, load jobs by media upload, jobs.get,
/// tabledata.list and insertAll, with typed in-memory storage.
pub struct FakeBigQuery {
    server: MockServer,
    state: Shared,
}

impl FakeBigQuery {
    /// Start on `127.0.0.1` and a free port.
    pub async fn start() -> FakeBigQuery {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 needs a loopback interface");
        Self::start_on(listener).await
    }

    /// Start on a listener the caller bound (a standalone server on a chosen port).
    pub async fn start_on(listener: TcpListener) -> FakeBigQuery {
        let server = MockServer::builder().listener(listener).disable_request_recording().start().await;
        let state: Shared = Arc::new(Mutex::new(State::new(server.uri())));
        for spec in ENDPOINTS {
            Mock::given(method(spec.method))
                .and(path_regex(spec.path_regex()))
                .respond_with(EndpointResponder { spec, shared: Arc::clone(&state) })
                .with_priority(ROUTE_PRIORITY)
                .named(format!("bigquery {:?} ({} {})", spec.endpoint, spec.method, spec.path_regex()))
                .mount(&server)
                .await;
        }
        Mock::given(any())
            .respond_with(CatchAllResponder { shared: Arc::clone(&state) })
            .with_priority(u8::MAX)
            .named("bigquery catch-all: 404 notFound")
            .mount(&server)
            .await;
        FakeBigQuery { server, state }
    }

    /// `http://127.0.0.1:PORT`; clients append `/bigquery/v2` or `/upload/bigquery/v2`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The underlying wiremock server, for mounting mocks that take precedence over the fake (delays,
    /// dropped connections): any priority below `ROUTE_PRIORITY`, wiremock's default 5 included. Requests such
    /// a mock answers bypass the fake, so they are neither logged in `requests()` nor subject to fault plans.
    pub fn server(&self) -> &MockServer {
        &self.server
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("bigquery fake state lock poisoned: a handler panicked")
    }

    fn with_table<T>(
        &self,
        project: &str,
        dataset: &str,
        table: &str,
        read: impl FnOnce(&Table, Option<&str>) -> T,
    ) -> Option<T> {
        let (table, partition) =
            table.split_once('$').map_or((table, None), |(table, partition)| (table, Some(partition)));
        let state = self.state();
        state.table(project, dataset, table).ok().map(|found| read(found, partition))
    }

    /// Rows as `{column: value}` in insertion order, with canonical values: INTEGER and TIMESTAMP (microseconds
    /// since the epoch) as JSON integers, FLOAT as a number, BOOLEAN as a bool, STRING and DATE (`YYYY-MM-DD`)
    /// as strings, NULL as null. A `t$YYYYMMDD` table name reads one partition. Empty if the table is missing.
    pub fn rows(&self, project: &str, dataset: &str, table: &str) -> Vec<Map<String, Json>> {
        self.with_table(project, dataset, table, |found, partition| {
            found.rows_in(partition).map(|row| canonical_record(&row.values, &found.schema.fields)).collect()
        })
        .unwrap_or_default()
    }

    /// Only the rows of one partition (`"20240601"` for a DAY-partitioned table).
    pub fn partition_rows(&self, project: &str, dataset: &str, table: &str, partition: &str) -> Vec<Map<String, Json>> {
        self.with_table(project, dataset, table, |found, _| {
            found.rows_in(Some(partition)).map(|row| canonical_record(&row.values, &found.schema.fields)).collect()
        })
        .unwrap_or_default()
    }

    /// Row count per partition id, for a partitioned table (`__NULL__` for a NULL partitioning value).
    pub fn partitions(&self, project: &str, dataset: &str, table: &str) -> BTreeMap<String, usize> {
        self.with_table(project, dataset, table, |found, _| {
            let mut counts = BTreeMap::new();
            for partition in found.rows.iter().filter_map(|row| row.partition.clone()) {
                *counts.entry(partition).or_insert(0) += 1;
            }
            counts
        })
        .unwrap_or_default()
    }

    /// The table's schema as `tables.get` returns it (`{"fields":[..]}`, legacy type names).
    pub fn table_schema(&self, project: &str, dataset: &str, table: &str) -> Option<Json> {
        self.with_table(project, dataset, table, |found, _| found.schema.to_json())
    }

    /// The table resource as `tables.get` answers it (schema, `timePartitioning`, `clustering`, counts);
    /// `None` when the table is missing.
    pub fn table_resource(&self, project: &str, dataset: &str, table: &str) -> Option<Json> {
        let state = self.state();
        let location = state.dataset(project, dataset).map(|found| found.location.clone()).ok()?;
        state.table(project, dataset, table).ok().map(|found| found.to_json(&state.base_uri, &location, None))
    }

    pub fn table_exists(&self, project: &str, dataset: &str, table: &str) -> bool {
        self.with_table(project, dataset, table, |_, _| ()).is_some()
    }

    pub fn dataset_exists(&self, project: &str, dataset: &str) -> bool {
        self.state().dataset(project, dataset).is_ok()
    }

    /// Every request answered so far, in order (including injected failures and unknown routes).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// Every job created so far, in creation order.
    pub fn jobs(&self) -> Vec<JobSummary> {
        let state = self.state();
        state.job_order.iter().filter_map(|key| state.jobs.get(key)).map(|job| job.summary()).collect()
    }

    /// The next `times` requests of `route` get `status` with a BigQuery error body of `reason`, and are not
    /// carried out.
    /// `status` must be a valid HTTP status (100 to 999).
    pub fn fail_next(&self, route: Route, times: u32, status: u16, reason: &str) {
        assert!((100..1000).contains(&status), "fail_next needs an HTTP status, got {status}");
        let plan = Fault { route, phase: Phase::Before, remaining: times, status, reason: reason.to_owned() };
        self.state().faults.push(plan);
    }

    /// The next `times` successful requests of `route` are carried out, but the client gets `status` with a
    /// `reason` error body: a lost response, the case idempotent retries exist for.
    pub fn fail_next_after_commit(&self, route: Route, times: u32, status: u16, reason: &str) {
        assert!((100..1000).contains(&status), "fail_next_after_commit needs an HTTP status, got {status}");
        let plan = Fault { route, phase: Phase::After, remaining: times, status, reason: reason.to_owned() };
        self.state().faults.push(plan);
    }

    /// Jobs report RUNNING in the insert response and for this many `jobs.get` polls, then DONE (default 0:
    /// DONE at once). Applies to jobs created afterwards.
    pub fn set_running_polls(&self, polls: u32) {
        self.state().running_polls = polls;
    }

    /// The next load job finishes (HTTP 200, state DONE) with `status.errorResult.reason = reason` instead of
    /// loading anything. Calls queue up.
    pub fn fail_next_job(&self, reason: &str) {
        self.state().job_failures.push_back(reason.to_owned());
    }
}

impl std::fmt::Debug for FakeBigQuery {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("FakeBigQuery").field("uri", &self.uri()).finish_non_exhaustive()
    }
}
