//! Jobs: the Job resource and its RUNNING→DONE reporting, `jobs.get`, `list`, `cancel`, `jobs.insert` of copy
//! and query jobs, and `jobs.query` and `jobs.getQueryResults`. Query jobs run the statement in `sql/` against
//! the stored tables and store what a DML statement changed or a destination table receives. Load jobs are
//! created by `load.rs` from uploads; extract jobs and loads from Cloud Storage are refused (the fake has no GCS).

use std::cell::Cell;

use serde_json::{Value as Json, json};

use super::errors::{ApiError, ErrorProto, status_for_reason};
use super::load::{Shape, Target, WriteDisposition, planted_failure, store_job, write_rows};
use super::paging;
use super::query::{self, PageRequest, QueryConfig, QueryResult};
use super::routes::{ApiRequest, Reply};
use super::schema::{Mode, Schema};
use super::sql::{self, Catalog, Outcome, TableView};
use super::state::{State, now_ms};
use super::table::{StoredRow, Table, TableName};
use super::values::TimestampFormat;
use super::wire::{Obj, without_nulls};

/// Numbers a successful load reports in `statistics.load`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LoadStatistics {
    pub input_files: u64,
    pub input_file_bytes: u64,
    pub output_rows: u64,
    pub output_bytes: u64,
    pub bad_records: u64,
}

/// How a job ended. Jobs run at insert time, so every stored job has an outcome.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JobOutcome {
    /// `warnings` are the bad rows `maxBadRecords` tolerated; they appear in `status.errors`.
    Succeeded {
        load: LoadStatistics,
        warnings: Vec<ErrorProto>,
    },
    /// A copy job: the rows it copied.
    Copied {
        rows: u64,
    },
    /// A query job: its result rows, or what its DML statement changed.
    Queried(Box<QueryResult>),
    Failed {
        error: ErrorProto,
        errors: Vec<ErrorProto>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub project: String,
    pub job_id: String,
    pub location: String,
    /// The request's configuration without nulls, plus `jobType`.
    pub configuration: Json,
    /// `p:d.t` or `p:d.t$20240601`, for summaries.
    pub destination: Option<String>,
    pub write_disposition: Option<String>,
    pub created_ms: i64,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub outcome: JobOutcome,
    /// `jobs.get` answers RUNNING while this is above zero, counting down.
    pub polls_left: u32,
    pub etag: String,
}

impl Job {
    /// `p:US.jobId`.
    pub fn qualified(&self) -> String {
        format!("{}:{}.{}", self.project, self.location, self.job_id)
    }

    pub fn reference(&self) -> Json {
        json!({"projectId": self.project, "jobId": self.job_id, "location": self.location})
    }

    fn status(&self, done: bool) -> Json {
        if !done {
            return json!({"state": "RUNNING"});
        }
        match &self.outcome {
            JobOutcome::Copied { .. } | JobOutcome::Queried(_) => json!({"state": "DONE"}),
            JobOutcome::Succeeded { warnings, .. } if warnings.is_empty() => {
                json!({"state": "DONE"})
            }
            JobOutcome::Succeeded { warnings, .. } => {
                json!({"state": "DONE", "errors": warnings.iter().map(ErrorProto::to_job_json).collect::<Vec<_>>()})
            }
            JobOutcome::Failed { error, errors } => json!({
                "state": "DONE",
                "errorResult": error.to_job_json(),
                "errors": errors.iter().map(ErrorProto::to_job_json).collect::<Vec<_>>(),
            }),
        }
    }

    fn statistics(&self, done: bool) -> Json {
        let mut statistics =
            json!({"creationTime": self.created_ms.to_string(), "startTime": self.started_ms.to_string()});
        if done {
            statistics["endTime"] = Json::String(self.ended_ms.to_string());
            if let JobOutcome::Copied { rows } = &self.outcome {
                statistics["copy"] = json!({"copiedRows": rows.to_string(), "copiedLogicalBytes": "0"});
                statistics["totalSlotMs"] = Json::String("0".into());
            }
            if let JobOutcome::Queried(result) = &self.outcome {
                let query = result.statistics();
                statistics["totalBytesProcessed"] = query["totalBytesProcessed"].clone();
                statistics["query"] = query;
                statistics["totalSlotMs"] = Json::String("0".into());
            }
            if let JobOutcome::Succeeded { load, .. } = &self.outcome {
                statistics["load"] = json!({
                    "inputFiles": load.input_files.to_string(),
                    "inputFileBytes": load.input_file_bytes.to_string(),
                    "outputRows": load.output_rows.to_string(),
                    "outputBytes": load.output_bytes.to_string(),
                    "badRecords": load.bad_records.to_string(),
                });
                statistics["totalSlotMs"] = Json::String("0".into());
            }
        }
        statistics
    }

