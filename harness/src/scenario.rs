//! Fault scenarios: a declarative, seeded description of a bad day (which endpoint calls fail and how, what
//! happens to Postgres or to the pipeline's process) and what a good pipeline does about it. The format is
//! TOML (README "Fault scenarios"); the built-in catalogue is the directory `harness/scenarios/`.
//!
//! This module only reads and checks scenarios; `faults` arms them on a world and `recovery` runs and judges
//! them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fakes::front::{Action, Answer, BodyFault, Matcher, NetworkFault, Select};
use pipeline::env::Var;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// What a good pipeline does on this bad day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// The date passes every check, exactly as a clean run.
    Recovers,
    /// The date is failed with the cause named, nothing partial is left in any partition, non-zero exit.
    FailsCleanly,
}

impl Expectation {
    pub fn as_str(self) -> &'static str {
        match self {
            Expectation::Recovers => "recovers",
            Expectation::FailsCleanly => "fails_cleanly",
        }
    }
}

/// Where a scenario runs by default: quick enough for every test run, or the nightly only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    #[default]
    Default,
    Nightly,
}

/// The endpoints a fault can be aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    /// `GET /v1/{exchange}/{type}/{yyyy}/{mm}/{dd}/{symbol}.csv.gz`.
    #[serde(rename = "tardis.datasets")]
    TardisDatasets,
    /// `GET /v1/exchanges/{exchange}` (`exportedUntil`, the symbol list).
    #[serde(rename = "tardis.exchanges")]
    TardisExchanges,
    /// `GET /v1/instruments/{exchange}`.
    #[serde(rename = "tardis.instruments")]
    TardisInstruments,
    #[serde(rename = "bigquery.datasets")]
    BigQueryDatasets,
    #[serde(rename = "bigquery.tables")]
    BigQueryTables,
    /// `jobs.insert`: a metadata-only insert or a multipart upload (both create the job).
    #[serde(rename = "bigquery.jobs.insert")]
    BigQueryJobsInsert,
    #[serde(rename = "bigquery.jobs.get")]
    BigQueryJobsGet,
    /// Every request under `/upload/` (multipart, and the start and the chunks of a resumable upload).
    #[serde(rename = "bigquery.upload")]
    BigQueryUpload,
    #[serde(rename = "bigquery.upload.multipart")]
    BigQueryUploadMultipart,
    #[serde(rename = "bigquery.upload.resumable")]
    BigQueryUploadResumable,
    #[serde(rename = "bigquery.tabledata")]
    BigQueryTabledata,
    #[serde(rename = "bigquery.insertall")]
    BigQueryInsertAll,
    /// `jobs.query` and `jobs.getQueryResults`.
    #[serde(rename = "bigquery.queries")]
    BigQueryQueries,
}

