//! Tardis.dev: the datasets API (daily gzip CSV files) and the metadata API (exchanges, instruments).
//!
//! The client retries what Tardis documents as transient (5xx, 429 with `Retry-After`, network errors,
//! a truncated or corrupt gzip body) and never retries 401/403/404. It never turns a failure into an
//! empty day. Every request first draws on the client's [`RequestBudget`], when it has one (`budget.rs`).

mod budget;
mod client;
mod download;
mod error;
pub mod trades_csv;
pub mod wire;

pub use budget::RequestBudget;
pub use client::{ApiKey, TardisClient, TardisConfig};
pub use download::{DownloadedFile, FileRead, Pass, downloaded, inspect, read_file, trades_path, whole};
pub use error::TardisError;