    /// The Job resource as it looks while RUNNING (`done == false`) or once DONE.
    pub fn to_json(&self, base_uri: &str, done: bool) -> Json {
        json!({
            "kind": "bigquery#job",
            "etag": self.etag,
            "id": self.qualified(),
            "selfLink": format!("{base_uri}/bigquery/v2/projects/{}/jobs/{}?location={}", self.project, self.job_id, self.location),
            "user_email": "fake-bigquery@example.com",
            "jobReference": self.reference(),
            "configuration": self.configuration,
            "statistics": self.statistics(done),
            "status": self.status(done),
            "principal_subject": "user:fake-bigquery@example.com",
            "jobCreationReason": {"code": "REQUESTED"},
        })
    }

    pub fn summary(&self) -> JobSummary {
        let (error_reason, output_rows) = match &self.outcome {
            JobOutcome::Succeeded { load, .. } => (None, load.output_rows),
            JobOutcome::Copied { rows } => (None, *rows),
            JobOutcome::Queried(result) => (None, result.output_rows()),
            JobOutcome::Failed { error, .. } => (Some(error.reason.clone()), 0),
        };
        JobSummary {
            project: self.project.clone(),
            job_id: self.job_id.clone(),
            job_type: self.configuration.get("jobType").and_then(Json::as_str).unwrap_or("LOAD").to_owned(),
            destination: self.destination.clone(),
            write_disposition: self.write_disposition.clone(),
            done: self.polls_left == 0,
            error_reason,
            output_rows,
        }
    }
}

/// A job as tests see it through `FakeBigQuery::jobs()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub project: String,
    pub job_id: String,
    /// `LOAD`, `COPY` or `QUERY`.
    pub job_type: String,
    /// `p:d.t`, or `p:d.t$20240601` for a decorated target.
    pub destination: Option<String>,
    pub write_disposition: Option<String>,
    /// Whether `jobs.get` would now answer DONE.
    pub done: bool,
    /// `status.errorResult.reason` of a failed job.
    pub error_reason: Option<String>,
    pub output_rows: u64,
}

/// Letters, digits, underscores and dashes, at most 1024 characters.
pub(crate) fn check_job_id(job_id: &str) -> Result<(), ApiError> {
    let valid = !job_id.is_empty()
        && job_id.len() <= 1024
        && job_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid job ID \"{job_id}\". Job IDs must be alphanumeric (plus underscores and dashes) and must be at \
             most 1024 characters long."
        )))
    }
}

/// The job id a request names, or a fresh one. A reused id is answered with 409 `duplicate` (the `Err`
/// reply, which names the job for the request log): clients rely on it to make retries idempotent.
pub(crate) fn claim_job_id(state: &mut State, project: &str, body: &Json) -> Result<Result<String, Reply>, ApiError> {
    let reference = Obj::new(body, "").obj("jobReference");
    let requested = reference.map(|reference| reference.str("jobId")).transpose()?.flatten();
    let job_id = match requested {
        Some(job_id) => {
            check_job_id(job_id)?;
            job_id.to_owned()
        }
        None => format!("job_{}", state.fresh_token()),
    };
    if let Some(existing) = state.job(project, &job_id) {
        let duplicate = ApiError::duplicate(&format!("Job {}", existing.qualified()));
        return Ok(Err(Reply::from(duplicate).for_job(&job_id)));
    }
    Ok(Ok(job_id))
}