impl Endpoint {
    pub fn is_tardis(self) -> bool {
        matches!(self, Endpoint::TardisDatasets | Endpoint::TardisExchanges | Endpoint::TardisInstruments)
    }

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::TardisDatasets => "tardis.datasets",
            Endpoint::TardisExchanges => "tardis.exchanges",
            Endpoint::TardisInstruments => "tardis.instruments",
            Endpoint::BigQueryDatasets => "bigquery.datasets",
            Endpoint::BigQueryTables => "bigquery.tables",
            Endpoint::BigQueryJobsInsert => "bigquery.jobs.insert",
            Endpoint::BigQueryJobsGet => "bigquery.jobs.get",
            Endpoint::BigQueryUpload => "bigquery.upload",
            Endpoint::BigQueryUploadMultipart => "bigquery.upload.multipart",
            Endpoint::BigQueryUploadResumable => "bigquery.upload.resumable",
            Endpoint::BigQueryTabledata => "bigquery.tabledata",
            Endpoint::BigQueryInsertAll => "bigquery.insertall",
            Endpoint::BigQueryQueries => "bigquery.queries",
        }
    }

    /// Whether a request `(method, path, query)` is a call of this endpoint.
    pub fn accepts(self, method: &str, path: &str, query: &str) -> bool {
        let upload = path.starts_with("/upload/bigquery/v2/projects/");
        // With or without `/bigquery/v2` (Node's client, pointed at an emulator, leaves it out).
        let api = path
            .strip_prefix("/bigquery/v2/projects/")
            .or_else(|| path.strip_prefix("/projects/"))
            .map(|rest| rest.split('/').collect::<Vec<_>>());
        let api_parts = api.as_deref().unwrap_or_default();
        let has = |key: &str| query.split('&').any(|pair| pair == key);
        match self {
            Endpoint::TardisDatasets => {
                path.starts_with("/v1/") && (path.ends_with(".csv.gz") || path.ends_with(".csv"))
            }
            Endpoint::TardisExchanges => path.starts_with("/v1/exchanges"),
            Endpoint::TardisInstruments => path.starts_with("/v1/instruments"),
            Endpoint::BigQueryDatasets => matches!(api_parts, [_, "datasets"] | [_, "datasets", _]),
            Endpoint::BigQueryTables => {
                matches!(api_parts, [_, "datasets", _, "tables", ..])
                    && !matches!(api_parts, [_, "datasets", _, "tables", _, "data" | "insertAll"])
            }
            Endpoint::BigQueryJobsInsert => {
                (method == "POST" && matches!(api_parts, [_, "jobs"]))
                    || (upload && method == "POST" && has("uploadType=multipart"))
            }
            Endpoint::BigQueryJobsGet => method == "GET" && matches!(api_parts, [_, "jobs", _]),
            Endpoint::BigQueryUpload => upload,
            Endpoint::BigQueryUploadMultipart => upload && has("uploadType=multipart"),
            Endpoint::BigQueryUploadResumable => {
                upload && (has("uploadType=resumable") || query.contains("upload_id="))
            }
            Endpoint::BigQueryTabledata => {
                method == "GET" && matches!(api_parts, [_, "datasets", _, "tables", _, "data"])
            }
            Endpoint::BigQueryInsertAll => matches!(api_parts, [_, "datasets", _, "tables", _, "insertAll"]),
            Endpoint::BigQueryQueries => matches!(api_parts, [_, "queries", ..]),
        }
    }

    pub fn matcher(self) -> Matcher {
        Arc::new(move |method, path, query| self.accepts(method, path, query))
    }

    /// The error body this vendor sends with `status`: Tardis' `{code, message}`, BigQuery's `error` object
    /// with a `reason`.
    pub fn error_body(self, status: u16, reason: Option<&str>) -> String {
        if self.is_tardis() {
            let message = reason.unwrap_or(match status {
                429 => "Too many requests, please slow down and retry later",
                401 => "Unauthorized: invalid or missing API key",
                403 => "Forbidden",
                404 => "Not found",
                _ => "Internal server error, please retry",
            });
            return serde_json::json!({"code": status, "message": message}).to_string();
        }
        let reason = reason.unwrap_or(match status {
            400 => "invalid",
            401 => "authError",
            403 => "accessDenied",
            404 => "notFound",
            409 => "duplicate",
            429 => "rateLimitExceeded",
            _ => "backendError",
        });
        let message = format!("Injected by the harness scenario: {reason}");
        serde_json::json!({"error": {
            "code": status,
            "message": message,
            "errors": [{"reason": reason, "message": message, "domain": "global"}],
            "status": match status { 400 => "INVALID_ARGUMENT", 401 => "UNAUTHENTICATED", 403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND", 409 => "ALREADY_EXISTS", 429 => "RESOURCE_EXHAUSTED", 503 => "UNAVAILABLE",
                _ => "INTERNAL" },
        }})
        .to_string()
    }
}

/// One endpoint fault of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub endpoint: Endpoint,
    pub select: Select,
    pub action: Action,
    /// Whether a good client retries after it (the behaviour check "no retry of a non-retryable error").
    pub retryable: bool,
}

