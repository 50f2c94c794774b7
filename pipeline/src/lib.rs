//! The reference daily pipeline: download a UTC date of Tardis trades, fetch instruments, build 1-minute
//! candles, load both into BigQuery date partitions, validate what landed, and record the run in Postgres.
//!
//! Pointed at the real Tardis and BigQuery endpoints with real credentials it is a production pipeline;
//! the harness points the same code at loopback fakes. See ARCHITECTURE.md for the crate map.

pub mod backfill;
pub mod bigquery;
pub mod candles;
pub mod cli;
pub mod clock;
pub mod config;
pub mod env;
pub mod hooks;
pub mod metrics;
pub mod preflight;
pub mod report;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod store;
pub mod tardis;
pub mod worker;

pub use clock::{Clock, FixedClock, ManualClock, SystemClock};
pub use config::{Config, ConfigError, Selection};
pub use run::{Pipeline, RunOutcome, SetupError};
