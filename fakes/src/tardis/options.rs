//! How the mock Tardis behaves: keys, export horizon, quiet files, incident reports, response headers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use market::{Exchange, Symbol, TradingDay};

/// What a quiet file's gzip holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietFile {
    /// A valid gzip of zero bytes: Tardis' documented "no data for that day".
    EmptyGzip,
    /// Only the data type's header line (a variant clients should accept too).
    HeaderOnly,
}

/// `incidentReports[].status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentStatus {
    Resolved,
    Wontfix,
    Unresolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Wontfix => "wontfix",
            IncidentStatus::Unresolved => "unresolved",
        }
    }
}

/// One entry of an exchange's `incidentReports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub status: IncidentStatus,
    pub details: String,
}

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct TardisOptions {
    /// The API key the mock accepts (`Authorization: Bearer <key>`).
    pub api_key: String,
    /// Keys that are valid but whose plan covers nothing: they get 403.
    pub keys_without_access: Vec<String>,
    /// `datasets.exportedUntil`: days ending after it are not downloadable yet (404) and the exchange
    /// details say so. Replay mode ignores it and uses the end of the last day on disk per exchange
    /// (`MockTardis::set_exported_until` still overrides both).
    pub exported_until: DateTime<Utc>,
    /// Days before this one are not served (404), e.g. `harness mocks serve --from`.
    pub available_from: Option<TradingDay>,
    /// Files answered with 200 and an empty gzip (or a header only), whatever the data type: a quiet day
    /// of an illiquid symbol or an exchange outage. A quiet symbol is also left out of grouped files.
    pub quiet: BTreeMap<(Exchange, Symbol, TradingDay), QuietFile>,
    /// `incidentReports` of each exchange's details (empty when absent).
    pub incident_reports: BTreeMap<Exchange, Vec<IncidentReport>>,
    /// Send `Content-Encoding: gzip` with dataset files (off by default: Tardis' real header is not
    /// documented, and clients must not rely on it either way).
    pub content_encoding_gzip: bool,
}

impl TardisOptions {
    pub const DEFAULT_KEY: &'static str = "harness-tardis-key";
    pub const KEY_WITHOUT_ACCESS: &'static str = "harness-key-without-access";

    /// Everything up to and including `last_day` is exported.
    pub fn exported_through(last_day: TradingDay) -> TardisOptions {
        TardisOptions {
            api_key: TardisOptions::DEFAULT_KEY.to_owned(),
            keys_without_access: vec![TardisOptions::KEY_WITHOUT_ACCESS.to_owned()],
            exported_until: DateTime::<Utc>::from_timestamp_micros(last_day.end_us())
                .expect("day ends are valid instants"),
            available_from: None,
            quiet: BTreeMap::new(),
            incident_reports: BTreeMap::new(),
            content_encoding_gzip: false,
        }
    }

    /// Declares (exchange, symbol, day) quiet: an empty gzip for every data type.
    pub fn with_quiet(mut self, exchange: Exchange, symbol: Symbol, day: TradingDay) -> TardisOptions {
        self.quiet.insert((exchange, symbol, day), QuietFile::EmptyGzip);
        self
    }

    /// Adds an incident report to an exchange's details.
    pub fn with_incident(mut self, exchange: Exchange, report: IncidentReport) -> TardisOptions {
        self.incident_reports.entry(exchange).or_default().push(report);
        self
    }

    pub(super) fn quiet_file(&self, exchange: &str, symbol: &str, day: TradingDay) -> Option<QuietFile> {
        let exchange = Exchange::parse(exchange).ok()?;
        let symbol = Symbol::parse(symbol).ok().filter(|s| s.as_str() == symbol)?;
        self.quiet.get(&(exchange, symbol, day)).copied()
    }
}
