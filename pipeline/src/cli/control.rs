//! `--control-listen ADDR`: the backfill control API of the long-running commands (`pipeline schedule` and
//! `pipeline worker --follow`), for a platform that drives backfills over HTTP. Off unless asked for.
//!
//! | request | does | answers |
//! |---|---|---|
//! | `GET /backfills[?limit=N]` | the recent backfills, newest first (N: default 20, at most 1000) | 200, what `pipeline backfill list --json` prints |
//! | `GET /backfills/stats` | the queue's counts | 200, what `pipeline backfill status --json` prints |
//! | `POST /backfills` | validate, plan and enqueue a range (`{"start", "end", "exchanges"?, "symbols"?, "force"?, "requested_by"?, "max_days"?}`) | 201 `{"id", "dates", "existing": false, ...}`; 200 with the existing id when the same backfill is still unfinished; 400 or 422 with the reason |
//! | `POST /backfills/{id}/cancel` | cancel it (`{"now"?, "by"?}`, or no body) | 200, the cancel's outcome; 404 for no such backfill |
//!
//! Every request needs `Authorization: Bearer <PIPELINE_CONTROL_TOKEN>`, checked before anything else (so
//! without it even an unknown path is 401, not 404): the token is compared in constant time, and a missing,
//! malformed or wrong one gets the same 401 with `www-authenticate: Bearer`. The token is never logged or echoed;
//! requests are logged by method, path and status only. Errors are `{"error": "..."}`.
//!
//! The API is a thin edge over the library's backfill operations ([`crate::backfill::validate`], `plan`,
//! `enqueue`, `cancel`) and the one Postgres queue: it keeps no state of its own, so any number of processes
//! may serve it. `POST /backfills` is idempotent while its backfill is unfinished: a request for the same range,
//! selection and `force` as a backfill still `enqueued` or `running` with dates queued or in flight gets that
//! backfill's id and enqueues nothing (checked under a lock in this process; two processes racing could record
//! two backfills, and the queue would still hold each date once, handed to the later one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::http::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use market::{DateRange, Exchange, Symbol, TradingDay};
use serde::{Deserialize, Serialize};
use subtle::{Choice, ConstantTimeEq};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::backfill::{self, BackfillError, BackfillRequest};
use crate::clock::Clock;
use crate::config::Selection;
use crate::env::{Environment, Var};
use crate::run::Pipeline;
use crate::store::{BackfillRecord, CancelTarget};

/// The shortest token the API accepts.
pub const MIN_TOKEN_CHARS: usize = 16;
/// The largest request body read (larger: 413).
const MAX_BODY: usize = 64 * 1024;
/// How long a request's body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 1000;
/// Who a backfill is recorded as requested (or cancelled) by when the request does not say.
const DEFAULT_BY: &str = "api";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ControlArgs {
    /// Serve the backfill control API on ADDR while the command runs (`GET /backfills`, `GET /backfills/stats`,
    /// `POST /backfills`, `POST /backfills/{id}/cancel`), e.g. `127.0.0.1:9185`; port 0 picks a free port
    /// (printed). Requests need `Authorization: Bearer $PIPELINE_CONTROL_TOKEN` (16 characters or more). Off by
    /// default.
    #[arg(long, value_name = "ADDR", env = Var::PipelineControlListen.name())]
    pub control_listen: Option<SocketAddr>,
}

impl ControlArgs {
    /// Reads the token and binds the address, when the API was asked for: a missing or short token and a taken
    /// port are bad input, refused before anything runs. Nothing is served until [`Listening::serve`].
    pub async fn bind(&self) -> anyhow::Result<Option<Listening>> {
        let Some(addr) = self.control_listen else { return Ok(None) };
        let token = ControlToken::from_environment(&Environment::from_process())?;
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("--control-listen {addr}: cannot listen there"))?;
        Ok(Some(Listening { listener, token }))
    }
}

/// The bearer token requests must carry. `Debug` hides it; nothing prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ControlToken(String);

impl std::fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlToken(***)")
    }
}