/// `POST /bigquery/v2/projects/{p}/jobs`: copy and query jobs run; loads carry their data in media uploads, so a
/// metadata load is refused with the reason BigQuery itself would give, as is an extract.
pub(crate) fn insert(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let project = request.param(0);
    let body = request.json()?;
    if Obj::new(&body, "").obj("configuration").is_some_and(|configuration| configuration.has("copy")) {
        return super::load::insert_copy_job(state, project, &body, &request.base_uri);
    }
    let job_id = match claim_job_id(state, project, &body)? {
        Ok(job_id) => job_id,
        Err(duplicate) => return Ok(duplicate),
    };
    let configuration = Obj::new(&body, "").obj("configuration");
    let has = |kind: &str| configuration.is_some_and(|configuration| configuration.has(kind));
    if has("query") {
        return insert_query_job(state, project, job_id, &body, &request.base_uri);
    }
    let refusal = if has("load") {
        let from_gcs = configuration
            .and_then(|configuration| configuration.obj("load"))
            .is_some_and(|load| load.has("sourceUris"));
        ApiError::invalid(if from_gcs {
            "Loads from Cloud Storage (sourceUris) are not supported by the fake BigQuery: send the data with \
             POST /upload/bigquery/v2/projects/{p}/jobs?uploadType=multipart or uploadType=resumable"
        } else {
            "Load configuration must specify at least one source URI"
        })
    } else if has("extract") {
        ApiError::invalid("Extract jobs are not supported by the fake BigQuery")
    } else {
        ApiError::invalid("Required parameter is missing: configuration")
    };
    Ok(Reply::from(refusal).for_job(&job_id))
}

fn lookup<'a>(state: &'a mut State, request: &ApiRequest<'_>) -> Result<&'a mut Job, ApiError> {
    let (project, job_id) = (request.param(0), request.param(1));
    let location = request.query("location").filter(|location| !location.is_empty());
    let job = state.jobs.get_mut(&(project.to_owned(), job_id.to_owned()));
    match job {
        Some(job) if location.is_none_or(|location| location.eq_ignore_ascii_case(&job.location)) => Ok(job),
        _ => Err(ApiError::not_found(&format!("Job {project}:{}.{job_id}", location.unwrap_or("US")))),
    }
}

/// `GET /projects/{p}/jobs/{id}?location=`: RUNNING for the configured number of polls, then DONE.
pub(crate) fn get(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let job = lookup(state, request)?;
    let done = job.polls_left == 0;
    job.polls_left = job.polls_left.saturating_sub(1);
    Ok(Reply::json(job.to_json(&request.base_uri, done)).for_job(&job.job_id))
}

/// `POST /projects/{p}/jobs/{id}/cancel`: jobs have already run, so this only reports the job.
pub(crate) fn cancel(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let job = lookup(state, request)?;
    let body =
        json!({"kind": "bigquery#jobCancelResponse", "job": job.to_json(&request.base_uri, job.polls_left == 0)});
    Ok(Reply::json(body).for_job(&job.job_id))
}

/// `GET /projects/{p}/jobs`, newest first, paged by `maxResults` and `pageToken`.
pub(crate) fn list(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let project = request.param(0);
    let owned: Vec<&Job> = state
        .job_order
        .iter()
        .rev()
        .filter(|(owner, _)| owner == project)
        .filter_map(|key| state.jobs.get(key))
        .collect();
    let page = paging::page(request, owned.len())?;
    let jobs: Vec<Json> = owned[page.items]
        .iter()
        .map(|job| {
            let done = job.polls_left == 0;
            let full = job.to_json(&request.base_uri, done);
            let mut entry = json!({
                "kind": "bigquery#job",
                "id": full["id"],
                "jobReference": full["jobReference"],
                "state": if done { "DONE" } else { "RUNNING" },
                "configuration": full["configuration"],
                "statistics": full["statistics"],
                "status": full["status"],
                "user_email": full["user_email"],
            });
            if let Some(error) = full["status"].get("errorResult") {
                entry["errorResult"] = error.clone();
            }
            entry
        })
        .collect();
    let mut body = json!({"kind": "bigquery#jobList", "etag": state.fresh_token()});
    if !jobs.is_empty() {
        body["jobs"] = Json::Array(jobs);
    }
    if let Some(token) = page.next_token {
        body["nextPageToken"] = Json::String(token);
    }
    Ok(Reply::json(body))
}

/// The fake's tables as the SQL engine reads them, counting the bytes read for `totalBytesProcessed`.
struct Tables<'s> {
    state: &'s State,
    read: Cell<u64>,
}

