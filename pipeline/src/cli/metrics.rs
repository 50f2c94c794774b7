//! `--metrics-listen`, `--metrics-file` and `--metrics-push`: where the commands that run dates (`run`,
//! `worker`, `schedule`, `backfill --execute`) put their Prometheus metrics ([`crate::metrics`]).
//!
//! - `--metrics-listen ADDR` serves, for as long as the command runs, `GET /metrics` (the text format; the
//!   backfill queue's gauges read from the database at each scrape), `GET /healthz` (200 while the process
//!   answers: liveness) and `GET /readyz` (200 when the database answers within 2 s, else 503: readiness).
//! - `--metrics-file FILE` writes the metrics when the command ends, for the node exporter's textfile collector
//!   (written beside FILE and renamed, so the collector never reads half a file).
//! - `--metrics-push URL` sends them to a Pushgateway when the command ends (`PUT URL/metrics/job/pipeline`,
//!   which replaces what that job pushed before; retried like every other call, then a warning: metrics never
//!   fail a run).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::task::JoinHandle;
use url::Url;

use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::retry::{self, Attempt, GaveUp, RetryPolicy};
use crate::store::Store;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics on ADDR while the command runs (`/metrics`, `/healthz`, `/readyz`), e.g.
    /// `0.0.0.0:9184`; port 0 picks a free port (printed).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// When the command ends, write the metrics to FILE for the node exporter's textfile collector (`*.prom`).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// When the command ends, push the metrics to this Pushgateway (e.g. `http://pushgateway:9091`), as job
    /// `pipeline`.
    #[arg(long, value_name = "URL")]
    pub metrics_push: Option<Url>,
}

/// The metrics of a command and where they go.
pub struct Exporter {
    metrics: Metrics,
    store: Store,
    file: Option<PathBuf>,
    push: Option<Url>,
    server: Option<JoinHandle<()>>,
}

impl MetricsArgs {
    /// Starts what was asked for (binding the address first: a taken port is bad input, before any run).
    pub async fn start(&self, store: &Store) -> anyhow::Result<Exporter> {
        let metrics = Metrics::new();
        let server = match self.metrics_listen {
            None => None,
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("--metrics-listen {addr}: cannot listen there"))?;
                let bound = listener.local_addr().context("the metrics listener has no address")?;
                tracing::info!(%bound, "Serving metrics on /metrics, /healthz and /readyz.");
                eprintln!("metrics: http://{bound}/metrics");
                let (metrics, store) = (metrics.clone(), store.clone());
                Some(super::serve::spawn(listener, move |request| {
                    let (metrics, store) = (metrics.clone(), store.clone());
                    async move { answer(&request, &metrics, &store).await }
                }))
            }
        };
        Ok(Exporter {
            metrics,
            store: store.clone(),
            file: self.metrics_file.clone(),
            push: self.metrics_push.clone(),
            server,
        })
    }
}

impl Exporter {
    /// The metrics the command records into.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Writes and pushes the final metrics, as asked, and stops serving. A failure to write the file is an
    /// error (the operator asked for it); a Pushgateway that cannot be reached is a warning.
    pub async fn finish(self) -> anyhow::Result<()> {
        if let Some(server) = &self.server {
            server.abort();
        }
        if self.file.is_none() && self.push.is_none() {
            return Ok(());
        }
        refresh_queue(&self.metrics, &self.store).await;
        let text = self.metrics.encode();
        if let Some(path) = &self.file {
            let (dir, name) = (path.parent().unwrap_or(Path::new("")), path.file_name().unwrap_or_default());
            crate::report::write_files(dir, [(name.to_string_lossy(), text.clone())])
                .with_context(|| format!("--metrics-file {}", path.display()))?;
        }
        if let Some(url) = &self.push
            && let Err(err) = push(url, text).await
        {
            tracing::warn!(%url, error = %err, "Metrics not pushed.");
            eprintln!("warning: metrics not pushed to {url}: {err}");
        }
        Ok(())
    }
}

/// Sets the backfill queue's gauges from the database; on an error they keep their last values.
async fn refresh_queue(metrics: &Metrics, store: &Store) {
    match tokio::time::timeout(Duration::from_secs(5), store.queue_stats()).await {
        Ok(Ok(stats)) => metrics.set_queue(&stats),
        Ok(Err(err)) => tracing::warn!(error = %err, "Backfill queue counts unavailable for the metrics."),
        Err(_) => tracing::warn!("Backfill queue counts unavailable for the metrics: the database took over 5 s."),
    }
}

/// `PUT {url}/metrics/job/pipeline` with the text format, retried on 5xx and network errors.
async fn push(url: &Url, text: String) -> anyhow::Result<()> {
    let mut target = url.clone();
    target
        .path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{url} cannot take a path"))?
        .pop_if_empty()
        .extend(["metrics", "job", "pipeline"]);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::DEFAULT };
    let body = Bytes::from(text);
    let (client, target, body) = (&client, &target, &body);
    retry::retry(&policy, target.as_str(), |_| async move {
        let response = client
            .put(target.clone())
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body.clone())
            .send()
            .await
            .map_err(|err| Attempt::retry(err.to_string()))?;
        let status = response.status();
        match status {
            s if s.is_success() => Ok(()),
            s if s.is_server_error() => Err(Attempt::retry(format!("HTTP {s}"))),
            s => Err(Attempt::Final(format!("HTTP {s}: {}", response.text().await.unwrap_or_default()))),
        }
    })
    .await
    .map_err(|gave_up| match gave_up {
        GaveUp::Final(reason) => anyhow::anyhow!(reason),
        GaveUp::Exhausted { attempts, last } => anyhow::anyhow!("{attempts} attempts, the last: {last}"),
        GaveUp::WaitTooLong { reason, .. } => anyhow::anyhow!(reason),
    })
}

async fn answer(request: &Request<Incoming>, metrics: &Metrics, store: &Store) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n".to_owned());
    }
    match request.uri().path() {
        "/metrics" => {
            refresh_queue(metrics, store).await;
            reply(StatusCode::OK, CONTENT_TYPE, metrics.encode())
        }
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" => match tokio::time::timeout(Duration::from_secs(2), store.ping()).await {
            Ok(Ok(())) => reply(StatusCode::OK, "text/plain", "ready\n".to_owned()),
            Ok(Err(err)) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("database: {err}\n")),
            Err(_) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "database: no answer in 2 s\n".to_owned()),
        },
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found: /metrics, /healthz, /readyz\n".to_owned()),
    }
}
