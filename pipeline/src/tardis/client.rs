//! HTTP client for Tardis: request construction, authentication, status classification and retries.
//!
//! Downloads (see `download.rs`) and metadata calls go through the workspace's one retry mechanism
//! (`crate::retry`), so every request honours the same policy and `Retry-After`. Every request also draws on
//! the client's request budget first, when it has one, and a 429 pauses everyone sharing that budget
//! (`budget.rs`). This module does not parse CSV.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use market::{Exchange, Instrument, Symbol, TradingDay};
use reqwest::{Response, StatusCode};
use url::Url;

use super::TardisError;
use super::budget::RequestBudget;
use super::wire::{ErrorBody, ExchangeDetails, WireInstrument};
use crate::retry::{self, Attempt, GaveUp, RetryPolicy};

/// A Tardis API key. Its `Debug` and `Display` never show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// `None` for an empty or blank key, which Tardis treats as no key.
    pub fn new(key: &str) -> Option<ApiKey> {
        let key = key.trim();
        (!key.is_empty()).then(|| ApiKey(key.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[derive(Debug, Clone)]
pub struct TardisConfig {
    /// Base of the datasets API, e.g. `https://datasets.tardis.dev/v1`.
    pub datasets_url: Url,
    /// Base of the metadata API, e.g. `https://api.tardis.dev/v1`.
    pub api_url: Url,
    pub api_key: Option<ApiKey>,
    /// Downloads in flight at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// How long to wait for `exportedUntil` to cover the day before failing it as not yet exported.
    pub export_wait: Duration,
    /// Interval between `exportedUntil` polls while waiting.
    pub export_poll: Duration,
    /// Requests per second shared by every process on the database (`TARDIS_RATE_LIMIT`); `None` for no
    /// limit. Applied only when the client has a shared budget ([`TardisClient::with_budget`]).
    pub rate_limit: Option<f64>,
}

impl TardisConfig {
    pub const DEFAULT_DATASETS_URL: &'static str = "https://datasets.tardis.dev/v1";
    pub const DEFAULT_API_URL: &'static str = "https://api.tardis.dev/v1";
}

/// How one failed request ended: worth repeating or not.
pub(super) type Failure = Attempt<TardisError>;

#[derive(Debug, Clone)]
pub struct TardisClient {
    http: reqwest::Client,
    config: TardisConfig,
    /// Drawn on before every request and paused on every 429; `None`: no budget (see `budget.rs`).
    budget: Option<Arc<dyn RequestBudget>>,
}

impl TardisClient {
    pub fn new(config: TardisConfig) -> Result<TardisClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("market-pipeline/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()?;
        Ok(TardisClient { http, config, budget: None })
    }

    /// The same client, drawing on `budget` before every request and pausing it on every 429.
    pub fn with_budget(mut self, budget: Arc<dyn RequestBudget>) -> TardisClient {
        self.budget = Some(budget);
        self
    }

    pub fn config(&self) -> &TardisConfig {
        &self.config
    }

    /// `{base}/{segments...}` with each segment percent-encoded, so a symbol like `??USDT` stays one segment.
    pub(super) fn url(base: &Url, segments: &[&str]) -> Url {
        let mut url = base.clone();
        {
            let mut path = url.path_segments_mut().expect("http(s) base URLs can have path segments");
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// Sends a GET for `url`, adding `?retryAttempt=N` on retries like the official clients do. It waits for
    /// the budget first; a 429 pauses the budget before the attempt is handed back to be retried.
    pub(super) async fn send(&self, url: &Url, attempt: u32) -> Result<Response, Failure> {
        if let Some(budget) = &self.budget {
            budget.acquire().await;
        }
        let mut request_url = url.clone();
        if attempt > 1 {
            request_url.query_pairs_mut().append_pair("retryAttempt", &(attempt - 1).to_string());
        }
        let mut request = self.http.get(request_url);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Err(Attempt::retry(format!("request failed: {err}"))),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let after = retry::retry_after(response.headers());
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(budget) = &self.budget
        {
            // Before the body is read, so that the others stop as soon as possible.
            budget.pause(self.pause_for(after, attempt)).await;
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.message)
            .unwrap_or_else(|| body.chars().take(200).collect());
        let url_text = url.to_string();
        Err(match status {
            StatusCode::UNAUTHORIZED => Attempt::Final(TardisError::Unauthorized { url: url_text, message }),
            StatusCode::FORBIDDEN => Attempt::Final(TardisError::Forbidden { url: url_text, message }),
            StatusCode::NOT_FOUND => Attempt::Final(TardisError::NotFound { url: url_text, message }),
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry {
                reason: format!(
                    "429 rate limited (Retry-After {})",
                    after.map_or_else(|| "absent".to_owned(), |a| format!("{} s", a.as_secs()))
                ),
                after,
            },
            // A known transient: Cloudflare mangling the query string (seen by the official Python client).
            StatusCode::BAD_REQUEST if body.contains("ISO 8601 format") => {
                Attempt::retry(format!("400 transient: {message}"))
            }
            s if s.is_server_error() => Attempt::Retry { reason: format!("{} {message}", s.as_u16()), after },
            s => Attempt::Final(TardisError::Status { url: url_text, status: s.as_u16(), message }),
        })
    }

    /// How long a 429 pauses everyone sharing the budget: what `Retry-After` asked for, else the policy's
    /// backoff for this attempt, and never longer than the policy's cap on a requested wait (beyond it, this
    /// client gives up rather than wait, and the others find the quota spent for themselves).
    fn pause_for(&self, after: Option<Duration>, attempt: u32) -> Duration {
        let policy = &self.config.retry;
        after.unwrap_or_else(|| policy.backoff(attempt)).min(policy.max_retry_after)
    }

    /// Runs `attempt_fn` with the client's retry policy until it succeeds, fails finally, or gives up.
    pub(super) async fn with_retries<T, F, Fut>(&self, url: &Url, attempt_fn: F) -> Result<T, TardisError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let policy = self.config.retry;
        retry::retry(&policy, url.as_str(), attempt_fn).await.map_err(|gave_up| match gave_up {
            GaveUp::Final(err) => err,
            GaveUp::Exhausted { attempts, last } => TardisError::Exhausted { url: url.to_string(), attempts, last },
            GaveUp::WaitTooLong { requested, cap, .. } => TardisError::RateLimited {
                url: url.to_string(),
                retry_after_s: requested.as_secs(),
                cap_s: cap.as_secs(),
            },
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, TardisError> {
        self.with_retries(url, |attempt| async move {
            let response = self.send(url, attempt).await?;
            let bytes = response.bytes().await.map_err(|err| Attempt::retry(format!("body interrupted: {err}")))?;
            serde_json::from_slice(&bytes).map_err(|err| {
                Attempt::Final(TardisError::InvalidResponse {
                    url: url.to_string(),
                    reason: format!("not the expected JSON: {err}"),
                })
            })
        })
        .await
    }

    /// `GET {api}/exchanges/{exchange}`.
    pub async fn exchange_details(&self, exchange: &Exchange) -> Result<ExchangeDetails, TardisError> {
        let url = Self::url(&self.config.api_url, &["exchanges", exchange.as_str()]);
        self.get_json(&url).await
    }

    /// `GET {api}/instruments/{exchange}`: every instrument of the exchange.
    pub async fn instruments(&self, exchange: &Exchange) -> Result<Vec<Instrument>, TardisError> {
        let url = Self::url(&self.config.api_url, &["instruments", exchange.as_str()]);
        let wire: Vec<WireInstrument> = self.get_json(&url).await?;
        wire.into_iter()
            .map(|w| {
                w.into_domain()
                    .map_err(|e| TardisError::InvalidResponse { url: url.to_string(), reason: e.to_string() })
            })
            .collect()
    }

    /// Checks that every symbol is a trades dataset of `exchange`, and waits (up to the configured
    /// deadline) until `datasets.exportedUntil` covers the whole of `day`. A day that is not exported
    /// is an error, never an empty day.
    pub async fn ensure_ready(
        &self,
        exchange: &Exchange,
        symbols: &[Symbol],
        day: TradingDay,
    ) -> Result<(), TardisError> {
        let deadline = tokio::time::Instant::now() + self.config.export_wait;
        loop {
            let details = self.exchange_details(exchange).await?;
            let url = Self::url(&self.config.api_url, &["exchanges", exchange.as_str()]).to_string();
            let datasets = details
                .datasets
                .ok_or_else(|| TardisError::InvalidResponse { url, reason: "no `datasets` section".to_owned() })?;
            for symbol in symbols {
                let listed = datasets
                    .symbols
                    .iter()
                    .any(|s| s.id == symbol.as_str() && s.data_types.iter().any(|t| t == "trades"));
                if !listed {
                    return Err(TardisError::UnknownSymbol { exchange: exchange.clone(), symbol: symbol.clone() });
                }
            }
            let until = datasets.exported_until;
            if until.is_some_and(|u| u.timestamp_micros() >= day.end_us()) {
                return Ok(());
            }
            if tokio::time::Instant::now() + self.config.export_poll > deadline {
                return Err(TardisError::NotYetExported {
                    exchange: exchange.clone(),
                    day,
                    exported_until: until.map_or_else(|| "missing".to_owned(), |u| u.to_rfc3339()),
                });
            }
            tracing::info!(%exchange, %day, "Waiting for Tardis to export the day.");
            tokio::time::sleep(self.config.export_poll).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let base = Url::parse("http://127.0.0.1:9/datasets/v1").expect("valid");
        let url = TardisClient::url(&base, &["binance", "trades", "2024", "01", "02", "??USDT.csv.gz"]);
        assert_eq!(url.as_str(), "http://127.0.0.1:9/datasets/v1/binance/trades/2024/01/02/%3F%3FUSDT.csv.gz");
        let trailing = Url::parse("http://127.0.0.1:9/v1/").expect("valid");
        assert_eq!(
            TardisClient::url(&trailing, &["exchanges", "bitmex"]).as_str(),
            "http://127.0.0.1:9/v1/exchanges/bitmex"
        );
    }

    /// A budget that only counts what the client asks of it.
    #[derive(Debug, Default)]
    struct Recorded {
        acquired: std::sync::atomic::AtomicU32,
        pauses: std::sync::Mutex<Vec<Duration>>,
    }

    #[async_trait::async_trait]
    impl RequestBudget for Recorded {
        async fn acquire(&self) {
            self.acquired.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }

        async fn pause(&self, wait: Duration) {
            self.pauses.lock().expect("not poisoned").push(wait);
        }
    }

    #[tokio::test]
    async fn every_request_draws_on_the_budget_and_only_a_429_pauses_it_for_as_long_as_the_retry_would_wait() {
        use wiremock::matchers::path;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        let once = |template: ResponseTemplate| Mock::given(path("/v1/instruments/bitmex")).respond_with(template);
        once(ResponseTemplate::new(429)).up_to_n_times(1).with_priority(1).mount(&server).await;
        once(ResponseTemplate::new(503)).up_to_n_times(1).with_priority(2).mount(&server).await;
        once(ResponseTemplate::new(200).set_body_string("[]")).with_priority(3).mount(&server).await;
        Mock::given(path("/v1/instruments/deribit"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
            .mount(&server)
            .await;
        let base = Url::parse(&format!("{}/v1", server.uri())).expect("valid");
        let config = TardisConfig {
            datasets_url: base.clone(),
            api_url: base,
            api_key: None,
            concurrency: 1,
            retry: RetryPolicy::FAST,
            export_wait: Duration::ZERO,
            export_poll: Duration::from_millis(10),
            rate_limit: None,
        };
        let budget = Arc::new(Recorded::default());
        let client = TardisClient::new(config).expect("client").with_budget(budget.clone());
        let acquired = || budget.acquired.load(std::sync::atomic::Ordering::SeqCst);

        let bitmex = Exchange::parse("bitmex").expect("valid");
        assert!(client.instruments(&bitmex).await.expect("retried to success").is_empty());
        assert_eq!(acquired(), 3, "429, 503, 200: a token each");
        let pauses = budget.pauses.lock().expect("not poisoned").clone();
        assert_eq!(pauses.len(), 1, "the 503 pauses nothing: {pauses:?}");
        let backoff = RetryPolicy::FAST.base_delay;
        assert!(pauses[0] >= backoff / 2 && pauses[0] <= backoff, "no Retry-After: the backoff, {pauses:?}");

        let deribit = Exchange::parse("deribit").expect("valid");
        let err = client.instruments(&deribit).await.expect_err("a quota-sized wait");
        assert!(matches!(err, TardisError::RateLimited { retry_after_s: 3600, .. }), "{err}");
        assert_eq!(acquired(), 4);
        let last = *budget.pauses.lock().expect("not poisoned").last().expect("paused");
        assert_eq!(last, RetryPolicy::FAST.max_retry_after, "the others wait no longer than a retry would");

        let without = TardisClient::new(client.config().clone()).expect("client");
        assert!(without.instruments(&bitmex).await.expect("no budget, no wait").is_empty());
        assert_eq!(acquired(), 4, "a client without the budget does not draw on it");
    }

    #[test]
    fn api_keys_never_print() {
        let key = ApiKey::new(" secret ").expect("non-empty");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(key.expose(), "secret");
        assert!(ApiKey::new("  ").is_none());
    }
}