impl ControlToken {
    /// The token, trimmed; refused when empty or shorter than [`MIN_TOKEN_CHARS`] (the message never shows it).
    pub fn new(token: &str) -> anyhow::Result<ControlToken> {
        let token = token.trim();
        let name = Var::PipelineControlToken.name();
        if token.is_empty() {
            anyhow::bail!(
                "--control-listen needs a bearer token: set {name} to a secret of {MIN_TOKEN_CHARS} characters or \
                 more (e.g. `openssl rand -hex 32`)"
            );
        }
        if token.chars().count() < MIN_TOKEN_CHARS {
            anyhow::bail!(
                "{name} is too short: the control API needs a token of {MIN_TOKEN_CHARS} characters or more \
                 (e.g. `openssl rand -hex 32`)"
            );
        }
        Ok(ControlToken(token.to_owned()))
    }

    /// The token of `PIPELINE_CONTROL_TOKEN`.
    pub fn from_environment(env: &Environment) -> anyhow::Result<ControlToken> {
        ControlToken::new(env.get(Var::PipelineControlToken).unwrap_or_default())
    }

    /// Whether `header` (an `Authorization` value) carries this token. The comparison takes the same time
    /// whatever the given token is, how much of it is right and whether its length is (it runs over this token's
    /// bytes, comparing each with the given one's byte at that place or a zero past its end).
    pub fn authorizes(&self, header: Option<&HeaderValue>) -> bool {
        let Some(given) = bearer(header) else { return false };
        let expected = self.0.as_bytes();
        let same_length = (given.len() as u64).ct_eq(&(expected.len() as u64));
        let same_bytes = expected
            .iter()
            .enumerate()
            .fold(Choice::from(1), |same, (i, e)| same & e.ct_eq(given.get(i).unwrap_or(&0)));
        bool::from(same_length & same_bytes)
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case, RFC 9110 §11.1); `None`
/// when the header is missing, of another scheme, or has no token.
fn bearer(header: Option<&HeaderValue>) -> Option<&[u8]> {
    let value = header?.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// A bound control listener with its token, not serving yet.
#[derive(Debug)]
pub struct Listening {
    listener: TcpListener,
    token: ControlToken,
}

impl Listening {
    /// Serves the API over `pipeline`'s store and configuration ("today" from `clock`) until the returned server
    /// is dropped; prints `control: http://ADDR/backfills` on standard error.
    pub fn serve(self, pipeline: Pipeline, clock: Arc<dyn Clock>) -> anyhow::Result<ControlServer> {
        let bound = self.listener.local_addr().context("the control listener has no address")?;
        tracing::info!(%bound, "Serving the backfill control API on /backfills.");
        eprintln!("control: http://{bound}/backfills");
        let api = Arc::new(Api { pipeline, clock, token: self.token, creating: tokio::sync::Mutex::new(()) });
        let task = super::serve::spawn(self.listener, move |request| {
            let api = Arc::clone(&api);
            async move { api.answer(request).await }
        });
        Ok(ControlServer(task))
    }
}

/// The serving control API; it stops when dropped (the command ends).
#[derive(Debug)]
pub struct ControlServer(JoinHandle<()>);

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a request asks for, once its method and path are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    List,
    Stats,
    Create,
    Cancel(i64),
}

/// The routing table: a known path with the wrong method is 405 with the methods it takes.
fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let (allow, found) = match segments.as_slice() {
        ["backfills"] => match *method {
            Method::GET => ("GET, POST", Some(Route::List)),
            Method::POST => ("GET, POST", Some(Route::Create)),
            _ => ("GET, POST", None),
        },
        ["backfills", "stats"] => ("GET", (*method == Method::GET).then_some(Route::Stats)),
        ["backfills", id, "cancel"] => {
            if *method != Method::POST {
                ("POST", None)
            } else {
                let id = id.parse::<i64>().map_err(|_| {
                    ApiError::new(StatusCode::BAD_REQUEST, format!("backfill id {id:?} is not a number"))
                })?;
                ("POST", Some(Route::Cancel(id)))
            }
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no such resource {path:?}: GET /backfills, GET /backfills/stats, POST /backfills, \
                     POST /backfills/{{id}}/cancel"
                ),
            ));
        }
    };
    found.ok_or(ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed on {path}: {allow} only"),
        allow: Some(allow),
    })
}

/// `?limit=N` of `GET /backfills`: 20 when absent, clamped to 1..=1000.
fn limit(query: Option<&str>) -> Result<i64, ApiError> {
    let Some(value) = query.unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("limit=")) else {
        return Ok(DEFAULT_LIMIT);
    };
    let n: i64 = value.parse().map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("limit {value:?} is not a number (1 to {MAX_LIMIT})"))
    })?;
    Ok(n.clamp(1, MAX_LIMIT))
}

