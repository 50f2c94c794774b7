//! The load-job media upload (`uploadType=multipart`): a job resource and its data in one request, in the
//! same wire format as Google's Python client.
//!
//! A network failure or a transient status retries the *same* job id; a 409 `duplicate` means an earlier
//! attempt reached BigQuery, so the job exists and is left to be polled rather than submitted again.

use bytes::Bytes;
use serde_json::Value;

use super::client::{BigQueryClient, is_transient};
use super::error::BigQueryError;
use crate::retry::{self, Attempt};

const OPERATION: &str = "jobs.insert (upload)";

impl BigQueryClient {
    /// Submits `job` (a job resource with its `jobReference`) with `media` as its data. `Ok` once BigQuery has
    /// the job, whether this call or an earlier attempt created it; the job's outcome is `jobs.get`'s to tell
    /// (see [`BigQueryClient::wait_for_job`]).
    pub async fn insert_job_with_media(&self, job: &Value, media: Bytes) -> Result<(), BigQueryError> {
        let config = &self.config;
        let job_id = job.pointer("/jobReference/jobId").and_then(Value::as_str).unwrap_or("job").to_owned();
        let boundary = format!("pipeline-boundary-{job_id}");
        let mut body = Vec::with_capacity(media.len() + 2048);
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n").as_bytes(),
        );
        serde_json::to_writer(&mut body, job).expect("JSON values always serialise");
        body.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&media);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let body = Bytes::from(body);

        let url = format!(
            "{}/upload/bigquery/v2/projects/{}/jobs?uploadType=multipart",
            config.api_url.as_str().trim_end_matches('/'),
            config.project
        );
        self.retrying(OPERATION, |_| {
            let (url, body, boundary, job_id) = (url.clone(), body.clone(), boundary.clone(), job_id.clone());
            async move {
                let token =
                    self.tokens.token().await.map_err(|e| Attempt::Final(BigQueryError::Auth(e.to_string())))?;
                let response = self
                    .http
                    .post(url)
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, format!("multipart/related; boundary={boundary}"))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| Attempt::retry(format!("upload failed: {e}")))?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let after = retry::retry_after(response.headers());
                let text = response.text().await.unwrap_or_default();
                let parsed: Option<Value> = serde_json::from_str(&text).ok();
                let reason = parsed
                    .as_ref()
                    .and_then(|v| v.pointer("/error/errors/0/reason"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let message = parsed
                    .as_ref()
                    .and_then(|v| v.pointer("/error/message"))
                    .and_then(Value::as_str)
                    .map_or_else(|| text.chars().take(200).collect(), str::to_owned);
                if status.as_u16() == 409 && reason == "duplicate" {
                    tracing::info!(%job_id, "Load job already submitted, polling it.");
                    return Ok(());
                }
                if is_transient(&reason, i64::from(status.as_u16())) {
                    Err(Attempt::Retry { reason: format!("{} {reason}: {message}", status.as_u16()), after })
                } else {
                    Err(Attempt::Final(BigQueryError::Api {
                        operation: OPERATION.to_owned(),
                        code: i64::from(status.as_u16()),
                        reason,
                        message,
                    }))
                }
            }
        })
        .await
    }
}
