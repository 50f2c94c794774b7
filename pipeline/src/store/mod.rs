//! Postgres state: pipeline runs and their stages (migrations embedded from `pipeline/migrations`).
//!
//! The store records what happened; it never decides what to run. All SQL of the pipeline lives here.

mod audit;
mod queue;
mod runs;
mod schedule;
mod session;
mod validations;

pub use audit::BackfillTotals;
pub use queue::{ClaimOptions, Held, Job, JobStatus, Lease, Liveness, MAX_RETRIES, Order, QueueStats};
pub use runs::{RunCounts, RunRecord, RunStatus, StageRecord, Store, StoreError};
pub use schedule::{MigrationState, ScheduledDate, ScheduledStatus, SchedulerLock};
pub use session::SessionLock;
pub use validations::ScorePoint;