/// The body of `POST /backfills`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBackfill {
    start: String,
    end: String,
    #[serde(default)]
    exchanges: Vec<String>,
    #[serde(default)]
    symbols: Vec<String>,
    #[serde(default)]
    force: bool,
    requested_by: Option<String>,
    max_days: Option<u32>,
}

impl NewBackfill {
    /// The request it makes; malformed dates, names and ranges are 400.
    fn request(&self) -> Result<BackfillRequest, ApiError> {
        let bad = |err: &dyn std::fmt::Display| ApiError::new(StatusCode::BAD_REQUEST, err.to_string());
        let start = TradingDay::parse(&self.start).map_err(|e| bad(&e))?;
        let end = TradingDay::parse(&self.end).map_err(|e| bad(&e))?;
        let range = DateRange::new(start, end).map_err(|e| bad(&e))?;
        let by = self.requested_by.as_deref().map(str::trim).filter(|by| !by.is_empty()).unwrap_or(DEFAULT_BY);
        let mut request = BackfillRequest::new(range, by);
        request.exchanges =
            self.exchanges.iter().map(|e| Exchange::parse(e)).collect::<Result<_, _>>().map_err(|e| bad(&e))?;
        request.symbols =
            self.symbols.iter().map(|s| Symbol::parse(s)).collect::<Result<_, _>>().map_err(|e| bad(&e))?;
        request.force = self.force;
        if let Some(max_days) = self.max_days {
            request.max_days = max_days;
        }
        Ok(request)
    }
}

/// The body of `POST /backfills/{id}/cancel` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    now: bool,
    by: Option<String>,
}

/// The answer to `POST /backfills`.
#[derive(Debug, Serialize)]
struct Created {
    /// The backfill's audit id (what `cancel` takes).
    id: i64,
    /// Its dates to run (new), or still queued or in flight (existing).
    dates: i64,
    /// True when an identical unfinished backfill was found and nothing was enqueued.
    existing: bool,
    message: String,
}

/// An answer other than success: its status and message (and for a 405 the methods allowed).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), allow: None }
    }

    fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required (Authorization: Bearer <token>)")
    }

    fn reply(self) -> Response<Full<Bytes>> {
        let mut response = json(self.status, &serde_json::json!({ "error": self.message }));
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allow) = self.allow {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

impl From<BackfillError> for ApiError {
    fn from(err: BackfillError) -> ApiError {
        let status = match &err {
            BackfillError::UnknownBackfill { .. } => StatusCode::NOT_FOUND,
            BackfillError::Store(_) | BackfillError::Log { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, err.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    }
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec(value).unwrap_or_else(|_| b"{\"error\":\"unserialisable answer\"}".to_vec());
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// A request's body, at most [`MAX_BODY`] bytes (413 beyond), arriving within [`BODY_TIMEOUT`] (408).
async fn read_body(request: Request<Incoming>) -> Result<Bytes, ApiError> {
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(request.into_body(), MAX_BODY).collect()).await;
    match collected {
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {} KiB", MAX_BODY / 1024),
        )),
        Ok(Err(err)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, format!("the request body could not be read: {err}")))
        }
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body took over {} s", BODY_TIMEOUT.as_secs()),
        )),
    }
}

/// Whether `record` is an unfinished backfill of the same request: the same range, the same selection once
/// validated against the configured one, the same `force`, not a retry, `enqueued` or `running`, with dates
/// queued or in flight.
fn is_twin(
    record: &BackfillRecord,
    request: &BackfillRequest,
    selection: &Selection,
    today: TradingDay,
    configured: &Selection,
) -> bool {
    let d = &record.dates;
    let unfinished = matches!(record.status.as_str(), "enqueued" | "running") && d.pending + d.retry + d.processing > 0;
    if !unfinished
        || record.retry_of.is_some()
        || !record.options["retry_of"].is_null()
        || (record.start, record.end) != (request.range.start(), request.range.end())
        || record.options["force"].as_bool().unwrap_or(false) != request.force
    {
        return false;
    }
    // The recorded request's exchanges and symbols, read back as a retry would, and validated like this one.
    let earlier = BackfillRequest::retry_of(record, false, DEFAULT_BY);
    backfill::validate(&earlier, today, configured).is_ok_and(|earlier| earlier == *selection)
}

