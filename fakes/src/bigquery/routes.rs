//! HTTP plumbing: the endpoint table wiremock mounts, path parameters, the request and answer types handlers
//! use, and the responders that lock the state, apply fault plans, dispatch and log. It holds no BigQuery
//! semantics; those live in the resource modules.

use std::borrow::Cow;
use std::io::Read;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use wiremock::http::HeaderMap;
use wiremock::{Request, Respond, ResponseTemplate};

use super::errors::ApiError;
use super::faults::{Phase, Route};
use super::recording::{RECORDED_HEADERS, RecordedRequest};
use super::state::State;
use super::{dataset, job, table, tabledata, upload};

pub(crate) type Shared = Arc<Mutex<State>>;

/// Which URL root an endpoint lives under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/bigquery/v2/...`
    Metadata,
    /// `/upload/bigquery/v2/...`, and `/resumable/upload/bigquery/v2/...` as Byron's generated crate sends it.
    Upload,
}

impl Api {
    fn prefixes(self) -> &'static [&'static str] {
        match self {
            // Node's official client, given BIGQUERY_EMULATOR_HOST, sends the API paths without `/bigquery/v2`.
            Self::Metadata => &["/bigquery/v2/", "/"],
            Self::Upload => &["/upload/bigquery/v2/", "/resumable/upload/bigquery/v2/"],
        }
    }

    fn prefix_regex(self) -> &'static str {
        match self {
            Self::Metadata => "^(/bigquery/v2)?/",
            Self::Upload => "^(/resumable)?/upload/bigquery/v2/",
        }
    }
}

/// Every call the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    InsertDataset,
    ListDatasets,
    GetDataset,
    DeleteDataset,
    InsertTable,
    ListTables,
    GetTable,
    PatchTable,
    DeleteTable,
    ListTableData,
    InsertAll,
    InsertJob,
    ListJobs,
    GetJob,
    CancelJob,
    Query,
    GetQueryResults,
    Upload,
    UploadChunk,
}

impl Endpoint {
    pub fn route(self) -> Route {
        match self {
            Self::InsertDataset => Route::CreateDataset,
            Self::ListDatasets => Route::ListDatasets,
            Self::GetDataset => Route::GetDataset,
            Self::DeleteDataset => Route::DeleteDataset,
            Self::InsertTable => Route::CreateTable,
            Self::ListTables => Route::ListTables,
            Self::GetTable => Route::GetTable,
            Self::PatchTable => Route::PatchTable,
            Self::DeleteTable => Route::DeleteTable,
            Self::ListTableData => Route::ListTableData,
            Self::InsertAll => Route::InsertAll,
            Self::InsertJob | Self::Upload | Self::UploadChunk => Route::InsertJob,
            Self::ListJobs | Self::CancelJob => Route::ListJobs,
            Self::GetJob => Route::GetJob,
            Self::Query | Self::GetQueryResults => Route::Query,
        }
    }
}

/// One mounted route: `*` in `pattern` is a path parameter.
#[derive(Debug)]
pub(crate) struct EndpointSpec {
    pub endpoint: Endpoint,
    pub method: &'static str,
    pub api: Api,
    pub pattern: &'static [&'static str],
}

const DATASETS: &[&str] = &["projects", "*", "datasets"];
const DATASET: &[&str] = &["projects", "*", "datasets", "*"];
const TABLES: &[&str] = &["projects", "*", "datasets", "*", "tables"];
const TABLE: &[&str] = &["projects", "*", "datasets", "*", "tables", "*"];
const JOBS: &[&str] = &["projects", "*", "jobs"];
const JOB: &[&str] = &["projects", "*", "jobs", "*"];

pub(crate) const ENDPOINTS: &[EndpointSpec] = &[
    spec(Endpoint::InsertDataset, "POST", Api::Metadata, DATASETS),
    spec(Endpoint::ListDatasets, "GET", Api::Metadata, DATASETS),
    spec(Endpoint::GetDataset, "GET", Api::Metadata, DATASET),
    spec(Endpoint::DeleteDataset, "DELETE", Api::Metadata, DATASET),
    spec(Endpoint::InsertTable, "POST", Api::Metadata, TABLES),
    spec(Endpoint::ListTables, "GET", Api::Metadata, TABLES),
    spec(Endpoint::GetTable, "GET", Api::Metadata, TABLE),
    spec(Endpoint::PatchTable, "PATCH", Api::Metadata, TABLE),
    spec(Endpoint::PatchTable, "PUT", Api::Metadata, TABLE),
    spec(Endpoint::DeleteTable, "DELETE", Api::Metadata, TABLE),
    spec(Endpoint::ListTableData, "GET", Api::Metadata, &["projects", "*", "datasets", "*", "tables", "*", "data"]),
    spec(Endpoint::InsertAll, "POST", Api::Metadata, &["projects", "*", "datasets", "*", "tables", "*", "insertAll"]),
    spec(Endpoint::InsertJob, "POST", Api::Metadata, JOBS),
    spec(Endpoint::ListJobs, "GET", Api::Metadata, JOBS),
    spec(Endpoint::GetJob, "GET", Api::Metadata, JOB),
    spec(Endpoint::CancelJob, "POST", Api::Metadata, &["projects", "*", "jobs", "*", "cancel"]),
    spec(Endpoint::Query, "POST", Api::Metadata, &["projects", "*", "queries"]),
    spec(Endpoint::GetQueryResults, "GET", Api::Metadata, &["projects", "*", "queries", "*"]),
    spec(Endpoint::Upload, "POST", Api::Upload, JOBS),
    spec(Endpoint::UploadChunk, "PUT", Api::Upload, JOBS),
];

