//! Starting the mock Tardis, its options, and the request log tests read.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use fixtures::Generator;
use market::TradingDay;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer};

use super::responders::{DatasetsResponder, ExchangesResponder, InstrumentsResponder, NotFoundResponder};

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct TardisOptions {
    /// The API key the mock accepts (`Authorization: Bearer <key>`).
    pub api_key: String,
    /// Keys that are valid but whose plan covers nothing: they get 403.
    pub keys_without_access: Vec<String>,
    /// `datasets.exportedUntil`: days ending after it are not downloadable yet (404) and the exchange
    /// details say so.
    pub exported_until: DateTime<Utc>,
    /// Days before this one are not served (404), e.g. `harness mocks serve --from`.
    pub available_from: Option<TradingDay>,
}

impl TardisOptions {
    pub const DEFAULT_KEY: &'static str = "harness-tardis-key";

    /// Everything up to and including `last_day` is exported.
    pub fn exported_through(last_day: TradingDay) -> TardisOptions {
        TardisOptions {
            api_key: TardisOptions::DEFAULT_KEY.to_owned(),
            keys_without_access: vec!["harness-key-without-access".to_owned()],
            exported_until: DateTime::<Utc>::from_timestamp_micros(last_day.end_us())
                .expect("day ends are valid instants"),
            available_from: None,
        }
    }
}

/// One request the mock answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TardisRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The raw `Authorization` header, if any.
    pub authorization: Option<String>,
    pub status: u16,
}

pub(super) struct State {
    pub(super) generator: Arc<Generator>,
    pub(super) options: TardisOptions,
    pub(super) log: Vec<TardisRequest>,
}

pub(super) type Shared = Arc<Mutex<State>>;

pub(super) fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    // A panicking responder must not wedge every later request.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running mock Tardis.
pub struct MockTardis {
    server: MockServer,
    state: Shared,
}

impl std::fmt::Debug for MockTardis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockTardis").field("uri", &self.server.uri()).finish_non_exhaustive()
    }
}

impl MockTardis {
    /// Starts on a random loopback port.
    pub async fn start(generator: Arc<Generator>, options: TardisOptions) -> MockTardis {
        let server = MockServer::builder().disable_request_recording().start().await;
        MockTardis::mount(server, generator, options).await
    }

    /// Starts on `listener` (for `harness mocks serve --port-tardis`).
    pub async fn start_on(
        listener: std::net::TcpListener,
        generator: Arc<Generator>,
        options: TardisOptions,
    ) -> MockTardis {
        let server = MockServer::builder().listener(listener).disable_request_recording().start().await;
        MockTardis::mount(server, generator, options).await
    }

    async fn mount(server: MockServer, generator: Arc<Generator>, options: TardisOptions) -> MockTardis {
        let state: Shared = Arc::new(Mutex::new(State { generator, options, log: Vec::new() }));
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/[^/]+/[^/]+/\d{4}/\d{2}/\d{2}/[^/]+$"))
            .respond_with(DatasetsResponder(state.clone()))
            .with_priority(10)
            .named("datasets")
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/exchanges(/[^/]+)?/?$"))
            .respond_with(ExchangesResponder(state.clone()))
            .with_priority(10)
            .named("exchanges")
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/instruments/[^/]+(/[^/]+)?/?$"))
            .respond_with(InstrumentsResponder(state.clone()))
            .with_priority(10)
            .named("instruments")
            .mount(&server)
            .await;
        Mock::given(wiremock::matchers::any())
            .respond_with(NotFoundResponder(state.clone()))
            .with_priority(255)
            .named("not found")
            .mount(&server)
            .await;
        MockTardis { server, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The value for `TARDIS_DATASETS_URL`.
    pub fn datasets_url(&self) -> String {
        format!("{}/v1", self.server.uri())
    }

    /// The value for `TARDIS_API_URL`.
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.server.uri())
    }

    pub fn api_key(&self) -> String {
        lock(&self.state).options.api_key.clone()
    }

    /// The wiremock server, for tests that mount fault mocks over the normal routes (priority < 10).
    pub fn server(&self) -> &MockServer {
        &self.server
    }

    pub fn requests(&self) -> Vec<TardisRequest> {
        lock(&self.state).log.clone()
    }

    pub fn set_exported_until(&self, until: DateTime<Utc>) {
        lock(&self.state).options.exported_until = until;
    }

    pub fn generator(&self) -> Arc<Generator> {
        lock(&self.state).generator.clone()
    }
}
