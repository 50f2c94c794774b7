//! The BigQuery client: retries with the documented retryable reasons, dataset and table set-up, load
//! jobs into one date partition, and reading a partition back.
//!
//! Every call is a typed REST request on `reqwest` (the resources in `resources.rs`). What is retried (through
//! the workspace's one retry mechanism, `crate::retry`): connection failures, bodies that cannot be read, HTTP
//! 5xx/429 and the reasons `backendError`, `internalError`, `rateLimitExceeded`, `badGateway` (the set Google's
//! own client retries), waiting as long as a `Retry-After` header asks on any call. A finished job whose
//! `errorResult` is transient is re-created under a new job id; `quotaExceeded` and `invalid` are never
//! retried blindly.

use std::future::Future;
use std::time::Duration;

use market::{Candle, Instrument, TradingDay};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use url::Url;

use super::auth::{BigQueryAuth, TokenSource};
use super::error::BigQueryError;
use super::resources::{Dataset, DatasetReference, ErrorBody, Job, Table, TableDataList, TableRow};
use super::rows::{candles_from_rows, instruments_from_rows};
use super::schema::{CANDLES_1M, INSTRUMENTS, TableDef};
use crate::retry::{self, Attempt, GaveUp, RetryPolicy};

#[derive(Debug, Clone)]
pub struct BigQueryConfig {
    /// Base URL without the API path, e.g. `https://bigquery.googleapis.com`.
    pub api_url: Url,
    pub project: String,
    pub dataset: String,
    /// Dataset location, e.g. `US`.
    pub location: String,
    pub auth: BigQueryAuth,
    pub retry: RetryPolicy,
    /// Delay between `jobs.get` polls.
    pub poll_interval: Duration,
    /// How long a load job may run before the date is failed.
    pub job_timeout: Duration,
    /// Rows per `tabledata.list` page.
    pub page_size: u32,
    /// Appended to every table name (`BIGQUERY_TABLE_SUFFIX`, e.g. `_v2` for `candles_1m_v2`): the table
    /// version this pipeline writes and validates.
    pub table_suffix: String,
}

impl BigQueryConfig {
    pub const DEFAULT_API_URL: &'static str = "https://bigquery.googleapis.com";
}

/// Reasons Google documents as transient for API calls.
const RETRYABLE_REASONS: [&str; 4] = ["backendError", "internalError", "rateLimitExceeded", "badGateway"];

/// Whether an API error (its reason, else its HTTP status) is worth repeating.
fn is_transient(reason: &str, status: i64) -> bool {
    RETRYABLE_REASONS.contains(&reason) || (reason.is_empty() && matches!(status, 429 | 500 | 502 | 503 | 504))
}
/// Reasons for which a finished, failed load job is run again under a new id.
const RERUN_JOB_REASONS: [&str; 6] = [
    "backendError",
    "internalError",
    "rateLimitExceeded",
    "jobBackendError",
    "jobInternalError",
    "jobRateLimitExceeded",
];

/// A completed load job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadOutcome {
    pub job_id: String,
    pub output_rows: u64,
    /// Jobs created, the successful one included.
    pub jobs_created: u32,
}

/// How one failed call ended: worth repeating or not.
pub(super) type Failure = Attempt<BigQueryError>;

#[derive(Clone)]
pub struct BigQueryClient {
    pub(super) http: reqwest::Client,
    pub(super) tokens: TokenSource,
    pub(super) config: BigQueryConfig,
}