/// When a Postgres or process fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum When {
    /// As the run starts.
    Start,
    /// When the first request of this endpoint arrives (a stage boundary: `tardis.datasets` is the download,
    /// `bigquery.upload` the upload).
    On(Endpoint),
    /// This long after the run started.
    After(Duration),
    /// A seeded moment in `[from, to)` after the run started.
    Random { from: Duration, to: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostgresAction {
    /// `pg_terminate_backend` on every connection of the run's database.
    TerminateBackends,
    /// As a server restart looks from the client: every connection ended, new ones refused for `down_ms`.
    Restart,
    /// Statements time out: the run's tables are locked for `hold_ms` under a 200 ms `statement_timeout`.
    StatementTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PostgresFault {
    pub action: PostgresAction,
    pub when: When,
    /// How long connections are refused (restart) or the lock is held (statement timeout).
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    #[serde(rename = "KILL")]
    Kill,
    #[serde(rename = "TERM")]
    Term,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Kill => "SIGKILL",
            Signal::Term => "SIGTERM",
        }
    }
}

/// The pipeline's process is sent `signal` at `when`, then run again with the same command (the operator's
/// resume); the expectation is about the date after the resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProcessFault {
    pub signal: Signal,
    pub when: When,
}

/// Tardis' `exportedUntil` lags (the date not yet exported) and, with `advance_after`, catches up mid-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExportLag {
    pub advance_after: Option<Duration>,
}

/// What only the fake BigQuery can do: jobs that stay RUNNING, jobs that end with an `errorResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobFaults {
    pub running_polls: u32,
    /// The `errorResult` reasons of the next jobs, in order.
    pub job_errors: Vec<String>,
}

/// A checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub expect: Expectation,
    pub profile: Profile,
    /// Words of which the failure must name one (`fails_cleanly`), matched without regard to case.
    pub cause: Vec<String>,
    /// The most requests a good client makes for one URL (a bounded retry).
    pub max_attempts: u32,
    pub faults: Vec<Fault>,
    pub export_lag: Option<ExportLag>,
    pub jobs: JobFaults,
    pub postgres: Option<PostgresFault>,
    pub process: Option<ProcessFault>,
    /// Settings of the pipeline's environment contract under which the expectation holds.
    pub environment: Vec<(Var, String)>,
}

/// A scenario that cannot be used: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct ScenarioError {
    /// The file, or `built-in scenario NAME`.
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

// --- results ---------------------------------------------------------------------------------------------------

/// How the date ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check passed and the run said so.
    Recovered,
    /// The run failed and left nothing in the date's partitions.
    FailedCleanly,
    /// The run failed and left rows behind.
    FailedDirty,
    /// The run did not fail, yet what landed is wrong or incomplete.
    WrongData,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::FailedCleanly => "failed cleanly",
            Outcome::FailedDirty => "failed, rows left",
            Outcome::WrongData => "wrong data",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    NotMet,
    /// The pipeline never made the call the scenario spoils (a multipart uploader meets no resumable fault).
    NotApplicable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "NOT MET",
            Verdict::NotApplicable => "n/a",
        }
    }
}

/// One scenario's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    pub description: String,
    pub expectation: Expectation,
    pub outcome: Outcome,
    pub verdict: Verdict,
    /// Requests a fault rule acted on.
    pub faults_injected: u64,
    /// Requests that repeated one whose answer failed.
    pub retries: u64,
    /// From the first injected fault to the end of the run, when it recovered.
    pub recover_ms: Option<u64>,
    pub duration_ms: u64,
    /// The pipeline's last run: its exit code (commands) and what it said when it failed.
    pub exit_code: Option<i32>,
    pub cause: Option<String>,
    /// Why the verdict is not met: the expectation, then each behaviour check that failed.
    pub findings: Vec<String>,
    /// What happened on the way (the kill, the Postgres fault).
    pub notes: Vec<String>,
}

// --- the file format --------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    description: String,
    expect: Expectation,
    #[serde(default)]
    profile: Profile,
    cause: Option<OneOrMany>,
    max_attempts: Option<u32>,
    #[serde(default, rename = "fault")]
    faults: Vec<Spanned<FaultSpec>>,
    tardis: Option<Spanned<TardisSpec>>,
    bigquery: Option<BigQuerySpec>,
    postgres: Option<Spanned<PostgresSpec>>,
    process: Option<Spanned<ProcessSpec>>,
    environment: Option<Spanned<std::collections::BTreeMap<String, String>>>,
}