/// The API over one pipeline's store and configuration.
#[derive(Debug)]
struct Api {
    pipeline: Pipeline,
    clock: Arc<dyn Clock>,
    token: ControlToken,
    /// Held while `POST /backfills` looks for an identical backfill and enqueues, so that two identical requests
    /// to this process record one backfill.
    creating: tokio::sync::Mutex<()>,
}

impl Api {
    /// Answers one request and logs its method, path and status (never its headers or body).
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let response = match self.handle(request).await {
            Ok(response) => response,
            Err(err) => {
                if err.status.is_server_error() {
                    tracing::warn!(%method, %path, error = %err.message, "Control API request failed.");
                }
                err.reply()
            }
        };
        tracing::info!(%method, %path, status = response.status().as_u16(), "Control API request.");
        response
    }

    async fn handle(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
        if !self.token.authorizes(request.headers().get(AUTHORIZATION)) {
            return Err(ApiError::unauthorized());
        }
        let store = self.pipeline.store();
        match route(request.method(), request.uri().path())? {
            Route::List => {
                let limit = limit(request.uri().query())?;
                Ok(json(StatusCode::OK, &store.backfills(limit).await?))
            }
            Route::Stats => Ok(json(StatusCode::OK, &store.queue_stats().await?)),
            Route::Create => {
                let body: Option<NewBackfill> = parse_required(&read_body(request).await?)?;
                let (status, created) = self.create(body.as_ref()).await?;
                Ok(json(status, &created))
            }
            Route::Cancel(id) => {
                let body: CancelBody = parse_required(&read_body(request).await?)?.unwrap_or_default();
                let by = body.by.as_deref().map(str::trim).filter(|by| !by.is_empty()).unwrap_or(DEFAULT_BY);
                let outcome = backfill::cancel(store, CancelTarget::Backfill(id), by, body.now).await?;
                Ok(json(StatusCode::OK, &outcome))
            }
        }
    }

    /// `POST /backfills`: validate, then (under the lock) the unfinished twin's id, or plan and enqueue.
    async fn create(&self, body: Option<&NewBackfill>) -> Result<(StatusCode, Created), ApiError> {
        let Some(body) = body else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "a JSON body is required: {\"start\": \"YYYY-MM-DD\", \"end\": \"YYYY-MM-DD\"}",
            ));
        };
        let request = body.request()?;
        let today = self.clock.today();
        let configured = &self.pipeline.config().selection;
        let selection = backfill::validate(&request, today, configured)?;
        let _creating = self.creating.lock().await;
        let store = self.pipeline.store();
        let recent = store.backfills(MAX_LIMIT).await?;
        if let Some(twin) = recent.iter().find(|r| is_twin(r, &request, &selection, today, configured)) {
            let d = &twin.dates;
            let dates = d.pending + d.retry + d.processing;
            let message = format!(
                "backfill {} of {} → {} with the same selection is unfinished ({dates} date(s) queued or running): \
                 nothing enqueued",
                twin.id, twin.start, twin.end
            );
            return Ok((StatusCode::OK, Created { id: twin.id, dates, existing: true, message }));
        }
        // Planning and enqueueing read only the queue and BigQuery; the selection is passed as validated.
        let plan = backfill::plan(&self.pipeline, &request, &selection, configured).await?;
        let enqueued = backfill::enqueue(&self.pipeline, &request, &plan).await?;
        tracing::info!(id = enqueued.id, dates = enqueued.dates, start = %request.range.start(),
            end = %request.range.end(), by = %request.requested_by, "Backfill enqueued over the control API.");
        let message = format!(
            "backfill {}: {} date(s) of {} → {} in the queue",
            enqueued.id,
            enqueued.dates,
            request.range.start(),
            request.range.end()
        );
        let dates = i64::try_from(enqueued.dates).unwrap_or(i64::MAX);
        Ok((StatusCode::CREATED, Created { id: enqueued.id, dates, existing: false, message }))
    }
}

