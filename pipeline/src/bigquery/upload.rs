//! The load-job media upload (`uploadType=multipart`): a job resource and its data in one request, in the
//! same wire format as Google's Python client.
//!
//! A network failure or a transient status retries the *same* job id; a 409 `duplicate` means an earlier
//! attempt reached BigQuery, so the job exists and is left to be polled rather than submitted again.

use bytes::Bytes;
use serde_json::Value;

use super::client::{ApiFailure, BigQueryClient};
use super::error::BigQueryError;
use crate::retry::Attempt;

const OPERATION: &str = "jobs.insert (upload)";

impl BigQueryClient {
    /// Submits `job` (a job resource with its `jobReference`) with `media` as its data. `Ok` once BigQuery has
    /// the job, whether this call or an earlier attempt created it; the job's outcome is `jobs.get`'s to tell
    /// (see [`BigQueryClient::wait_for_job`]).
    pub async fn insert_job_with_media(&self, job: &Value, media: Bytes) -> Result<(), BigQueryError> {
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

        let mut url = self.endpoint(&["upload", "bigquery", "v2"], &["jobs"]);
        url.query_pairs_mut().append_pair("uploadType", "multipart");
        self.retrying(OPERATION, |_| {
            let (url, body, boundary, job_id) = (url.clone(), body.clone(), boundary.clone(), job_id.clone());
            async move {
                let token = self.tokens.token().await.map_err(Attempt::Final)?;
                let response = self
                    .http
                    .post(url)
                    .bearer_auth(token.expose())
                    .header(reqwest::header::CONTENT_TYPE, format!("multipart/related; boundary={boundary}"))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| Attempt::retry(format!("upload failed: {e}")))?;
                if response.status().is_success() {
                    return Ok(());
                }
                let failure = ApiFailure::read(response).await;
                if failure.status == 409 && failure.reason == "duplicate" {
                    tracing::info!(%job_id, "Load job already submitted, polling it.");
                    return Ok(());
                }
                Err(failure.classify(OPERATION))
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::bigquery::{AccessToken, BigQueryAuth, BigQueryConfig};
    use crate::retry::RetryPolicy;

    async fn client(server: &MockServer) -> BigQueryClient {
        BigQueryClient::new(BigQueryConfig {
            api_url: server.uri().parse().expect("a URL"),
            project: "p".to_owned(),
            dataset: "d".to_owned(),
            location: "US".to_owned(),
            auth: BigQueryAuth::StaticToken(AccessToken::new("t0ken")),
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                max_retry_after: Duration::from_secs(1),
            },
            poll_interval: Duration::from_millis(1),
            job_timeout: Duration::from_secs(5),
            page_size: 100,
            table_suffix: String::new(),
        })
        .await
        .expect("a client")
    }

    fn job() -> Value {
        json!({"jobReference": {"projectId": "p", "jobId": "candles_1m_20240603_k_1"}, "configuration": {"load": {}}})
    }

    fn error(code: u16, reason: &str) -> ResponseTemplate {
        ResponseTemplate::new(code).set_body_json(
            json!({"error": {"code": code, "message": "m", "errors": [{"reason": reason, "message": "m"}]}}),
        )
    }

    #[tokio::test]
    async fn the_job_and_its_data_go_as_one_multipart_request_with_the_token() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/upload/bigquery/v2/projects/p/jobs"))
            .and(query_param("uploadType", "multipart"))
            .and(header("authorization", "Bearer t0ken"))
            .respond_with(ResponseTemplate::new(200).set_body_json(job()))
            .expect(1)
            .mount(&server)
            .await;
        client(&server).await.insert_job_with_media(&job(), Bytes::from_static(b"{\"a\":1}\n")).await.expect("sent");
        let request = &server.received_requests().await.expect("recorded")[0];
        let boundary = "pipeline-boundary-candles_1m_20240603_k_1";
        let content_type = request.headers.get("content-type").expect("a content type").to_str().expect("text");
        assert_eq!(content_type, format!("multipart/related; boundary={boundary}"));
        let body = String::from_utf8(request.body.clone()).expect("text");
        let want = format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n--{boundary}\r\n\
             Content-Type: application/octet-stream\r\n\r\n{{\"a\":1}}\n\r\n--{boundary}--\r\n",
            serde_json::to_string(&job()).expect("json")
        );
        assert_eq!(body, want);
    }

    #[tokio::test]
    async fn a_409_duplicate_means_an_earlier_attempt_got_through() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(error(409, "duplicate")).expect(1).mount(&server).await;
        client(&server).await.insert_job_with_media(&job(), Bytes::new()).await.expect("the job exists");
    }

    #[tokio::test]
    async fn another_409_or_a_400_fails_at_once_and_names_the_reason() {
        for (code, reason) in [(409, "alreadyExists"), (400, "invalid"), (403, "duplicate")] {
            let server = MockServer::start().await;
            Mock::given(method("POST")).respond_with(error(code, reason)).expect(1).mount(&server).await;
            let err = client(&server).await.insert_job_with_media(&job(), Bytes::new()).await.expect_err("refused");
            match err {
                BigQueryError::Api { code: got, reason: got_reason, .. } => {
                    assert_eq!((got, got_reason.as_str()), (i64::from(code), reason));
                }
                other => panic!("{code} {reason}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_with_the_same_job() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(error(503, "backendError")).up_to_n_times(1).mount(&server).await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_json(job())).mount(&server).await;
        client(&server).await.insert_job_with_media(&job(), Bytes::from_static(b"x\n")).await.expect("retried");
        let requests = server.received_requests().await.expect("recorded");
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].body, requests[1].body, "the same job id and data");
    }
}
