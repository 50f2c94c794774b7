//! BigQuery: the tables the pipeline owns, load jobs into date partitions, and reading rows back.
//!
//! Every call (datasets, tables, the multipart media upload of a load job, jobs.get, tabledata.list) is a
//! typed REST request on `reqwest`, with only the fields the pipeline uses (`resources`); tokens come from
//! `yup-oauth2`. The base URL is configurable so the same code runs against Google and against the
//! harness's fake.

mod auth;
mod client;
mod error;
pub mod resources;
mod rows;
pub mod schema;
mod upload;

pub use auth::{AccessToken, BigQueryAuth};
pub use client::{BigQueryClient, BigQueryConfig, LoadOutcome};
pub use error::BigQueryError;
pub use rows::{candle_to_json, candles_from_rows, instrument_to_json, instruments_from_rows};