/// A request's JSON body, `None` when it is empty; 400 when it is not JSON of the expected shape.
fn parse_required<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.trim_ascii().is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|err| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("the request body is not valid JSON for this: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).expect("a valid header value")
    }

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn the_bearer_token_is_read_from_the_authorization_header() {
        let cases: [(&str, Option<&[u8]>); 8] = [
            ("Bearer abc", Some(b"abc")),
            ("bearer abc", Some(b"abc")),
            ("BEARER   abc  ", Some(b"abc")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", None),
            ("Bearerabc", None),
            ("Token abc", None),
        ];
        for (value, expected) in cases {
            assert_eq!(bearer(Some(&header(value))), expected, "{value:?}");
        }
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn only_the_exact_token_authorizes() {
        let token = ControlToken::new(&format!("  {TOKEN}\n")).expect("long enough");
        assert!(token.authorizes(Some(&header(&format!("Bearer {TOKEN}")))), "trimmed like the environment's");
        for wrong in [
            "0123456789abcdef0124",   // same length, last byte differs
            "x123456789abcdef0123",   // same length, first byte differs
            "0123456789abcdef012",    // a prefix
            "0123456789abcdef01234",  // longer
            "0123456789abcdef0123 x", // the token and more
            "short",
        ] {
            assert!(!token.authorizes(Some(&header(&format!("Bearer {wrong}")))), "{wrong:?}");
        }
        assert!(!token.authorizes(None));
        assert!(!token.authorizes(Some(&header(TOKEN))), "no scheme");
        assert_eq!(format!("{token:?}"), "ControlToken(***)");
    }

    #[test]
    fn a_missing_or_short_token_is_refused_without_showing_it() {
        let missing = ControlToken::from_environment(&Environment::default()).expect_err("no token");
        assert!(missing.to_string().contains("set PIPELINE_CONTROL_TOKEN"), "{missing}");
        let short = ControlToken::new("secret-but-short").map(|_| ());
        assert!(short.is_ok(), "16 characters are enough");
        let short = ControlToken::new("secret-but-shor").expect_err("15 characters");
        assert!(short.to_string().contains("16 characters or more"), "{short}");
        assert!(!short.to_string().contains("secret-but-shor"), "{short}");
        let env = Environment::default().with(Var::PipelineControlToken, TOKEN);
        assert!(ControlToken::from_environment(&env).is_ok());
    }

    #[test]
    fn the_routing_table() {
        let ok = |method: Method, path: &str| route(&method, path).expect("routed");
        assert_eq!(ok(Method::GET, "/backfills"), Route::List);
        assert_eq!(ok(Method::POST, "/backfills"), Route::Create);
        assert_eq!(ok(Method::GET, "/backfills/stats"), Route::Stats);
        assert_eq!(ok(Method::POST, "/backfills/42/cancel"), Route::Cancel(42));
        let err = |method: Method, path: &str| route(&method, path).expect_err("not routed");
        for (method, path, status, allow) in [
            (Method::DELETE, "/backfills", 405, Some("GET, POST")),
            (Method::POST, "/backfills/stats", 405, Some("GET")),
            (Method::GET, "/backfills/42/cancel", 405, Some("POST")),
            (Method::POST, "/backfills/abc/cancel", 400, None),
            (Method::GET, "/", 404, None),
            (Method::GET, "/backfills/42", 404, None),
            (Method::GET, "/backfills/", 404, None),
            (Method::GET, "/metrics", 404, None),
        ] {
            let e = err(method.clone(), path);
            assert_eq!((e.status.as_u16(), e.allow), (status, allow), "{method} {path}: {e:?}");
        }
        let reply = err(Method::PUT, "/backfills").reply();
        assert_eq!(reply.headers().get(ALLOW).map(HeaderValue::as_bytes), Some(&b"GET, POST"[..]));
        let reply = ApiError::unauthorized().reply();
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(reply.headers().get(WWW_AUTHENTICATE).map(HeaderValue::as_bytes), Some(&b"Bearer"[..]));
        assert_eq!(reply.headers().get(CONTENT_TYPE).map(HeaderValue::as_bytes), Some(&b"application/json"[..]));
    }

    #[test]
    fn the_list_limit_defaults_to_20_and_is_clamped() {
        assert_eq!(limit(None).expect("default"), 20);
        assert_eq!(limit(Some("x=1")).expect("default"), 20);
        assert_eq!(limit(Some("x=1&limit=5")).expect("given"), 5);
        assert_eq!(limit(Some("limit=0")).expect("clamped"), 1);
        assert_eq!(limit(Some("limit=5000")).expect("clamped"), 1000);
        assert_eq!(limit(Some("limit=many")).expect_err("not a number").status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_request_body_becomes_a_backfill_request_or_a_400() {
        let body: NewBackfill = serde_json::from_str(
            r#"{"start": "2024-06-01", "end": "2024-06-03", "symbols": ["XBTUSD"], "force": true, "max_days": 3}"#,
        )
        .expect("parses");
        let request = body.request().expect("valid");
        assert_eq!((request.range.len(), request.force, request.max_days), (3, true, 3));
        assert_eq!((request.requested_by.as_str(), request.symbols.len()), ("api", 1));
        let bad = |text: &str| {
            serde_json::from_str::<NewBackfill>(text).expect("parses").request().expect_err("refused").message
        };
        assert_eq!(
            bad(r#"{"start": "2024-06-30", "end": "2024-06-01"}"#),
            "Start date 2024-06-30 is after end date 2024-06-01"
        );
        assert!(bad(r#"{"start": "2024-6-1", "end": "2024-06-01"}"#).contains("expected YYYY-MM-DD"));
        assert!(
            serde_json::from_str::<NewBackfill>(r#"{"start": "2024-06-01", "end": "2024-06-01", "symbol": []}"#)
                .is_err(),
            "unknown fields are refused"
        );
        let refused = parse_required::<NewBackfill>(b"{not json").expect_err("garbage");
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(parse_required::<NewBackfill>(b" \n").expect("empty").is_none());
        let cancel: CancelBody = parse_required(b"").expect("no body").unwrap_or_default();
        assert!(!cancel.now && cancel.by.is_none());
        let cancel: CancelBody = parse_required(br#"{"now": true, "by": "ops"}"#).expect("a body").unwrap_or_default();
        assert!(cancel.now && cancel.by.as_deref() == Some("ops"));
    }

    fn record(id: i64, options: serde_json::Value) -> BackfillRecord {
        BackfillRecord {
            id,
            requested_by: "api".to_owned(),
            start: TradingDay::parse("2024-06-01").expect("valid"),
            end: TradingDay::parse("2024-06-03").expect("valid"),
            status: "enqueued".to_owned(),
            options,
            started_at: chrono::Utc::now(),
            finished_at: None,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            rows_written: 0,
            cancelled_by: None,
            cancelled_at: None,
            retry_of: None,
            dates: crate::store::DateCounts { pending: 2, processing: 1, ..Default::default() },
        }
    }

    #[test]
    fn an_unfinished_backfill_of_the_same_range_and_selection_is_the_twin() {
        let configured = Selection::parse("bitmex:XBTUSD,ETHUSD;deribit:BTC-PERPETUAL").expect("valid");
        let today = TradingDay::parse("2024-07-10").expect("valid");
        let mut request = BackfillRequest::new(DateRange::parse("2024-06-01", "2024-06-03").expect("valid"), "api");
        request.exchanges = vec![Exchange::parse("bitmex").expect("valid")];
        let selection = backfill::validate(&request, today, &configured).expect("valid");
        let twin = |record: &BackfillRecord| is_twin(record, &request, &selection, today, &configured);
        let options = serde_json::json!({"exchanges": ["bitmex"], "symbols": [], "force": false, "retry_of": null});
        assert!(twin(&record(1, options.clone())));
        // The same pairs named another way are the same selection.
        let same_pairs = serde_json::json!({"exchanges": [], "symbols": ["XBTUSD", "ETHUSD"], "force": false});
        assert!(twin(&record(2, same_pairs)));
        assert!(!twin(&record(3, serde_json::json!({"exchanges": [], "symbols": [], "force": false}))), "all pairs");
        assert!(!twin(&record(4, serde_json::json!({"exchanges": ["bitmex"], "force": true}))), "forced");
        let mut finished = record(5, options.clone());
        finished.dates = crate::store::DateCounts { completed: 3, ..Default::default() };
        assert!(!twin(&finished), "every date done");
        let mut cancelled = record(6, options.clone());
        cancelled.status = "cancelled".to_owned();
        assert!(!twin(&cancelled));
        let mut longer = record(7, options.clone());
        longer.end = TradingDay::parse("2024-06-04").expect("valid");
        assert!(!twin(&longer), "another range");
        let mut retry = record(8, options);
        retry.retry_of = Some(1);
        assert!(!twin(&retry), "a retry runs only some dates");
    }
}
