//! A network front for either fake: a small HTTP/1.1 server on loopback that forwards every request to the
//! fake behind it and can spoil the *transport* of chosen answers, which wiremock cannot: the connection reset
//! (TCP RST) or closed (FIN) in the middle of a body whose `Content-Length` promised more, the first byte
//! delayed, the body dripped at a few bytes per second.
//!
//! It is also where fault *rules* act on any endpoint of either fake, by method and path: which calls (the
//! first N, chosen numbers, a seeded probability, a time window) get which fault (a transport fault, an answer
//! of its own such as a 429 with `Retry-After` or a lost response, a spoiled body). Faults that only the fake
//! can give (a BigQuery job's result, Tardis' `exportedUntil`) stay the fakes' business. Every request is
//! logged with the time it arrived, the status and `Retry-After` the client was given and the rule that acted,
//! so a test can tell how long a client waited between attempts.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// What happens to the transport of a matching answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFault {
    /// The status, the headers (with the full `Content-Length`) and half the body, then a TCP reset.
    ResetMidBody,
    /// The same, then an orderly close (FIN): the body simply stops short of its `Content-Length`.
    CloseMidBody,
    /// The whole answer, after this long without a byte.
    SlowFirstByte(Duration),
    /// The whole answer, its body sent in small pieces at about this many bytes per second.
    Drip { bytes_per_second: u64 },
}

impl NetworkFault {
    pub fn label(&self) -> String {
        match self {
            NetworkFault::ResetMidBody => "reset mid-body".to_owned(),
            NetworkFault::CloseMidBody => "close mid-body".to_owned(),
            NetworkFault::SlowFirstByte(delay) => format!("first byte after {} ms", delay.as_millis()),
            NetworkFault::Drip { bytes_per_second } => format!("drip {bytes_per_second} B/s"),
        }
    }
}

/// What a matching answer gets instead of, or on top of, what the fake behind would have said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Its transport is spoiled (the answer itself is the fake's).
    Network(NetworkFault),
    /// This answer instead (as a rate limiter, a load balancer or the vendor's front end would give). With
    /// `after_forwarding`, the request first reaches the fake and takes effect there: a lost response.
    Answer(Answer),
    /// The fake's answer with its body spoiled (same status and headers).
    Spoil(BodyFault),
}

impl Action {
    pub fn label(&self) -> String {
        match self {
            Action::Network(fault) => fault.label(),
            Action::Answer(answer) => {
                let lost = if answer.after_forwarding { " after the request took effect" } else { "" };
                match answer.retry_after {
                    Some(seconds) => format!("status {}{lost}, retry after {seconds} s", answer.status),
                    None => format!("status {}{lost}", answer.status),
                }
            }
            Action::Spoil(fault) => fault.label().to_owned(),
        }
    }
}

/// An answer the front gives itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `Retry-After: <seconds>`.
    pub retry_after: Option<u64>,
    /// Sent as JSON when it starts with `{`, as text otherwise.
    pub body: String,
    pub after_forwarding: bool,
}

/// What happens to the body of a matching answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// One byte in the middle inverted (same length): a gzip whose checksum fails.
    CorruptGzip,
    /// The first half only, with a `Content-Length` that says so (a complete, short answer).
    Truncated,
    /// Zero bytes.
    Empty,
    /// A gzipped CSV whose data rows are torn in half, one in `every` (the header and the gzip stay valid).
    CorruptCsvRows { every: usize },
}

impl BodyFault {
    pub fn label(&self) -> &'static str {
        match self {
            BodyFault::CorruptGzip => "corrupt gzip",
            BodyFault::Truncated => "truncated body",
            BodyFault::Empty => "empty body",
            BodyFault::CorruptCsvRows { .. } => "corrupt CSV rows",
        }
    }

    fn apply(self, bytes: &Bytes) -> Bytes {
        match self {
            BodyFault::CorruptGzip => {
                let mut spoiled = bytes.to_vec();
                if let Some(byte) = spoiled.get_mut(bytes.len() / 2) {
                    *byte = !*byte;
                }
                Bytes::from(spoiled)
            }
            BodyFault::Truncated => bytes.slice(..bytes.len() / 2),
            BodyFault::Empty => Bytes::new(),
            BodyFault::CorruptCsvRows { every } => {
                tear_rows(bytes, every.max(1)).map_or_else(|| bytes.clone(), Bytes::from)
            }
        }
    }
}

