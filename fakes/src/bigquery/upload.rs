//! Media uploads of load jobs: `uploadType=multipart` (job JSON and data in one request) and
//! `uploadType=resumable` (a session, then PUTs with `Content-Range`, 308 for partial chunks). It extracts the
//! job and the bytes and hands them to `load.rs`; `uploadType=media` (data without a job) is refused.

use serde_json::Value as Json;

use super::errors::ApiError;
use super::load::{LoadRequest, check_job, insert_load_job};
use super::multipart;
use super::routes::{ApiRequest, Reply};
use super::state::State;

/// An open resumable upload: the job it will create and the bytes received so far.
#[derive(Debug, Clone)]
pub(crate) struct UploadSession {
    pub project: String,
    pub job: Json,
    pub data: Vec<u8>,
}

/// `POST /upload/bigquery/v2/projects/{p}/jobs?uploadType=multipart|resumable`.
pub(crate) fn start(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    match request.query("uploadType") {
        Some("multipart") => multipart_upload(state, request),
        Some("resumable") => resumable_start(state, request),
        Some("media") => Err(ApiError::invalid(
            "uploadType=media carries no job configuration: use uploadType=multipart or uploadType=resumable",
        )),
        Some(other) => Err(ApiError::invalid(format!("Invalid upload type: {other}"))),
        None => Err(ApiError::invalid("Missing required query parameter: uploadType")),
    }
}

fn multipart_upload(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let content_type = request.header("content-type").unwrap_or_default();
    let boundary = multipart::boundary(content_type)
        .map_err(|err| ApiError::invalid(format!("Invalid multipart request: {err}")))?;
    let parts = multipart::parse(&request.body, &boundary)
        .map_err(|err| ApiError::invalid(format!("Invalid multipart request: {err}")))?;
    let [metadata, media] = parts.as_slice() else {
        return Err(ApiError::invalid(format!(
            "Invalid multipart request with {} parts: expected the job metadata and the data",
            parts.len()
        )));
    };
    if metadata.header("content-type").is_some_and(|content_type| !content_type.to_ascii_lowercase().contains("json")) {
        return Err(ApiError::invalid(
            "Invalid multipart request: the first part must be the job metadata as application/json",
        ));
    }
    let job = super::wire::parse_body(metadata.body)?;
    let load = LoadRequest { project: request.param(0), job: &job, data: media.body, base_uri: &request.base_uri };
    insert_load_job(state, load)
}

fn resumable_start(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let project = request.param(0);
    let job = request.json()?;
    check_job(&job, project)?;
    let upload_id = state.fresh_token();
    let location = format!(
        "{}/upload/bigquery/v2/projects/{project}/jobs?uploadType=resumable&upload_id={upload_id}",
        request.base_uri
    );
    state.uploads.insert(upload_id.clone(), UploadSession { project: project.to_owned(), job, data: Vec::new() });
    Ok(Reply::empty(200).with_header("location", location).with_header("x-guploader-uploadid", upload_id))
}

/// A parsed `Content-Range` of a resumable PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContentRange {
    /// First and last byte of this chunk; `None` for `bytes */N` (no data).
    span: Option<(u64, u64)>,
    /// The upload's total size; `None` for `/*`.
    total: Option<u64>,
}

fn parse_content_range(header: &str) -> Option<ContentRange> {
    let rest = header.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        number => Some(number.parse().ok()?),
    };
    let span = match span.trim() {
        "*" => None,
        range => {
            let (first, last) = range.split_once('-')?;
            let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
            if last < first {
                return None;
            }
            Some((first, last))
        }
    };
    Some(ContentRange { span, total })
}

/// `PUT /upload/bigquery/v2/projects/{p}/jobs?uploadType=resumable&upload_id=..`: 308 with `Range` until the last
/// byte arrives, then the Job (200).
pub(crate) fn chunk(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let upload_id =
        request.query("upload_id").ok_or_else(|| ApiError::invalid("Missing required query parameter: upload_id"))?;
    let range = match request.header("content-range") {
        None => None,
        Some(header) => Some(
            parse_content_range(header).ok_or_else(|| ApiError::invalid(format!("Invalid Content-Range: {header}")))?,
        ),
    };
    let session =
        state.uploads.get_mut(upload_id).ok_or_else(|| ApiError::not_found(&format!("Upload session {upload_id}")))?;
    let received = session.data.len() as u64;
    let complete = match range {
        // No Content-Range: the body is the rest of the upload.
        None => {
            session.data.extend_from_slice(&request.body);
            true
        }
        Some(ContentRange { span: None, total }) => total == Some(received),
        Some(ContentRange { span: Some((first, last)), total }) => {
            if last - first + 1 != request.body.len() as u64 {
                return Err(ApiError::invalid(format!(
                    "Content-Range says {} bytes but the body has {}",
                    last - first + 1,
                    request.body.len()
                )));
            }
            if first > received {
                return Err(ApiError::invalid(format!(
                    "The chunk starts at byte {first} but only {received} bytes were received"
                )));
            }
            // A retried chunk may overlap what already arrived.
            let skip = usize::try_from(received - first).unwrap_or(usize::MAX).min(request.body.len());
            session.data.extend_from_slice(&request.body[skip..]);
            total.is_some_and(|total| session.data.len() as u64 >= total)
        }
    };
    if !complete {
        let mut reply = Reply::empty(308);
        if !session.data.is_empty() {
            reply = reply.with_header("range", format!("bytes=0-{}", session.data.len() - 1));
        }
        return Ok(reply);
    }
    let Some(session) = state.uploads.remove(upload_id) else {
        return Err(ApiError::not_found(&format!("Upload session {upload_id}")));
    };
    let load =
        LoadRequest { project: &session.project, job: &session.job, data: &session.data, base_uri: &request.base_uri };
    insert_load_job(state, load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_in_all_three_forms() {
        assert_eq!(parse_content_range("bytes 0-99/200"), Some(ContentRange { span: Some((0, 99)), total: Some(200) }));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some(ContentRange { span: Some((100, 199)), total: None }));
        assert_eq!(parse_content_range("bytes */200"), Some(ContentRange { span: None, total: Some(200) }));
        assert_eq!(parse_content_range("bytes 5-1/9"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
