//! The BigQuery client: retries with the documented retryable reasons, dataset and table set-up, load
//! jobs into one date partition, and reading a partition back.
//!
//! What is retried (through the workspace's one retry mechanism, `crate::retry`): HTTP 5xx/429 and the
//! reasons `backendError`, `internalError`, `rateLimitExceeded`, `badGateway` (the set Google's own client
//! retries), honouring `Retry-After` where the response can be seen (the upload, which is ours; the calls
//! through `gcp-bigquery-client` do not expose headers). A finished job whose `errorResult` is transient is
//! re-created under a new job id; `quotaExceeded` and `invalid` are never retried blindly.

use std::future::Future;
use std::time::Duration;

use gcp_bigquery_client::Client;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::model::table_data_list_response::TableDataListResponse;
use gcp_bigquery_client::tabledata::ListQueryParameters;
use market::{Candle, Instrument, TradingDay};
use serde_json::Value;
use url::Url;

use super::auth::{BigQueryAuth, TokenSource};
use super::error::BigQueryError;
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
pub(super) fn is_transient(reason: &str, status: i64) -> bool {
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
    bq: Client,
    pub(super) http: reqwest::Client,
    pub(super) tokens: TokenSource,
    pub(super) config: BigQueryConfig,
}

impl std::fmt::Debug for BigQueryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQueryClient").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Classifies an error of `gcp-bigquery-client`.
fn classify(operation: &str, err: BQError) -> Failure {
    match err {
        BQError::ResponseError { error } => {
            let nested = error.error;
            let reason = nested.errors.first().and_then(|e| e.get("reason")).cloned().unwrap_or_default();
            if is_transient(&reason, nested.code) {
                Attempt::retry(format!("{} {reason}: {}", nested.code, nested.message))
            } else {
                Attempt::Final(BigQueryError::Api {
                    operation: operation.to_owned(),
                    code: nested.code,
                    reason,
                    message: nested.message,
                })
            }
        }
        // Connection failures, timeouts and bodies that are not JSON (a proxy's 502 page) are transient.
        BQError::RequestError(err) => Attempt::retry(format!("request failed: {err}")),
        other => Attempt::Final(BigQueryError::Auth(other.to_string())),
    }
}

impl BigQueryClient {
    pub async fn new(config: BigQueryConfig) -> Result<BigQueryClient, BigQueryError> {
        let tokens = TokenSource::build(&config.auth).await.map_err(|e| BigQueryError::Auth(e.to_string()))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("market-pipeline/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| BigQueryError::Auth(format!("HTTP client: {e}")))?;
        let v2 = format!("{}/bigquery/v2", config.api_url.as_str().trim_end_matches('/'));
        let bq = ClientBuilder::new()
            .with_v2_base_url(v2)
            .with_client(http.clone())
            .build_from_authenticator(std::sync::Arc::new(tokens.clone()))
            .await
            .map_err(|e| BigQueryError::Auth(e.to_string()))?;
        Ok(BigQueryClient { bq, http, tokens, config })
    }

    pub fn config(&self) -> &BigQueryConfig {
        &self.config
    }

    /// The name of `def`'s table in this dataset (with the configured version suffix).
    pub fn table_name(&self, def: &TableDef) -> String {
        format!("{}{}", def.name, self.config.table_suffix)
    }

    /// Runs one API call with retries on transient failures.
    async fn call<T, F, Fut>(&self, operation: &str, mut f: F) -> Result<T, BigQueryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BQError>>,
    {
        self.retrying(operation, |_| {
            let fut = f();
            async move { fut.await.map_err(|e| classify(operation, e)) }
        })
        .await
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
        let (project, dataset) = (&self.config.project, &self.config.dataset);
        match self.call("datasets.get", || self.bq.dataset().get(project, dataset)).await {
            Ok(_) => return Ok(()),
            Err(err) if err.reason() == Some("notFound") => {}
            Err(err) => return Err(err),
        }
        let resource = Dataset::new(project, dataset).location(&self.config.location);
        match self.call("datasets.insert", || self.bq.dataset().create(resource.clone())).await {
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
        match self.call("tables.get", || self.bq.table().get(project, dataset, &name, None)).await {
            Ok(table) => {
                return def
                    .check_schema(&table.schema)
                    .map_err(|reason| BigQueryError::Schema { table: name.clone(), reason });
            }
            Err(err) if err.reason() == Some("notFound") => {}
            Err(err) => return Err(err),
        }
        let resource = def.table(project, dataset, &name);
        match self.call("tables.insert", || self.bq.table().create(resource.clone())).await {
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
                    if let Some(error) = job.status.as_ref().and_then(|s| s.error_result.as_ref()) {
                        let reason = error.reason.clone().unwrap_or_default();
                        let message = error.message.clone().unwrap_or_default();
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
            .as_ref()
            .and_then(|s| s.load.as_ref())
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
        let (project, location) = (&self.config.project, self.config.location.as_str());
        loop {
            let job = self.call("jobs.get", || self.bq.job().get_job(project, job_id, Some(location))).await?;
            if job.status.as_ref().and_then(|s| s.state.as_deref()) == Some("DONE") {
                return Ok(job);
            }
            if started.elapsed() >= self.config.job_timeout {
                return Err(BigQueryError::JobTimeout { job_id: job_id.to_owned(), waited: started.elapsed() });
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// Column names of a table, in schema order.
    async fn column_names(&self, table: &str) -> Result<Vec<String>, BigQueryError> {
        let (project, dataset) = (&self.config.project, &self.config.dataset);
        let resource = self.call("tables.get", || self.bq.table().get(project, dataset, table, None)).await?;
        Ok(resource.schema.fields.unwrap_or_default().into_iter().map(|f| f.name).collect())
    }

    async fn list_page(
        &self,
        table_id: &str,
        page_token: Option<String>,
        max_results: u32,
    ) -> Result<TableDataListResponse, BigQueryError> {
        let (project, dataset) = (&self.config.project, &self.config.dataset);
        self.call("tabledata.list", || {
            let params = ListQueryParameters {
                start_index: None,
                max_results: Some(max_results),
                page_token: page_token.clone(),
                selected_fields: None,
                format_options: None,
            };
            self.bq.tabledata().list(project, dataset, table_id, params)
        })
        .await
    }

    /// Every row of the partition of `day` of `def`, decoded by `decode`.
    async fn read_partition<T>(
        &self,
        def: &TableDef,
        day: TradingDay,
        decode: impl Fn(&[String], &[gcp_bigquery_client::model::table_row::TableRow]) -> Result<Vec<T>, BigQueryError>,
    ) -> Result<Vec<T>, BigQueryError> {
        let names = self.column_names(&self.table_name(def)).await?;
        let partition = format!("{}${}", self.table_name(def), day.compact());
        let mut out = Vec::new();
        let mut page_token = None;
        loop {
            let page = self.list_page(&partition, page_token, self.config.page_size).await?;
            out.extend(decode(&names, page.rows.as_deref().unwrap_or(&[]))?);
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