/// `gz` with one data row in `every` cut to half its length, gzipped again; `None` when it is not gzip text.
fn tear_rows(gz: &[u8], every: usize) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz).read_to_string(&mut text).ok()?;
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        if i > 0 && i % every == 0 {
            let cut = line.char_indices().nth(line.chars().count() / 2).map_or(0, |(at, _)| at);
            out.push_str(&line[..cut]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(out.as_bytes()).ok()?;
    encoder.finish().ok()
}

/// Which requests a rule is for: `(method, path, query)` (the query without its `?`, empty when absent).
pub type Matcher = Arc<dyn Fn(&str, &str, &str) -> bool + Send + Sync>;

/// Which of the requests a rule matches it acts on, counting them 1, 2, 3... from when it was added.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// Every one.
    Every,
    /// The first `n`.
    First(u64),
    /// These (1-based).
    Calls(Vec<u64>),
    /// Each with this probability, drawn from `seed` and the call's number (the same seed picks the same
    /// numbers).
    Probability { p: f64, seed: u64 },
    /// Those arriving in `[from, to)` after the front started.
    Window { from: Duration, to: Duration },
}

impl Select {
    fn picks(&self, call: u64, at: Duration, rule: usize) -> bool {
        match self {
            Select::Every => true,
            Select::First(n) => call <= *n,
            Select::Calls(calls) => calls.contains(&call),
            Select::Probability { p, seed } => {
                let draw = splitmix(seed ^ splitmix(rule as u64) ^ splitmix(call.wrapping_mul(0x9E37_79B9)));
                ((draw >> 11) as f64 / (1u64 << 53) as f64) < *p
            }
            Select::Window { from, to } => *from <= at && at < *to,
        }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One fault rule: the requests it is for, which of them, and what they get.
#[derive(Clone)]
pub struct Rule {
    /// How the request log names the rule.
    pub name: String,
    pub matcher: Matcher,
    pub select: Select,
    pub action: Action,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("select", &self.select)
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

/// A matcher for the requests whose path starts with `prefix`.
pub fn path_prefix(prefix: &str) -> Matcher {
    let prefix = prefix.to_owned();
    Arc::new(move |_, path, _| path.starts_with(&prefix))
}

/// One request the front forwarded, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontRequest {
    /// When it arrived, from the front's start.
    pub at: Duration,
    pub method: String,
    /// The path with its query, as sent.
    pub path: String,
    /// The status the client was given (`None` when the fake behind could not be reached).
    pub status: Option<u16>,
    /// The `Retry-After` seconds the client was given, if any.
    pub retry_after: Option<u64>,
    /// The rule that acted on it and what it did (`"name: label"`; the label alone for `fail_next`).
    pub fault: Option<String>,
    /// The first kilobyte of the request body, as text (what identifies a job in a BigQuery upload).
    pub body_head: String,
}

/// How much of a request body the log keeps.
const BODY_HEAD: usize = 1024;

#[derive(Debug)]
struct Active {
    rule: Rule,
    seen: u64,
}

struct Watch {
    matcher: Matcher,
    fire: Option<tokio::sync::oneshot::Sender<Duration>>,
}

struct State {
    upstream: String,
    started: Instant,
    rules: Vec<Active>,
    watches: Vec<Watch>,
    log: Vec<FrontRequest>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("upstream", &self.upstream).field("rules", &self.rules).finish_non_exhaustive()
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running front. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct Front {
    uri: String,
    state: Shared,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Front {
    /// Starts on a free loopback port, forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> std::io::Result<Front> {
        Front::start_on(TcpListener::bind("127.0.0.1:0").await?, upstream)
    }

    /// Starts on `listener` (a port the user chose), forwarding to `upstream`.
    pub fn start_on(listener: TcpListener, upstream: &str) -> std::io::Result<Front> {
        let uri = format!("http://{}", listener.local_addr()?);
        let state: Shared = Arc::new(Mutex::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            started: Instant::now(),
            rules: Vec::new(),
            watches: Vec::new(),
            log: Vec::new(),
        }));
        let client = reqwest::Client::builder().no_proxy().build().map_err(std::io::Error::other)?;
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, client) = (accept_state.clone(), client.clone());
                tokio::spawn(serve(stream, state, client));
            }
        });
        Ok(Front { uri, state, accept })
    }

    /// `http://127.0.0.1:PORT`: use it in place of the fake's own address.
    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    /// Adds a fault rule. Rules are consulted in the order they were added; every rule counts the requests it
    /// matches, and a request gets the action of the first rule that picks it.
    pub fn add(&self, rule: Rule) {
        lock(&self.state).rules.push(Active { rule, seen: 0 });
    }

    /// Spoils the transport of the next `times` answers to requests whose path starts with `path_prefix`.
    pub fn fail_next(&self, path_prefix: &str, times: usize, fault: NetworkFault) {
        if times > 0 {
            self.add(Rule {
                name: String::new(),
                matcher: self::path_prefix(path_prefix),
                select: Select::First(times as u64),
                action: Action::Network(fault),
            });
        }
    }

    /// Resolves, with the arrival time, when the first request `matcher` accepts arrives (before it is
    /// forwarded).
    pub fn on_first(&self, matcher: Matcher) -> tokio::sync::oneshot::Receiver<Duration> {
        let (fire, fired) = tokio::sync::oneshot::channel();
        lock(&self.state).watches.push(Watch { matcher, fire: Some(fire) });
        fired
    }

    /// How long the front has been running.
    pub fn elapsed(&self) -> Duration {
        lock(&self.state).started.elapsed()
    }

    /// Every request forwarded so far.
    pub fn requests(&self) -> Vec<FrontRequest> {
        lock(&self.state).log.clone()
    }
}