fn view(table: &Table) -> TableView<'_> {
    TableView {
        project: &table.project,
        dataset: &table.dataset,
        table: &table.table_id,
        fields: &table.schema.fields,
        partitioning: table.partitioning.as_ref().map(|p| (p.unit.name(), p.field.as_deref())),
        clustering: table.clustering.as_deref().unwrap_or(&[]),
        created_ms: table.created_ms,
        modified_ms: table.modified_ms,
        rows: table.rows.iter().map(|row| (row.partition.as_deref(), row.values.as_slice())).collect(),
        streaming: table.streaming.is_some(),
    }
}

impl Catalog for Tables<'_> {
    fn table(&self, project: &str, dataset: &str, table: &str) -> Option<TableView<'_>> {
        let table = self.state.table(project, dataset, table).ok()?;
        self.read.set(self.read.get() + table.rows.iter().map(StoredRow::logical_bytes).sum::<u64>());
        Some(view(table))
    }

    fn has_dataset(&self, project: &str, dataset: &str) -> bool {
        self.state.dataset(project, dataset).is_ok()
    }

    fn tables(&self, project: &str, dataset: &str) -> Vec<TableView<'_>> {
        self.state.dataset(project, dataset).map(|found| found.tables.values().map(view).collect()).unwrap_or_default()
    }
}

/// Runs a query and stores its effect: a DML statement's new rows, or the result in the destination table.
/// Nothing changes when it fails.
fn run_query(state: &mut State, project: &str, config: &QueryConfig) -> Result<QueryResult, ErrorProto> {
    let request = sql::Request {
        sql: &config.sql,
        project,
        default_dataset: config.default_dataset.clone(),
        parameters: config.parameters.clone(),
        now_micros: now_ms().saturating_mul(1_000),
    };
    let (outcome, bytes_processed) = {
        let tables = Tables { state, read: Cell::new(0) };
        let outcome = sql::run(&tables, &request)?;
        (outcome, tables.read.get())
    };
    let statement = outcome.statement_type();
    match outcome {
        Outcome::Rows(result) => {
            if let Some(destination) = &config.destination
                && !config.dry_run
            {
                write_destination(state, config, destination, &result)?;
            }
            Ok(QueryResult {
                statement,
                fields: result.fields,
                // A dry run reports the schema and the bytes it would read, no rows.
                rows: if config.dry_run { Vec::new() } else { result.rows },
                dml: None,
                bytes_processed,
                destination: config.destination.clone(),
            })
        }
        Outcome::Dml(_, mutation) => {
            if config.destination.is_some() {
                return Err(sql::invalid_query("Cannot set destination table in jobs with DML statements"));
            }
            let counts = (mutation.inserted, mutation.updated, mutation.deleted);
            if !config.dry_run {
                apply_mutation(state, mutation)?;
            }
            Ok(QueryResult {
                statement,
                fields: Vec::new(),
                rows: Vec::new(),
                dml: Some(counts),
                bytes_processed,
                destination: None,
            })
        }
    }
}

/// Stores a DML statement's rows: unchanged rows keep their partition, changed ones go where their values say
/// (with ingestion-time partitioning, an updated row stays and an inserted one lands in today's partition).
fn apply_mutation(state: &mut State, mutation: sql::Mutation) -> Result<(), ErrorProto> {
    let etag = state.fresh_token();
    let table = state.table_mut(&mutation.project, &mutation.dataset, &mutation.table).map_err(|err| err.error)?;
    let ingestion = table.partitioning.as_ref().is_some_and(|partitioning| partitioning.field.is_none());
    let rows = mutation
        .rows
        .into_iter()
        .map(|row| {
            let partition = match (row.changed, ingestion) {
                (false, _) => row.previous,
                (true, true) => row.previous.or_else(|| table.partition_for(&row.values, None)),
                (true, false) => table.partition_for(&row.values, None),
            };
            StoredRow { partition, values: row.values }
        })
        .collect();
    table.rows = rows;
    table.touch(etag);
    Ok(())
}