/// `"429"` or `["429", "rate-limit"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    endpoint: Endpoint,
    // Which calls (at most one; every call when none).
    calls: Option<Vec<u64>>,
    first: Option<u64>,
    probability: Option<f64>,
    seed: Option<u64>,
    window_ms: Option<[u64; 2]>,
    // What they get (exactly one of status, network, first_byte_ms, drip_bytes_per_second, body).
    status: Option<u16>,
    retry_after: Option<u64>,
    reason: Option<String>,
    #[serde(default)]
    after_commit: bool,
    network: Option<NetworkKind>,
    first_byte_ms: Option<u64>,
    drip_bytes_per_second: Option<u64>,
    body: Option<BodyKind>,
    every: Option<usize>,
    retryable: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum NetworkKind {
    ResetMidBody,
    CloseMidBody,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BodyKind {
    CorruptGzip,
    Truncated,
    Empty,
    CorruptCsvRows,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TardisSpec {
    /// `exportedUntil` is the start of the date (it is not exported yet).
    exported_until_lags: bool,
    advance_after_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BigQuerySpec {
    #[serde(default)]
    running_polls: u32,
    #[serde(default)]
    job_errors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhenSpec {
    on: Option<Endpoint>,
    after_ms: Option<u64>,
    random_ms: Option<[u64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostgresSpec {
    action: PostgresAction,
    #[serde(flatten)]
    when: WhenSpec,
    down_ms: Option<u64>,
    hold_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessSpec {
    signal: Signal,
    #[serde(flatten)]
    when: WhenSpec,
}

/// Statuses a good client retries (`Retry-After` or not); 403 and 400 only with the reasons that say so.
fn retryable_status(status: u16, reason: Option<&str>) -> bool {
    match status {
        408 | 429 | 500 | 502 | 503 | 504 => true,
        403 => matches!(reason, Some("rateLimitExceeded")),
        _ => false,
    }
}

impl Scenario {
    /// Reads a scenario from TOML text; `origin` names it in errors (a path, or `built-in scenario NAME`) and
    /// `default_name` is its name when the file gives none.
    pub fn parse(text: &str, origin: &str, default_name: &str) -> Result<Scenario, ScenarioError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let error = |line: Option<usize>, message: String| ScenarioError { origin: origin.to_owned(), line, message };
        let file: File = toml::from_str(text)
            .map_err(|e| error(e.span().map(|span| line_of(span.start)), e.message().trim().replace('\n', "; ")))?;
        let mut faults = Vec::new();
        for spanned in &file.faults {
            let line = Some(line_of(spanned.span().start));
            faults.push(fault(spanned.get_ref()).map_err(|message| error(line, message))?);
        }
        let when = |spec: &WhenSpec, line: usize, default: Option<When>| -> Result<When, ScenarioError> {
            match (spec.on, spec.after_ms, spec.random_ms) {
                (None, None, None) => default.ok_or_else(|| {
                    error(Some(line), "give the moment: one of `on`, `after_ms`, `random_ms`".to_owned())
                }),
                (Some(endpoint), None, None) => Ok(When::On(endpoint)),
                (None, Some(ms), None) => Ok(When::After(Duration::from_millis(ms))),
                (None, None, Some([from, to])) if from < to => {
                    Ok(When::Random { from: Duration::from_millis(from), to: Duration::from_millis(to) })
                }
                (None, None, Some(_)) => Err(error(Some(line), "random_ms: [from, to] with from < to".to_owned())),
                _ => Err(error(Some(line), "give only one of `on`, `after_ms`, `random_ms`".to_owned())),
            }
        };
        let postgres = match &file.postgres {
            None => None,
            Some(spanned) => {
                let (spec, line) = (spanned.get_ref(), line_of(spanned.span().start));
                let duration = match (spec.action, spec.down_ms, spec.hold_ms) {
                    (PostgresAction::Restart, Some(ms), None) | (PostgresAction::StatementTimeout, None, Some(ms)) => {
                        Duration::from_millis(ms)
                    }
                    (PostgresAction::TerminateBackends, None, None) => Duration::ZERO,
                    (action, _, _) => {
                        let wants = match action {
                            PostgresAction::Restart => "restart takes down_ms (and not hold_ms)",
                            PostgresAction::StatementTimeout => "statement_timeout takes hold_ms (and not down_ms)",
                            PostgresAction::TerminateBackends => "terminate_backends takes neither down_ms nor hold_ms",
                        };
                        return Err(error(Some(line), format!("postgres: {wants}")));
                    }
                };
                Some(PostgresFault { action: spec.action, when: when(&spec.when, line, Some(When::Start))?, duration })
            }
        };
        let process = match &file.process {
            None => None,
            Some(spanned) => {
                let (spec, line) = (spanned.get_ref(), line_of(spanned.span().start));
                Some(ProcessFault { signal: spec.signal, when: when(&spec.when, line, None)? })
            }
        };
        let export_lag = match &file.tardis {
            Some(spanned) if spanned.get_ref().exported_until_lags => {
                Some(ExportLag { advance_after: spanned.get_ref().advance_after_ms.map(Duration::from_millis) })
            }
            Some(spanned) if spanned.get_ref().advance_after_ms.is_some() => {
                let line = Some(line_of(spanned.span().start));
                return Err(error(line, "tardis: advance_after_ms needs exported_until_lags = true".to_owned()));
            }
            _ => None,
        };
        let mut environment = Vec::new();
        let (settings, settings_line) = match &file.environment {
            Some(spanned) => (spanned.get_ref().clone(), Some(line_of(spanned.span().start))),
            None => (Default::default(), None),
        };
        for (name, value) in &settings {
            let Some(var) = Var::named(name) else {
                let known: Vec<&str> = Var::ALL.iter().map(|v| v.name()).collect();
                return Err(error(
                    settings_line,
                    format!(
                        "environment.{name}: not a variable of the pipeline's environment; known: {}",
                        known.join(", ")
                    ),
                ));
            };
            environment.push((var, value.clone()));
        }
        let name = file.name.unwrap_or_else(|| default_name.to_owned());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(error(None, format!("name {name:?}: lowercase letters, digits and - only")));
        }
        if file.expect == Expectation::Recovers && file.cause.is_some() {
            return Err(error(None, "cause: only a scenario that fails_cleanly names a cause".to_owned()));
        }
        Ok(Scenario {
            name,
            description: file.description.trim().to_owned(),
            expect: file.expect,
            profile: file.profile,
            cause: match file.cause {
                None => Vec::new(),
                Some(OneOrMany::One(word)) => vec![word],
                Some(OneOrMany::Many(words)) => words,
            },
            max_attempts: file.max_attempts.unwrap_or(8),
            faults,
            export_lag,
            jobs: file
                .bigquery
                .map(|b| JobFaults { running_polls: b.running_polls, job_errors: b.job_errors })
                .unwrap_or_default(),
            postgres,
            process,
            environment,
        })
    }

    /// A built-in scenario by name, or a scenario file (a path, or anything ending in `.toml`).
    pub fn resolve(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        let path = Path::new(name_or_path);
        if name_or_path.ends_with(".toml") || name_or_path.contains('/') || path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
                origin: name_or_path.to_owned(),
                line: None,
                message: format!("cannot read the scenario file: {e}"),
            })?;
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            return Scenario::parse(&text, name_or_path, &stem);
        }
        match CATALOGUE.iter().find(|(name, _)| *name == name_or_path) {
            Some((name, text)) => Scenario::parse(text, &format!("built-in scenario {name}"), name),
            None => Err(ScenarioError {
                origin: format!("scenario {name_or_path:?}"),
                line: None,
                message: format!(
                    "no built-in scenario has this name and no such file exists; `harness scenario list` shows the {} built in",
                    CATALOGUE.len()
                ),
            }),
        }
    }

    /// Every built-in scenario, in catalogue order.
    pub fn catalogue() -> Vec<Scenario> {
        CATALOGUE
            .iter()
            .map(|(name, text)| {
                Scenario::parse(text, &format!("built-in scenario {name}"), name)
                    .unwrap_or_else(|e| panic!("the built-in catalogue is checked by its tests: {e}"))
            })
            .collect()
    }

    /// What the scenario does, in a few words per fault (for tables and logs).
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> =
            self.faults.iter().map(|f| format!("{} {}", f.endpoint.name(), f.action.label())).collect();
        if self.export_lag.is_some() {
            parts.push("exportedUntil lags".to_owned());
        }
        if self.jobs.running_polls > 0 {
            parts.push(format!("jobs RUNNING {} polls", self.jobs.running_polls));
        }
        for reason in &self.jobs.job_errors {
            parts.push(format!("job errorResult {reason}"));
        }
        if let Some(pg) = &self.postgres {
            parts.push(format!("postgres {pg:?}").to_lowercase());
        }
        if let Some(process) = &self.process {
            parts.push(format!("{} the pipeline", process.signal.as_str()));
        }
        parts.join("; ")
    }
}

fn fault(spec: &FaultSpec) -> Result<Fault, String> {
    let select = match (&spec.calls, spec.first, spec.probability, spec.window_ms) {
        (None, None, None, None) => Select::Every,
        (Some(calls), None, None, None) if !calls.is_empty() && !calls.contains(&0) => Select::Calls(calls.clone()),
        (Some(_), None, None, None) => return Err("calls: a list of call numbers counted from 1".to_owned()),
        (None, Some(n), None, None) if n > 0 => Select::First(n),
        (None, Some(_), None, None) => return Err("first: at least 1".to_owned()),
        (None, None, Some(p), None) if (0.0..=1.0).contains(&p) && p > 0.0 => {
            Select::Probability { p, seed: spec.seed.unwrap_or(0) }
        }
        (None, None, Some(p), None) => return Err(format!("probability: in (0, 1], got {p}")),
        (None, None, None, Some([from, to])) if from < to => {
            Select::Window { from: Duration::from_millis(from), to: Duration::from_millis(to) }
        }
        (None, None, None, Some(_)) => return Err("window_ms: [from, to] with from < to".to_owned()),
        _ => return Err("give at most one of `calls`, `first`, `probability`, `window_ms`".to_owned()),
    };
    if spec.seed.is_some() && spec.probability.is_none() {
        return Err("seed: only with `probability`".to_owned());
    }
    let hows = [
        spec.status.is_some(),
        spec.network.is_some(),
        spec.first_byte_ms.is_some(),
        spec.drip_bytes_per_second.is_some(),
        spec.body.is_some(),
    ];
    if hows.iter().filter(|h| **h).count() != 1 {
        return Err(
            "give exactly one of `status`, `network`, `first_byte_ms`, `drip_bytes_per_second`, `body`".to_owned()
        );
    }
    let answer_only = spec.retry_after.is_some() || spec.reason.is_some() || spec.after_commit;
    if answer_only && spec.status.is_none() {
        return Err("retry_after, reason and after_commit go with `status`".to_owned());
    }
    if spec.every.is_some() && !matches!(spec.body, Some(BodyKind::CorruptCsvRows)) {
        return Err("every: only with body = \"corrupt_csv_rows\"".to_owned());
    }
    let (action, retryable) = if let Some(status) = spec.status {
        if !(400..600).contains(&status) {
            return Err(format!("status: an HTTP error status (400 to 599), got {status}"));
        }
        let body = spec.endpoint.error_body(status, spec.reason.as_deref());
        let answer = Answer { status, retry_after: spec.retry_after, body, after_forwarding: spec.after_commit };
        (Action::Answer(answer), retryable_status(status, spec.reason.as_deref()))
    } else if let Some(network) = spec.network {
        let fault = match network {
            NetworkKind::ResetMidBody => NetworkFault::ResetMidBody,
            NetworkKind::CloseMidBody => NetworkFault::CloseMidBody,
        };
        (Action::Network(fault), true)
    } else if let Some(ms) = spec.first_byte_ms {
        (Action::Network(NetworkFault::SlowFirstByte(Duration::from_millis(ms))), true)
    } else if let Some(rate) = spec.drip_bytes_per_second {
        if rate == 0 {
            return Err("drip_bytes_per_second: at least 1".to_owned());
        }
        (Action::Network(NetworkFault::Drip { bytes_per_second: rate }), true)
    } else {
        let body = match spec.body {
            Some(BodyKind::CorruptGzip) => BodyFault::CorruptGzip,
            Some(BodyKind::Truncated) => BodyFault::Truncated,
            Some(BodyKind::Empty) => BodyFault::Empty,
            Some(BodyKind::CorruptCsvRows) | None => BodyFault::CorruptCsvRows { every: spec.every.unwrap_or(50) },
        };
        (Action::Spoil(body), true)
    };
    Ok(Fault { endpoint: spec.endpoint, select, action, retryable: spec.retryable.unwrap_or(retryable) })
}

/// The built-in catalogue, one file each in `harness/scenarios/`, in the order `harness scenario list` shows.
macro_rules! catalogue {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../scenarios/", $name, ".toml")))),*]
    };
}