impl std::fmt::Debug for BigQueryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQueryClient").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What a call that did not succeed answered: its status, BigQuery's reason and message (from the error
/// body), and the wait its `Retry-After` asked for.
#[derive(Debug)]
pub(super) struct ApiFailure {
    pub status: u16,
    pub reason: String,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl ApiFailure {
    /// Reads a response that is not a success. A body that is not BigQuery's error JSON (a proxy's HTML
    /// page) leaves the reason empty, so the status alone decides, and gives its first characters as the
    /// message.
    pub(super) async fn read(response: reqwest::Response) -> ApiFailure {
        let status = response.status().as_u16();
        let retry_after = retry::retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        let (reason, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => {
                let reason = body.error.errors.into_iter().next().map(|e| e.reason).unwrap_or_default();
                (reason, body.error.message)
            }
            Err(_) => (String::new(), text.chars().take(200).collect()),
        };
        ApiFailure { status, reason, message, retry_after }
    }

    /// Worth repeating (after `Retry-After`, if the server set one) or final for `operation`.
    pub(super) fn classify(self, operation: &str) -> Failure {
        let code = i64::from(self.status);
        if is_transient(&self.reason, code) {
            Attempt::Retry { reason: format!("{code} {}: {}", self.reason, self.message), after: self.retry_after }
        } else {
            Attempt::Final(BigQueryError::Api {
                operation: operation.to_owned(),
                code,
                reason: self.reason,
                message: self.message,
            })
        }
    }
}

impl BigQueryClient {
    pub async fn new(config: BigQueryConfig) -> Result<BigQueryClient, BigQueryError> {
        if config.api_url.cannot_be_a_base() {
            return Err(BigQueryError::Setup(format!("{} is not a base URL for the API", config.api_url)));
        }
        let tokens = TokenSource::build(&config.auth).await?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("market-pipeline/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| BigQueryError::Setup(format!("no HTTP client: {e}")))?;
        Ok(BigQueryClient { http, tokens, config })
    }

    /// `{api_url}/{prefix}/projects/{project}/{segments...}`, each segment percent-encoded as a path segment
    /// needs (a partition decorator's `$` is allowed as it is).
    pub(super) fn endpoint(&self, prefix: &[&str], segments: &[&str]) -> Url {
        let mut url = self.config.api_url.clone();
        url.path_segments_mut()
            .expect("BigQueryClient::new refuses a URL that cannot be a base")
            .pop_if_empty()
            .extend(prefix)
            .extend(["projects", self.config.project.as_str()])
            .extend(segments);
        url
    }

    /// A URL of the REST API (`/bigquery/v2/projects/{project}/...`).
    fn api(&self, segments: &[&str]) -> Url {
        self.endpoint(&["bigquery", "v2"], segments)
    }

    /// Sends the request `build` makes (afresh for every attempt) with a bearer token, retrying transient
    /// failures, and decodes the answer as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<T, BigQueryError> {
        self.retrying(operation, |_| {
            let request = build(&self.http);
            async move {
                let token = self.tokens.token().await.map_err(Attempt::Final)?;
                let response = request
                    .bearer_auth(token.expose())
                    .send()
                    .await
                    .map_err(|e| Attempt::retry(format!("request failed: {e}")))?;
                if !response.status().is_success() {
                    return Err(ApiFailure::read(response).await.classify(operation));
                }
                // A body cut short or spoiled on its way is a transport failure like any other: try again.
                let body = response.bytes().await.map_err(|e| Attempt::retry(format!("answer unreadable: {e}")))?;
                serde_json::from_slice(&body)
                    .map_err(|e| Attempt::retry(format!("answer is not the expected JSON: {e}")))
            }
        })
        .await
    }

    pub fn config(&self) -> &BigQueryConfig {
        &self.config
    }

    /// The name of `def`'s table in this dataset (with the configured version suffix).
    pub fn table_name(&self, def: &TableDef) -> String {
        format!("{}{}", def.name, self.config.table_suffix)
    }

    /// Runs `attempt` with the client's retry policy (see `crate::retry`).
    pub(super) async fn retrying<T, F, Fut>(&self, operation: &str, attempt: F) -> Result<T, BigQueryError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        retry::retry(&self.config.retry, operation, attempt).await.map_err(|gave_up| match gave_up {
            GaveUp::Final(err) => err,
            GaveUp::Exhausted { attempts, last } => {
                BigQueryError::Exhausted { operation: operation.to_owned(), attempts, last }
            }
            GaveUp::WaitTooLong { requested, cap, .. } => BigQueryError::RateLimited {
                operation: operation.to_owned(),
                retry_after_s: requested.as_secs(),
                cap_s: cap.as_secs(),
            },
        })
    }