fn write_destination(
    state: &mut State,
    config: &QueryConfig,
    destination: &query::Destination,
    result: &sql::ResultSet,
) -> Result<(), ErrorProto> {
    let mut seen = std::collections::HashSet::new();
    for field in &result.fields {
        if !seen.insert(field.name.to_ascii_lowercase()) {
            return Err(sql::invalid_query(format!(
                "Duplicate column names in the result are not supported. Found duplicate(s): {}",
                field.name
            )));
        }
    }
    let name = TableName::parse(&destination.table).map_err(|err| err.error)?;
    let target = Target { project: destination.project.clone(), dataset: destination.dataset.clone(), name };
    let fields = result.fields.iter().map(|field| sql_field(field.clone())).collect();
    let shape = Shape { schema: Schema { fields }, partitioning: None, clustering: None };
    let write = match config.write_disposition.as_str() {
        "WRITE_APPEND" => WriteDisposition::Append,
        "WRITE_TRUNCATE" => WriteDisposition::Truncate,
        _ => WriteDisposition::Empty,
    };
    let rows = result.rows.iter().map(|values| StoredRow { partition: None, values: values.clone() }).collect();
    write_rows(state, &target, &shape, rows, write, config.create_never).map(drop)
}

/// A result column as a created table's column: NULLABLE unless REPEATED.
fn sql_field(mut field: super::schema::Field) -> super::schema::Field {
    if field.mode != Mode::Repeated {
        field.mode = Mode::Nullable;
    }
    field
}

fn query_outcome(state: &mut State, project: &str, config: &QueryConfig) -> JobOutcome {
    if let Some(failed) = planted_failure(state) {
        return failed;
    }
    match run_query(state, project, config) {
        Ok(result) => JobOutcome::Queried(Box::new(result)),
        Err(error) => JobOutcome::Failed { errors: vec![error.clone()], error },
    }
}

fn query_location(state: &State, config: &QueryConfig) -> String {
    config
        .default_dataset
        .as_ref()
        .and_then(|(project, dataset)| state.dataset(project, dataset).ok())
        .map_or_else(|| "US".to_owned(), |dataset| dataset.location.clone())
}

fn query_job(state: &mut State, project: &str, job_id: String, configuration: Json, config: &QueryConfig) -> Job {
    let created_ms = now_ms();
    let outcome = query_outcome(state, project, config);
    let location = query_location(state, config);
    let destination = config.destination.as_ref().map(|d| format!("{}:{}.{}", d.project, d.dataset, d.table));
    Job {
        project: project.to_owned(),
        job_id,
        location,
        configuration,
        write_disposition: destination.as_ref().map(|_| config.write_disposition.clone()),
        destination,
        created_ms,
        started_ms: created_ms,
        ended_ms: now_ms(),
        outcome,
        polls_left: state.running_polls,
        etag: state.fresh_token(),
    }
}

/// `jobs.insert` with `configuration.query`: runs the statement and answers the Job (DONE, with
/// `status.errorResult` when the statement failed, as BigQuery does).
fn insert_query_job(
    state: &mut State,
    project: &str,
    job_id: String,
    body: &Json,
    base_uri: &str,
) -> Result<Reply, ApiError> {
    let configuration = Obj::new(body, "").obj("configuration");
    let dry_run = configuration.map(|c| c.bool("dryRun")).transpose()?.flatten().unwrap_or(false);
    let query_config =
        configuration.and_then(|c| c.obj("query")).map(|query| query::parse_config(query, project, dry_run));
    let config = match query_config {
        Some(Ok(config)) => config,
        Some(Err(error)) => return Ok(Reply::from(error).for_job(&job_id)),
        None => {
            return Ok(
                Reply::from(ApiError::invalid("Required parameter is missing: configuration.query")).for_job(&job_id)
            );
        }
    };
    let mut echoed = without_nulls(body.get("configuration").unwrap_or(&Json::Null));
    echoed["jobType"] = Json::String("QUERY".into());
    let job = query_job(state, project, job_id, echoed, &config);
    Ok(store_job(state, job, base_uri))
}

/// The request fields of `jobs.query` that are not part of the job's `configuration.query`.
const QUERY_REQUEST_ONLY: &[&str] = &[
    "kind",
    "maxResults",
    "timeoutMs",
    "formatOptions",
    "requestId",
    "location",
    "dryRun",
    "jobCreationMode",
    "preserveNulls",
];

