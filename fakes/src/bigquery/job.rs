//! Jobs: the Job resource and its RUNNING→DONE reporting, and `jobs.get`, `list`, `cancel` and metadata
//! `jobs.insert`. Load jobs are created by `load.rs` from uploads; query, copy and extract jobs and loads from
//! Cloud Storage are refused, since the fake has no SQL engine and no GCS.

use serde_json::{Value as Json, json};

use super::errors::{ApiError, ErrorProto};
use super::paging;
use super::query;
use super::routes::{ApiRequest, Reply};
use super::state::State;
use super::wire::Obj;

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

    fn reference(&self) -> Json {
        json!({"projectId": self.project, "jobId": self.job_id, "location": self.location})
    }

    fn status(&self, done: bool) -> Json {
        if !done {
            return json!({"state": "RUNNING"});
        }
        match &self.outcome {
            JobOutcome::Copied { .. } => json!({"state": "DONE"}),
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
    /// `LOAD` or `COPY`.
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

/// `POST /bigquery/v2/projects/{p}/jobs`: copy jobs run; loads carry their data in media uploads, so a metadata
/// load is refused with the reason BigQuery itself would give, as is an extract, and SQL gets `invalidQuery`.
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
    let refusal = if has("query") {
        query::unsupported()
    } else if has("load") {
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
