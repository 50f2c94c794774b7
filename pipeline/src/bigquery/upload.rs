//! The load-job media upload (`uploadType=multipart`): job configuration and NDJSON in one request,
//! in the same wire format as Google's Python client.
//!
//! A network failure or a transient status retries the *same* job id; a 409 `duplicate` means an
//! earlier attempt reached BigQuery, so the job is polled rather than submitted again.

use serde_json::json;

use super::client::{Attempt, BigQueryClient, WriteMode};
use super::error::BigQueryError;
use super::schema::TableDef;
use market::TradingDay;

impl BigQueryClient {
    pub(super) async fn insert_load_job(
        &self,
        def: &TableDef,
        day: TradingDay,
        job_id: &str,
        ndjson: &[u8],
        mode: WriteMode,
    ) -> Result<(), BigQueryError> {
        let config = &self.config;
        let job = json!({
            "jobReference": {"projectId": config.project, "jobId": job_id, "location": config.location},
            "configuration": {"load": {
                "destinationTable": {
                    "projectId": config.project,
                    "datasetId": config.dataset,
                    "tableId": format!("{}${}", self.table_name(def), day.compact()),
                },
                "sourceFormat": "NEWLINE_DELIMITED_JSON",
                "writeDisposition": mode.disposition(),
                "createDisposition": "CREATE_NEVER",
                "schema": def.schema(),
            }},
        });
        let boundary = format!("pipeline-boundary-{job_id}");
        let mut body = Vec::with_capacity(ndjson.len() + 2048);
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n").as_bytes(),
        );
        serde_json::to_writer(&mut body, &job).expect("JSON values always serialise");
        body.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(ndjson);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let body = bytes::Bytes::from(body);

        let url = format!(
            "{}/upload/bigquery/v2/projects/{}/jobs?uploadType=multipart",
            config.api_url.as_str().trim_end_matches('/'),
            config.project
        );
        self.retrying("jobs.insert (upload)", || {
            let (url, body, boundary) = (url.clone(), body.clone(), boundary.clone());
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
                    .map_err(|e| Attempt::Retry(format!("upload failed: {e}")))?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let text = response.text().await.unwrap_or_default();
                let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
                let reason = parsed
                    .as_ref()
                    .and_then(|v| v.pointer("/error/errors/0/reason"))
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
                    .to_owned();
                let message = parsed
                    .as_ref()
                    .and_then(|v| v.pointer("/error/message"))
                    .and_then(|m| m.as_str())
                    .map_or_else(|| text.chars().take(200).collect(), str::to_owned);
                if status.as_u16() == 409 && reason == "duplicate" {
                    tracing::info!(%job_id, "Load job already submitted, polling it.");
                    return Ok(());
                }
                let transient = ["backendError", "internalError", "rateLimitExceeded", "badGateway"]
                    .contains(&reason.as_str())
                    || (reason.is_empty() && (status.is_server_error() || status.as_u16() == 429));
                if transient {
                    Err(Attempt::Retry(format!("{} {reason}: {message}", status.as_u16())))
                } else {
                    Err(Attempt::Final(BigQueryError::Api {
                        operation: "jobs.insert (upload)".to_owned(),
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
