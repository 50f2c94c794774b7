//! BigQuery: the tables the pipeline owns, load jobs into date partitions, and reading rows back.
//!
//! Datasets, tables, jobs and reads go through `gcp-bigquery-client`; the multipart media upload of a
//! load job is written here on `reqwest`, because that crate has none. Every base URL is configurable so
//! the same code runs against Google and against the harness's fake.

mod auth;
mod client;
mod error;
mod rows;
pub mod schema;
mod upload;

pub use auth::{AccessToken, BigQueryAuth};
pub use client::{BigQueryClient, BigQueryConfig, LoadOutcome};
pub use error::BigQueryError;
pub use rows::{candle_to_json, candles_from_rows, instrument_to_json, instruments_from_rows};
