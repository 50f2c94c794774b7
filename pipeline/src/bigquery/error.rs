//! Errors of the BigQuery client, with what BigQuery said (code, reason) and what to do.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BigQueryError {
    #[error("BigQuery {operation} failed: {code} {reason}: {message}")]
    Api { operation: String, code: i64, reason: String, message: String },
    #[error("BigQuery {operation} still failing after {attempts} attempts: {last}")]
    Exhausted { operation: String, attempts: u32, last: String },
    #[error(
        "BigQuery {operation} is rate-limited: it asked to wait {retry_after_s} s, more than the {cap_s} s this client waits; retry later"
    )]
    RateLimited { operation: String, retry_after_s: u64, cap_s: u64 },
    #[error("BigQuery load job {job_id} failed: {reason}: {message}")]
    JobFailed { job_id: String, reason: String, message: String },
    #[error(
        "BigQuery load job {job_id} not done after {waited:?}; it may still finish, rerun the date to replace its partition"
    )]
    JobTimeout { job_id: String, waited: Duration },
    #[error(
        "BigQuery credentials could not be loaded: {0}; set GOOGLE_APPLICATION_CREDENTIALS or BIGQUERY_ACCESS_TOKEN"
    )]
    Auth(String),
    #[error("BigQuery client cannot be set up: {0}")]
    Setup(String),
    #[error(
        "table {table} does not have the expected schema: {reason}; point BIGQUERY_DATASET at a dataset this pipeline owns"
    )]
    Schema { table: String, reason: String },
    #[error("unexpected row in {table}: {reason}")]
    Decode { table: String, reason: String },
}

impl BigQueryError {
    /// The BigQuery error reason, when BigQuery gave one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            BigQueryError::Api { reason, .. } | BigQueryError::JobFailed { reason, .. } => Some(reason),
            _ => None,
        }
    }
}