const fn spec(endpoint: Endpoint, method: &'static str, api: Api, pattern: &'static [&'static str]) -> EndpointSpec {
    EndpointSpec { endpoint, method, api, pattern }
}

impl EndpointSpec {
    /// The regex wiremock matches the path with; `extract_params` must agree with it.
    pub fn path_regex(&self) -> String {
        let segments: Vec<&str> =
            self.pattern.iter().map(|segment| if *segment == "*" { "[^/]+" } else { segment }).collect();
        format!("{}{}$", self.api.prefix_regex(), segments.join("/"))
    }

    /// Percent-decoded path parameters, in order.
    fn extract_params(&self, path: &str) -> Option<Vec<String>> {
        let rest = self.api.prefixes().iter().find_map(|prefix| path.strip_prefix(prefix))?;
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() != self.pattern.len() {
            return None;
        }
        let mut params = Vec::new();
        for (segment, expected) in segments.iter().zip(self.pattern) {
            if *expected == "*" {
                params.push(percent_decode(segment));
            } else if segment != expected {
                return None;
            }
        }
        Some(params)
    }
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// A request as the handlers see it: path parameters decoded, body gunzipped.
#[derive(Debug)]
pub(crate) struct ApiRequest<'a> {
    pub params: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: Cow<'a, [u8]>,
    /// `http://host:port` as the client addressed us, for `Location` and `selfLink`.
    pub base_uri: String,
}

impl<'a> ApiRequest<'a> {
    fn new(request: &'a Request, params: Vec<String>, fallback_base: &str) -> Result<Self, ApiError> {
        let gzipped = request
            .headers
            .get("content-encoding")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("gzip"));
        let body = if gzipped && !request.body.is_empty() {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(request.body.as_slice())
                .read_to_end(&mut plain)
                .map_err(|err| ApiError::invalid(format!("Could not decompress the gzip request body: {err}")))?;
            Cow::Owned(plain)
        } else {
            Cow::Borrowed(request.body.as_slice())
        };
        let base_uri = request
            .headers
            .get("host")
            .and_then(|value| value.to_str().ok())
            .map_or_else(|| fallback_base.to_owned(), |host| format!("http://{host}"));
        Ok(Self {
            params,
            query: request.url.query_pairs().map(|(key, value)| (key.into_owned(), value.into_owned())).collect(),
            headers: &request.headers,
            body,
            base_uri,
        })
    }

    /// The `index`th path parameter; the route table guarantees how many there are.
    pub fn param(&self, index: usize) -> &str {
        self.params.get(index).map_or("", String::as_str)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    pub fn query_bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.query(name) {
            None | Some("") => Ok(false),
            Some(text) => super::wire::parse_bool(text)
                .ok_or_else(|| ApiError::invalid(format!("Invalid value for {name}: {text} is not a valid boolean"))),
        }
    }

    pub fn query_u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.query(name) {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::invalid(format!("Invalid value for {name}: {text} is not a valid unsigned integer"))
            }),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> Result<Json, ApiError> {
        super::wire::parse_body(&self.body)
    }
}

/// What a handler answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Json>,
    pub headers: Vec<(&'static str, String)>,
    /// The job a job insert or upload concerned, for the request log.
    pub job_id: Option<String>,
}

impl Reply {
    pub fn json(body: Json) -> Self {
        Self { status: 200, body: Some(body), headers: Vec::new(), job_id: None }
    }

    pub fn empty(status: u16) -> Self {
        Self { status, body: None, headers: Vec::new(), job_id: None }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn for_job(mut self, job_id: &str) -> Self {
        self.job_id = Some(job_id.to_owned());
        self
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn into_template(self) -> ResponseTemplate {
        let mut template = ResponseTemplate::new(self.status);
        for (name, value) in self.headers {
            template = template.insert_header(name, value.as_str());
        }
        match self.body {
            Some(body) => template.set_body_raw(body.to_string().into_bytes(), "application/json; charset=UTF-8"),
            None => template,
        }
    }
}

impl From<ApiError> for Reply {
    fn from(error: ApiError) -> Self {
        Self { status: error.status, body: Some(error.body()), headers: Vec::new(), job_id: None }
    }
}

/// The responder of one mounted endpoint.
pub(crate) struct EndpointResponder {
    pub spec: &'static EndpointSpec,
    pub shared: Shared,
}

impl Respond for EndpointResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        answer(&self.shared, Some(self.spec), request)
    }
}