pub const CATALOGUE: &[(&str, &str)] = catalogue![
    "tardis-429-short",
    "tardis-429-beyond-cap",
    "tardis-5xx-burst",
    "tardis-reset-mid-body",
    "tardis-close-mid-body",
    "tardis-slow-first-byte",
    "tardis-drip",
    "tardis-corrupt-gzip",
    "tardis-corrupt-csv-rows",
    "tardis-empty-file",
    "tardis-401",
    "tardis-403",
    "tardis-404",
    "tardis-export-lag-advances",
    "tardis-export-lag-stays",
    "tardis-instruments-5xx",
    "tardis-transient-random",
    "bigquery-insert-backend-error",
    "bigquery-upload-backend-error",
    "bigquery-rate-limit-exceeded",
    "bigquery-quota-exceeded",
    "bigquery-job-running",
    "bigquery-job-retryable-error",
    "bigquery-job-invalid",
    "bigquery-insert-duplicate",
    "bigquery-upload-reset",
    "bigquery-resumable-half-way",
    "bigquery-query-backend-error",
    "bigquery-401",
    "postgres-restart",
    "postgres-terminate-backends",
    "postgres-statement-timeout",
    "process-sigkill-random",
    "process-sigkill-at-upload",
    "process-sigterm",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scenario_reads_and_every_file_is_in_the_catalogue() {
        let scenarios = Scenario::catalogue();
        assert!(scenarios.len() >= 25, "{}", scenarios.len());
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("scenarios dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().trim_end_matches(".toml").to_owned())
            .collect();
        files.sort();
        let mut listed: Vec<String> = CATALOGUE.iter().map(|(n, _)| (*n).to_owned()).collect();
        listed.sort();
        assert_eq!(files, listed);
        for scenario in &scenarios {
            assert!(!scenario.description.is_empty(), "{}", scenario.name);
            let does_something = !scenario.faults.is_empty()
                || scenario.export_lag.is_some()
                || scenario.jobs != JobFaults::default()
                || scenario.postgres.is_some()
                || scenario.process.is_some();
            assert!(does_something, "{} injects nothing", scenario.name);
        }
    }

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, "my.toml", "my")
    }

    #[test]
    fn an_unknown_field_names_the_file_the_line_and_the_field() {
        let err = parse("description = \"x\"\nexpect = \"recovers\"\n\n[[fault]]\nendpoint = \"tardis.datasets\"\nstatus = 503\nretries = 2\n")
            .expect_err("unknown field");
        assert_eq!((err.origin.as_str(), err.line), ("my.toml", Some(7)));
        assert!(err.message.contains("retries"), "{err}");
        assert!(err.to_string().starts_with("my.toml, line 7: "), "{err}");
    }

    #[test]
    fn malformed_values_are_named() {
        let cases = [
            ("expect = \"recovers\"\n", "description"),
            ("description = \"x\"\nexpect = \"sometimes\"\n", "sometimes"),
            (
                "description = \"x\"\nexpect = \"recovers\"\n[[fault]]\nendpoint = \"tardis.everything\"\nstatus = 500\n",
                "tardis.everything",
            ),
            (
                "description = \"x\"\nexpect = \"recovers\"\n[[fault]]\nendpoint = \"tardis.datasets\"\n",
                "exactly one of",
            ),
            (
                "description = \"x\"\nexpect = \"recovers\"\n[[fault]]\nendpoint = \"tardis.datasets\"\nstatus = 200\n",
                "400 to 599",
            ),
            (
                "description = \"x\"\nexpect = \"recovers\"\n[[fault]]\nendpoint = \"tardis.datasets\"\nfirst = 1\ncalls = [2]\nstatus = 500\n",
                "at most one",
            ),
            (
                "description = \"x\"\nexpect = \"recovers\"\n[[fault]]\nendpoint = \"tardis.datasets\"\nprobability = 1.5\nstatus = 500\n",
                "probability",
            ),
            ("description = \"x\"\nexpect = \"recovers\"\n[process]\nsignal = \"KILL\"\n", "give the moment"),
            ("description = \"x\"\nexpect = \"recovers\"\n[postgres]\naction = \"restart\"\n", "down_ms"),
            ("description = \"x\"\nexpect = \"recovers\"\n[environment]\nNOT_A_VAR = \"1\"\n", "NOT_A_VAR"),
            ("description = \"x\"\nexpect = \"recovers\"\ncause = \"429\"\n", "cause"),
            ("description = \"x\"\nexpect = ", "line 2"),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn an_unknown_name_says_where_to_look() {
        let err = Scenario::resolve("tardis-429-forever").expect_err("unknown");
        assert!(err.to_string().contains("harness scenario list"), "{err}");
        let err = Scenario::resolve("/nonexistent/scenario.toml").expect_err("missing file");
        assert!(err.to_string().starts_with("/nonexistent/scenario.toml: cannot read"), "{err}");
    }

    #[test]
    fn endpoints_tell_the_vendors_calls_apart() {
        let cases: [(&str, &str, &str, Endpoint); 9] = [
            ("GET", "/v1/binance/trades/2024/06/03/BTCUSDT.csv.gz", "", Endpoint::TardisDatasets),
            ("GET", "/v1/exchanges/binance", "", Endpoint::TardisExchanges),
            ("GET", "/v1/instruments/binance", "filter=x", Endpoint::TardisInstruments),
            ("POST", "/upload/bigquery/v2/projects/p/jobs", "uploadType=multipart", Endpoint::BigQueryJobsInsert),
            ("POST", "/bigquery/v2/projects/p/jobs", "", Endpoint::BigQueryJobsInsert),
            ("GET", "/bigquery/v2/projects/p/jobs/j1", "location=US", Endpoint::BigQueryJobsGet),
            (
                "PUT",
                "/upload/bigquery/v2/projects/p/jobs",
                "uploadType=resumable&upload_id=7",
                Endpoint::BigQueryUploadResumable,
            ),
            ("GET", "/bigquery/v2/projects/p/datasets/d/tables/t/data", "", Endpoint::BigQueryTabledata),
            ("GET", "/bigquery/v2/projects/p/datasets/d/tables/t", "", Endpoint::BigQueryTables),
        ];
        let all = [
            Endpoint::TardisDatasets,
            Endpoint::TardisExchanges,
            Endpoint::TardisInstruments,
            Endpoint::BigQueryDatasets,
            Endpoint::BigQueryTables,
            Endpoint::BigQueryJobsInsert,
            Endpoint::BigQueryJobsGet,
            Endpoint::BigQueryUploadResumable,
            Endpoint::BigQueryTabledata,
            Endpoint::BigQueryInsertAll,
            Endpoint::BigQueryQueries,
        ];
        for (method, path, query, endpoint) in cases {
            let accepting: Vec<Endpoint> = all.into_iter().filter(|e| e.accepts(method, path, query)).collect();
            assert_eq!(accepting, [endpoint], "{method} {path}?{query}");
        }
        assert!(Endpoint::BigQueryUpload.accepts(
            "POST",
            "/upload/bigquery/v2/projects/p/jobs",
            "uploadType=multipart"
        ));
        assert!(!Endpoint::BigQueryDatasets.accepts("GET", "/bigquery/v2/projects/p/datasets/d/tables", ""));
        assert!(Endpoint::BigQueryDatasets.accepts("POST", "/projects/p/datasets", ""), "without /bigquery/v2");
    }
}
