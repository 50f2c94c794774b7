//! The fake's own request log, kept because wiremock's recording is disabled (it clones every body). It keeps
//! what tests assert on (method, path, query, a few headers, sizes, the answer) and never the body itself.

use super::faults::Route;

/// One request the fake answered, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path as sent, percent-encoding included (`/bigquery/v2/projects/p/datasets/d`).
    pub path: String,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    /// `None` for a path the fake does not serve.
    pub route: Option<Route>,
    /// The headers clients vary on: content-type, content-encoding, content-range, x-upload-content-type,
    /// user-agent. Authorization is only noted as present (`authorized`), never stored.
    pub headers: Vec<(String, String)>,
    pub authorized: bool,
    /// Body size on the wire (before any gunzip).
    pub body_bytes: usize,
    /// The job id a job insert or upload named or was given.
    pub job_id: Option<String>,
    pub status: u16,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Headers worth keeping in the log.
pub(crate) const RECORDED_HEADERS: [&str; 5] =
    ["content-type", "content-encoding", "content-range", "x-upload-content-type", "user-agent"];
