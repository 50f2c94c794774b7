//! A network front for either fake: a small HTTP/1.1 server on loopback that forwards every request to the
//! fake behind it and can spoil the *transport* of chosen answers, which wiremock cannot: the connection reset
//! (TCP RST) or closed (FIN) in the middle of a body whose `Content-Length` promised more, the first byte
//! delayed, the body dripped at a few bytes per second.
//!
//! Answers themselves (statuses, bodies, BigQuery job results) stay the fakes' business, with their own fault
//! plans; this module only moves bytes. Every request it forwards is logged with the time it arrived, so a
//! test can tell how long a client waited between attempts.

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

/// One request the front forwarded, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontRequest {
    /// When it arrived, from the front's start.
    pub at: Duration,
    pub method: String,
    /// The path with its query, as sent.
    pub path: String,
    /// The status the fake behind answered (`None` when it could not be reached).
    pub status: Option<u16>,
    /// The transport fault applied, if any.
    pub fault: Option<String>,
}

#[derive(Debug)]
struct Plan {
    path_prefix: String,
    remaining: usize,
    fault: NetworkFault,
}

#[derive(Debug)]
struct State {
    upstream: String,
    started: Instant,
    plans: Vec<Plan>,
    log: Vec<FrontRequest>,
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
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let uri = format!("http://{}", listener.local_addr()?);
        let state: Shared = Arc::new(Mutex::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            started: Instant::now(),
            plans: Vec::new(),
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

    /// Spoils the transport of the next `times` answers to requests whose path starts with `path_prefix`.
    /// Plans are consulted in the order they were added; each request uses at most one.
    pub fn fail_next(&self, path_prefix: &str, times: usize, fault: NetworkFault) {
        if times > 0 {
            lock(&self.state).plans.push(Plan { path_prefix: path_prefix.to_owned(), remaining: times, fault });
        }
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
    let (fault, upstream, at) = {
        let mut state = lock(state);
        let index = state.plans.iter().position(|p| request.uri().path().starts_with(&p.path_prefix));
        let fault = index.map(|i| {
            let plan = &mut state.plans[i];
            plan.remaining -= 1;
            let fault = plan.fault;
            if plan.remaining == 0 {
                state.plans.remove(i);
            }
            fault
        });
        (fault, state.upstream.clone(), state.started.elapsed())
    };
    let mut upstream_request = client.request(method.clone(), format!("{upstream}{path}"));
    for (name, value) in request.headers() {
        if name != hyper::header::HOST && !HOP_BY_HOP.contains(&name.as_str()) {
            upstream_request = upstream_request.header(name, value);
        }
    }
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
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
            let entry = FrontRequest { at, method: method.to_string(), path, status: None, fault: None };
            lock(state).log.push(entry);
            let body = Full::new(Bytes::from(format!("front: the fake behind is unreachable: {err}")));
            let mut response = Response::new(body.map_err(|never| match never {}).boxed());
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            return response;
        }
    };
    lock(state).log.push(FrontRequest {
        at,
        method: method.to_string(),
        path,
        status: Some(status.as_u16()),
        fault: fault.map(|f| f.label()),
    });
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