/// The lowest-priority responder: BigQuery's 404 body for paths the fake does not serve.
pub(crate) struct CatchAllResponder {
    pub shared: Shared,
}

impl Respond for CatchAllResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        answer(&self.shared, None, request)
    }
}

fn answer(shared: &Shared, spec: Option<&'static EndpointSpec>, request: &Request) -> ResponseTemplate {
    let mut state = shared.lock().expect("bigquery fake state lock poisoned: a handler panicked");
    let route = spec.map(|spec| spec.endpoint.route());
    let reply = match state.faults.take(route, Phase::Before) {
        Some(error) => Reply::from(error),
        None => {
            let reply = handle(&mut state, spec, request).unwrap_or_else(Reply::from);
            let lost = if reply.is_success() { state.faults.take(route, Phase::After) } else { None };
            match lost {
                Some(error) => Reply { job_id: reply.job_id, ..Reply::from(error) },
                None => reply,
            }
        }
    };
    state.requests.push(RecordedRequest {
        method: request.method.to_string(),
        path: request.url.path().to_owned(),
        query: request.url.query_pairs().map(|(key, value)| (key.into_owned(), value.into_owned())).collect(),
        route,
        headers: RECORDED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = request.headers.get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect(),
        authorized: request.headers.get("authorization").is_some_and(|value| !value.is_empty()),
        body_bytes: request.body.len(),
        job_id: reply.job_id.clone(),
        status: reply.status,
    });
    drop(state);
    reply.into_template()
}

fn handle(state: &mut State, spec: Option<&'static EndpointSpec>, request: &Request) -> Result<Reply, ApiError> {
    let path = request.url.path();
    let unknown = || ApiError::not_found(&format!("URL {} {path} is not served by the fake BigQuery", request.method));
    let spec = spec.ok_or_else(unknown)?;
    let params = spec.extract_params(path).ok_or_else(unknown)?;
    let api = ApiRequest::new(request, params, &state.base_uri)?;
    match spec.endpoint {
        Endpoint::InsertDataset => dataset::insert(state, &api),
        Endpoint::ListDatasets => dataset::list(state, &api),
        Endpoint::GetDataset => dataset::get(state, &api),
        Endpoint::DeleteDataset => dataset::delete(state, &api),
        Endpoint::InsertTable => table::insert(state, &api),
        Endpoint::ListTables => table::list(state, &api),
        Endpoint::GetTable => table::get(state, &api),
        Endpoint::PatchTable => table::patch(state, &api),
        Endpoint::DeleteTable => table::delete(state, &api),
        Endpoint::ListTableData => tabledata::list(state, &api),
        Endpoint::InsertAll => tabledata::insert_all(state, &api),
        Endpoint::InsertJob => job::insert(state, &api),
        Endpoint::ListJobs => job::list(state, &api),
        Endpoint::GetJob => job::get(state, &api),
        Endpoint::CancelJob => job::cancel(state, &api),
        Endpoint::Query => job::query(state, &api),
        Endpoint::GetQueryResults => job::get_query_results(state, &api),
        Endpoint::Upload => upload::start(state, &api),
        Endpoint::UploadChunk => upload::chunk(state, &api),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_are_percent_decoded() {
        let spec = &ENDPOINTS[6];
        assert_eq!(spec.endpoint, Endpoint::GetTable);
        assert_eq!(
            spec.extract_params("/bigquery/v2/projects/p/datasets/d/tables/t%2420240601"),
            Some(vec!["p".to_owned(), "d".to_owned(), "t$20240601".to_owned()])
        );
        assert_eq!(spec.extract_params("/bigquery/v2/projects/p/datasets/d/tables/t/data"), None);
        assert_eq!(spec.path_regex(), "^(/bigquery/v2)?/projects/[^/]+/datasets/[^/]+/tables/[^/]+$");
        assert_eq!(
            spec.extract_params("/projects/p/datasets/d/tables/t"),
            Some(vec!["p".to_owned(), "d".to_owned(), "t".to_owned()]),
            "without the prefix, as Node's client sends it"
        );
    }

    #[test]
    fn uploads_are_served_under_both_upload_roots() {
        let spec = ENDPOINTS.iter().find(|spec| spec.endpoint == Endpoint::Upload).expect("the upload route exists");
        assert!(spec.extract_params("/upload/bigquery/v2/projects/p/jobs").is_some());
        assert!(spec.extract_params("/resumable/upload/bigquery/v2/projects/p/jobs").is_some());
        assert!(spec.extract_params("/bigquery/v2/projects/p/jobs").is_none());
    }
}
