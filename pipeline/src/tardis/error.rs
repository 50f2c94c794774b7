//! Errors of the Tardis client, each saying what went wrong and what to do about it.

use std::path::PathBuf;

use market::{Exchange, Symbol, TradingDay};

#[derive(Debug, thiserror::Error)]
pub enum TardisError {
    #[error(
        "Tardis rejected the request for {url} as unauthenticated (401: {message}); set TARDIS_API_KEY to a valid key (only the first day of each month is free)"
    )]
    Unauthorized { url: String, message: String },
    #[error("Tardis refused access to {url} (403: {message}); the API key's plan does not cover this exchange or date")]
    Forbidden { url: String, message: String },
    #[error("Tardis has nothing at {url} (404: {message}); check the exchange, symbol and date")]
    NotFound { url: String, message: String },
    #[error(
        "Tardis keeps rate-limiting {url}: it asked to wait {retry_after_s} s, more than the {cap_s} s this client waits; the quota is exhausted, retry later"
    )]
    RateLimited { url: String, retry_after_s: u64, cap_s: u64 },
    #[error("Tardis request for {url} still failing after {attempts} attempts: {last}")]
    Exhausted { url: String, attempts: u32, last: String },
    #[error("Tardis answered {status} for {url}: {message}")]
    Status { url: String, status: u16, message: String },
    #[error(
        "{exchange} data for {day} is not exported yet (datasets.exportedUntil is {exported_until}); Tardis publishes a day around 06:00 UTC the next day, retry later"
    )]
    NotYetExported { exchange: Exchange, day: TradingDay, exported_until: String },
    #[error(
        "{symbol} is not a trades dataset of {exchange} on Tardis (not in datasets.symbols of /v1/exchanges/{exchange})"
    )]
    UnknownSymbol { exchange: Exchange, symbol: Symbol },
    #[error("invalid response from {url}: {reason}")]
    InvalidResponse { url: String, reason: String },
    #[error("trades file from {url} is unusable: {reason}")]
    BadFile { url: String, reason: String },
    #[error("failed to write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl TardisError {
    /// Whether the failure is about credentials (the caller should not try other dates either).
    pub fn is_auth(&self) -> bool {
        matches!(self, TardisError::Unauthorized { .. } | TardisError::Forbidden { .. })
    }
}
