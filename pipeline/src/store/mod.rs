//! Postgres state: pipeline runs and their stages (migrations embedded from `pipeline/migrations`).
//!
//! The store records what happened; it never decides what to run. All SQL of the pipeline lives here.

mod runs;
mod validations;

pub use runs::{RunCounts, RunRecord, RunStatus, StageRecord, Store, StoreError};
pub use validations::ScorePoint;