/// A connection that can be made to end with a TCP reset instead of an orderly close.
struct Connection {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            // Zero linger: closing sends RST and discards what was not sent.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

async fn serve(stream: TcpStream, state: Shared, client: reqwest::Client) {
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Connection { stream, reset: reset.clone() });
    let service = hyper::service::service_fn(move |request| {
        let (state, client, reset) = (state.clone(), client.clone(), reset.clone());
        async move { Ok::<_, Infallible>(forward(request, &state, &client, &reset).await) }
    });
    // A spoiled answer ends the connection with an error: that is the point.
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
}

/// Hop-by-hop headers, which a proxy does not pass on.
const HOP_BY_HOP: [&str; 6] = ["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"];

async fn forward(
    request: Request<Incoming>,
    state: &Shared,
    client: &reqwest::Client,
    reset: &AtomicBool,
) -> Response<Body> {
    let path = request.uri().path_and_query().map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let (path_only, query) = (request.uri().path().to_owned(), request.uri().query().unwrap_or_default().to_owned());
    let (action, upstream, at) = {
        let mut state = lock(state);
        let at = state.started.elapsed();
        let mut action = None;
        for (index, active) in state.rules.iter_mut().enumerate() {
            if (active.rule.matcher)(method.as_str(), &path_only, &query) {
                active.seen += 1;
                if action.is_none() && active.rule.select.picks(active.seen, at, index) {
                    let label = active.rule.action.label();
                    let named =
                        if active.rule.name.is_empty() { label } else { format!("{}: {label}", active.rule.name) };
                    action = Some((active.rule.action.clone(), named));
                }
            }
        }
        for watch in &mut state.watches {
            if watch.fire.is_some() && (watch.matcher)(method.as_str(), &path_only, &query) {
                let _ = watch.fire.take().map(|fire| fire.send(at));
            }
        }
        (action, state.upstream.clone(), at)
    };
    let headers_in = request.headers().clone();
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body_head = String::from_utf8_lossy(&body[..body.len().min(BODY_HEAD)]).into_owned();
    let log = |status: Option<u16>, retry_after: Option<u64>, fault: Option<String>| {
        lock(state).log.push(FrontRequest {
            at,
            method: method.to_string(),
            path: path.clone(),
            status,
            retry_after,
            fault,
            body_head: body_head.clone(),
        });
    };
    if let Some((Action::Answer(answer), label)) = &action
        && !answer.after_forwarding
    {
        log(Some(answer.status), answer.retry_after, Some(label.clone()));
        return answer_response(answer);
    }
    let mut upstream_request = client.request(method.clone(), format!("{upstream}{path}"));
    for (name, value) in &headers_in {
        if name != hyper::header::HOST && !HOP_BY_HOP.contains(&name.as_str()) {
            upstream_request = upstream_request.header(name, value);
        }
    }
    let answered = match upstream_request.body(body).send().await {
        Ok(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            response.bytes().await.map(|bytes| (status, headers, bytes))
        }
        Err(err) => Err(err),
    };
    let (status, headers, bytes) = match answered {
        Ok(answer) => answer,
        Err(err) => {
            log(None, None, None);
            let body = Full::new(Bytes::from(format!("front: the fake behind is unreachable: {err}")));
            let mut response = Response::new(body.map_err(|never| match never {}).boxed());
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            return response;
        }
    };
    let retry_after = headers
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (fault, bytes) = match action {
        Some((Action::Answer(answer), label)) => {
            // A lost response: the request took effect behind, the client is told otherwise.
            log(Some(answer.status), answer.retry_after, Some(label));
            return answer_response(&answer);
        }
        Some((Action::Spoil(spoil), label)) => {
            log(Some(status.as_u16()), retry_after, Some(label));
            (None, spoil.apply(&bytes))
        }
        Some((Action::Network(fault), label)) => {
            log(Some(status.as_u16()), retry_after, Some(label));
            (Some(fault), bytes)
        }
        None => {
            log(Some(status.as_u16()), retry_after, None);
            (None, bytes)
        }
    };
    let mut builder = Response::builder().status(status);
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != hyper::header::CONTENT_LENGTH {
            builder = builder.header(name, value);
        }
    }
    // The length the whole body has, even when less of it is sent.
    builder = builder.header(hyper::header::CONTENT_LENGTH, bytes.len());
    let body = match fault {
        None => Full::new(bytes).map_err(|never| match never {}).boxed(),
        Some(NetworkFault::SlowFirstByte(delay)) => {
            tokio::time::sleep(delay).await;
            Full::new(bytes).map_err(|never| match never {}).boxed()
        }
        Some(fault @ (NetworkFault::ResetMidBody | NetworkFault::CloseMidBody)) => {
            if fault == NetworkFault::ResetMidBody {
                reset.store(true, Ordering::SeqCst);
            }
            let half = bytes.slice(..bytes.len() / 2);
            // The head and the first half are flushed to the client before the cut (hyper writes what it has
            // when the body pauses).
            let cut = async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "the front cut the body short"))
            };
            let frames = futures::stream::iter([Ok(Frame::data(half))]).chain(futures::stream::once(cut));
            BodyExt::boxed(StreamBody::new(frames))
        }
        Some(NetworkFault::Drip { bytes_per_second }) => {
            // Ten pieces a second, each a tenth of the rate (at least a byte).
            let piece = usize::try_from((bytes_per_second / 10).max(1)).unwrap_or(usize::MAX);
            let pieces: Vec<Bytes> =
                (0..bytes.len()).step_by(piece).map(|i| bytes.slice(i..(i + piece).min(bytes.len()))).collect();
            let frames = futures::stream::iter(pieces).then(|piece| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, std::io::Error>(Frame::data(piece))
            });
            BodyExt::boxed(StreamBody::new(frames))
        }
    };
    builder.body(body).unwrap_or_else(|_| {
        let mut response = Response::new(Full::new(Bytes::new()).map_err(|never| match never {}).boxed());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

/// The front's own answer.
fn answer_response(answer: &Answer) -> Response<Body> {
    let content_type = if answer.body.starts_with('{') { "application/json; charset=UTF-8" } else { "text/plain" };
    let mut builder = Response::builder().status(answer.status).header(hyper::header::CONTENT_TYPE, content_type);
    if let Some(seconds) = answer.retry_after {
        builder = builder.header(hyper::header::RETRY_AFTER, seconds);
    }
    builder.body(Full::new(Bytes::from(answer.body.clone())).map_err(|never| match never {}).boxed()).unwrap_or_else(
        |_| {
            let mut response = Response::new(Full::new(Bytes::new()).map_err(|never| match never {}).boxed());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        },
    )
}