    /// Creates the dataset unless it exists.
    pub async fn ensure_dataset(&self) -> Result<(), BigQueryError> {
        let dataset = self.config.dataset.as_str();
        let url = self.api(&["datasets", dataset]);
        match self.call::<IgnoredAny>("datasets.get", |http| http.get(url.clone())).await {
            Ok(_) => return Ok(()),
            Err(err) if err.reason() == Some("notFound") => {}
            Err(err) => return Err(err),
        }
        let resource = Dataset {
            dataset_reference: DatasetReference {
                project_id: self.config.project.clone(),
                dataset_id: dataset.to_owned(),
            },
            location: self.config.location.clone(),
        };
        let url = self.api(&["datasets"]);
        match self.call::<IgnoredAny>("datasets.insert", |http| http.post(url.clone()).json(&resource)).await {
            Ok(_) => Ok(()),
            // Another run created it in between: that is what we wanted.
            Err(err) if err.reason() == Some("duplicate") => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Creates the table unless it exists; an existing table must have the expected columns.
    pub async fn ensure_table(&self, def: &TableDef) -> Result<(), BigQueryError> {
        let (project, dataset) = (&self.config.project, &self.config.dataset);
        let name = self.table_name(def);
        match self.get_table(&name).await {
            Ok(table) => {
                return def
                    .check_schema(&table.schema)
                    .map_err(|reason| BigQueryError::Schema { table: name.clone(), reason });
            }
            Err(err) if err.reason() == Some("notFound") => {}
            Err(err) => return Err(err),
        }
        let resource = def.table(project, dataset, &name);
        let url = self.api(&["datasets", dataset, "tables"]);
        match self.call::<IgnoredAny>("tables.insert", |http| http.post(url.clone()).json(&resource)).await {
            Ok(_) => Ok(()),
            Err(err) if err.reason() == Some("duplicate") => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Replaces the partition of `day` in `def` with `rows`, as one load job (`WRITE_TRUNCATE` into
    /// `table$YYYYMMDD`). Job ids are `{table}_{YYYYMMDD}_{run_key}_{n}`: deterministic for a run, so a
    /// retried insert of the same job is recognised (409 `duplicate`) instead of loading twice, and a job that
    /// finished with a transient `errorResult` runs again as `n + 1`.
    pub async fn load_partition(
        &self,
        def: &TableDef,
        day: TradingDay,
        rows: &[Value],
        run_key: &str,
    ) -> Result<LoadOutcome, BigQueryError> {
        let mut ndjson = Vec::with_capacity(rows.len() * 256);
        for row in rows {
            serde_json::to_writer(&mut ndjson, row).expect("JSON values always serialise");
            ndjson.push(b'\n');
        }
        let ndjson = bytes::Bytes::from(ndjson);
        let table = self.table_name(def);
        let operation = format!("load job into {table}${}", day.compact());
        let (job_id, job, jobs_created) = self
            .retrying(&operation, |n| {
                let job_id = format!("{table}_{}_{run_key}_{n}", day.compact());
                let ndjson = ndjson.clone();
                async move {
                    let config = self.load_job(def, day, &job_id, "WRITE_TRUNCATE");
                    self.insert_job_with_media(&config, ndjson).await.map_err(Attempt::Final)?;
                    let job = self.wait_for_job(&job_id).await.map_err(Attempt::Final)?;
                    if let Some(error) = &job.status.error_result {
                        let (reason, message) = (error.reason.clone(), error.message.clone());
                        if RERUN_JOB_REASONS.contains(&reason.as_str()) {
                            return Err(Attempt::retry(format!(
                                "job {job_id} failed transiently ({reason}: {message}); running it again under a new id"
                            )));
                        }
                        return Err(Attempt::Final(BigQueryError::JobFailed { job_id, reason, message }));
                    }
                    Ok((job_id, job, n))
                }
            })
            .await?;
        let output_rows = job
            .statistics
            .load
            .as_ref()
            .and_then(|l| l.output_rows.as_deref())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        // A job that reports success but wrote fewer rows than sent is a partial upload: fail the date.
        if output_rows != rows.len() as u64 {
            return Err(BigQueryError::JobFailed {
                job_id,
                reason: "rowCountMismatch".to_owned(),
                message: format!("sent {} rows but the job reports {output_rows} output rows", rows.len()),
            });
        }
        tracing::info!(table = def.name, %day, %job_id, rows = output_rows, "Partition loaded.");
        Ok(LoadOutcome { job_id, output_rows, jobs_created })
    }

    /// The configuration of a load job of newline-delimited JSON into the partition of `day` of `def`, with
    /// the given write disposition (the pipeline itself only ever uses `WRITE_TRUNCATE`).
    pub fn load_job(&self, def: &TableDef, day: TradingDay, job_id: &str, write_disposition: &str) -> Value {
        let config = &self.config;
        serde_json::json!({
            "jobReference": {"projectId": config.project, "jobId": job_id, "location": config.location},
            "configuration": {"load": {
                "destinationTable": {
                    "projectId": config.project,
                    "datasetId": config.dataset,
                    "tableId": format!("{}${}", self.table_name(def), day.compact()),
                },
                "sourceFormat": "NEWLINE_DELIMITED_JSON",
                "writeDisposition": write_disposition,
                "createDisposition": "CREATE_NEVER",
                "schema": def.schema(),
            }},
        })
    }

    /// Polls `jobs.get` until the job is DONE or the timeout passes.
    pub async fn wait_for_job(&self, job_id: &str) -> Result<Job, BigQueryError> {
        let started = tokio::time::Instant::now();
        let mut url = self.api(&["jobs", job_id]);
        url.query_pairs_mut().append_pair("location", &self.config.location);
        loop {
            let job: Job = self.call("jobs.get", |http| http.get(url.clone())).await?;
            if job.status.state == "DONE" {
                return Ok(job);
            }
            if started.elapsed() >= self.config.job_timeout {
                return Err(BigQueryError::JobTimeout { job_id: job_id.to_owned(), waited: started.elapsed() });
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    async fn get_table(&self, table: &str) -> Result<Table, BigQueryError> {
        let url = self.api(&["datasets", &self.config.dataset, "tables", table]);
        self.call("tables.get", |http| http.get(url.clone())).await
    }

    /// Column names of a table, in schema order.
    async fn column_names(&self, table: &str) -> Result<Vec<String>, BigQueryError> {
        Ok(self.get_table(table).await?.schema.fields.into_iter().map(|f| f.name).collect())
    }

    /// One page of `tabledata.list` of `table_id` (a table or a partition, `table$YYYYMMDD`).
    async fn list_page(
        &self,
        table_id: &str,
        page_token: Option<&str>,
        max_results: u32,
    ) -> Result<TableDataList, BigQueryError> {
        let mut url = self.api(&["datasets", &self.config.dataset, "tables", table_id, "data"]);
        url.query_pairs_mut().append_pair("maxResults", &max_results.to_string());
        if let Some(token) = page_token {
            url.query_pairs_mut().append_pair("pageToken", token);
        }
        self.call("tabledata.list", |http| http.get(url.clone())).await
    }

    /// Every row of the partition of `day` of `def`, decoded by `decode`.
    async fn read_partition<T>(
        &self,
        def: &TableDef,
        day: TradingDay,
        decode: impl Fn(&[String], &[TableRow]) -> Result<Vec<T>, BigQueryError>,
    ) -> Result<Vec<T>, BigQueryError> {
        let names = self.column_names(&self.table_name(def)).await?;
        let partition = format!("{}${}", self.table_name(def), day.compact());
        let mut out = Vec::new();
        let mut page_token = None;
        loop {
            let page = self.list_page(&partition, page_token.as_deref(), self.config.page_size).await?;
            out.extend(decode(&names, &page.rows)?);
            match page.page_token {
                Some(token) if !token.is_empty() => page_token = Some(token),
                _ => return Ok(out),
            }
        }
    }

    /// Every candle stored in the partition of `day`.
    pub async fn read_candles(&self, day: TradingDay) -> Result<Vec<Candle>, BigQueryError> {
        self.read_partition(&CANDLES_1M, day, candles_from_rows).await
    }

    /// The instruments snapshot stored for `day`.
    pub async fn read_instruments(&self, day: TradingDay) -> Result<Vec<Instrument>, BigQueryError> {
        self.read_partition(&INSTRUMENTS, day, instruments_from_rows).await
    }

    /// Rows stored in the partition of `day` of `def` (0 when the table does not exist).
    pub async fn partition_rows(&self, def: &TableDef, day: TradingDay) -> Result<u64, BigQueryError> {
        let partition = format!("{}${}", self.table_name(def), day.compact());
        match self.list_page(&partition, None, 1).await {
            Ok(page) => Ok(page.total_rows.as_deref().and_then(|n| n.parse().ok()).unwrap_or(0)),
            Err(err) if err.reason() == Some("notFound") => Ok(0),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::bigquery::AccessToken;

    async fn client(server: &MockServer) -> BigQueryClient {
        BigQueryClient::new(BigQueryConfig {
            api_url: format!("{}/proxy/", server.uri()).parse().expect("a URL"),
            project: "p".to_owned(),
            dataset: "d".to_owned(),
            location: "US".to_owned(),
            auth: BigQueryAuth::StaticToken(AccessToken::new("t0ken")),
            retry: RetryPolicy::FAST,
            poll_interval: Duration::from_millis(1),
            job_timeout: Duration::from_secs(5),
            page_size: 100,
            table_suffix: String::new(),
        })
        .await
        .expect("a client")
    }

    fn html(code: u16) -> ResponseTemplate {
        ResponseTemplate::new(code).set_body_string("<html><body>Bad Gateway</body></html>")
    }

    #[tokio::test]
    async fn an_error_page_that_is_not_bigquerys_json_is_judged_by_its_status() {
        let server = MockServer::start().await;
        let dataset = "/proxy/bigquery/v2/projects/p/datasets/d";
        Mock::given(method("GET")).and(path(dataset)).respond_with(html(502)).up_to_n_times(1).mount(&server).await;
        Mock::given(method("GET")).and(path(dataset)).respond_with(ResponseTemplate::new(200)).mount(&server).await;
        // An empty 200 body is no dataset resource either: asked for again, then given up on.
        let err = client(&server).await.ensure_dataset().await.expect_err("never a JSON answer");
        match err {
            BigQueryError::Exhausted { attempts, last, .. } => {
                assert_eq!(attempts, RetryPolicy::FAST.max_attempts);
                assert!(last.starts_with("answer is not the expected JSON"), "{last}");
            }
            other => panic!("expected the attempts to run out, got {other:?}"),
        }
        let requests = server.received_requests().await.expect("recorded");
        assert_eq!(requests.len() as u32, RetryPolicy::FAST.max_attempts, "the 502 page was retried too");

        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(html(403)).expect(1).mount(&server).await;
        match client(&server).await.ensure_dataset().await {
            Err(BigQueryError::Api { operation, code, reason, message }) => {
                assert_eq!((operation.as_str(), code, reason.as_str()), ("datasets.get", 403, ""));
                assert!(message.starts_with("<html>"), "{message}");
            }
            other => panic!("a 403 page is final: {other:?}"),
        }
    }
}