/// `POST /projects/{p}/queries` (`jobs.query`): runs the statement as a job and answers its first page.
pub(crate) fn query(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let project = request.param(0);
    let body = request.json()?;
    let fields = Obj::new(&body, "");
    let dry_run = fields.bool("dryRun")?.unwrap_or(false);
    let config = query::parse_config(fields, project, dry_run)?;
    let timestamps = match fields.obj("formatOptions").map(|options| options.bool("useInt64Timestamp")).transpose()? {
        Some(Some(true)) => TimestampFormat::Int64Micros,
        _ => TimestampFormat::FloatSeconds,
    };
    let max_results = fields.i64("maxResults")?.map(|max| u64::try_from(max).unwrap_or(0));
    let page = PageRequest { max_results, start: 0, timestamps };
    // A retried request (same requestId, as the clients retry) is answered from the job it created, never run
    // again: a DML statement must not apply twice because an answer was lost.
    let request_id = fields.str("requestId")?.map(|id| (project.to_owned(), id.to_owned()));
    if let Some(key) = &request_id
        && let Some(job_id) = state.query_requests.get(key)
        && let Some(job) = state.jobs.get(&(project.to_owned(), job_id.clone()))
    {
        return Ok(first_page(job, page));
    }
    let mut echoed = without_nulls(&body);
    if let Some(object) = echoed.as_object_mut() {
        for name in QUERY_REQUEST_ONLY {
            object.remove(*name);
        }
    }
    let configuration = json!({"query": echoed, "jobType": "QUERY", "dryRun": dry_run});
    let job_id = format!("job_{}", state.fresh_token());
    let job = query_job(state, project, job_id.clone(), configuration, &config);
    if let Some(key) = request_id {
        state.query_requests.insert(key, job_id);
    }
    let reply = first_page(&job, page);
    state.add_job(job);
    Ok(reply)
}

/// The `jobs.query` answer for a query job: its first page, `jobComplete: false` while it reports RUNNING, or
/// its error.
fn first_page(job: &Job, page: PageRequest) -> Reply {
    let reference = job.reference();
    let answer = match &job.outcome {
        JobOutcome::Failed { error, .. } => {
            Err(ApiError { status: status_for_reason(&error.reason), error: error.clone() })
        }
        _ if job.polls_left > 0 => Ok(query::pending_body("bigquery#queryResponse", &reference)),
        JobOutcome::Queried(result) => {
            Ok(query::results_body("bigquery#queryResponse", &reference, &job.job_id, result, page))
        }
        _ => Err(ApiError::invalid(format!("Job {} is not a query job", job.qualified()))),
    };
    match answer {
        Ok(body) => Reply::json(body).for_job(&job.job_id),
        Err(error) => Reply::from(error).for_job(&job.job_id),
    }
}

/// `GET /projects/{p}/queries/{id}` (`jobs.getQueryResults`): a page of a finished query, `jobComplete: false`
/// while the job reports RUNNING, the job's error when it failed.
pub(crate) fn get_query_results(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let timestamps = if request.query_bool("formatOptions.useInt64Timestamp")? {
        TimestampFormat::Int64Micros
    } else {
        TimestampFormat::FloatSeconds
    };
    let max_results = request.query_u64("maxResults")?;
    let start_index = request.query_u64("startIndex")?;
    let etag = state.fresh_token();
    let job = lookup(state, request)?;
    let reference = job.reference();
    if job.polls_left > 0 {
        job.polls_left -= 1;
        return Ok(
            Reply::json(query::pending_body("bigquery#getQueryResultsResponse", &reference)).for_job(&job.job_id)
        );
    }
    let job_id = job.job_id.clone();
    let body = match &job.outcome {
        JobOutcome::Queried(result) => {
            let start = query::start_of(&job_id, request.query("pageToken"), start_index)?;
            let page = PageRequest { max_results, start, timestamps };
            let mut body = query::results_body("bigquery#getQueryResultsResponse", &reference, &job_id, result, page);
            body["etag"] = Json::String(etag);
            body
        }
        JobOutcome::Failed { error, .. } => {
            let failure = ApiError { status: status_for_reason(&error.reason), error: error.clone() };
            return Ok(Reply::from(failure).for_job(&job_id));
        }
        _ => {
            return Err(ApiError::invalid(format!("Job {} is not a query job", job.qualified())));
        }
    };
    Ok(Reply::json(body).for_job(&job_id))
}
