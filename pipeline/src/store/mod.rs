//! Postgres state: pipeline runs and their stages (migrations embedded from `pipeline/migrations`), and the
//! Tardis request budget every process on the database shares (`budget.rs`).
//!
//! The store records what happened; it never decides what to run. All SQL of the pipeline lives here.

mod audit;
mod budget;
mod queue;
mod runs;
mod schedule;
mod session;
mod validations;

pub use audit::{BackfillRecord, BackfillTotals, CancelOutcome, CancelTarget, InFlight};
pub use budget::{BucketRate, SharedBudget, Take};
pub use queue::{
    Beat, ClaimOptions, DateCounts, Held, Job, JobStatus, Lane, Lanes, Lease, Liveness, MAX_RETRIES, Order, QueueStats,
};
pub use runs::{RunCounts, RunRecord, RunStatus, StageRecord, Store, StoreError};
pub use schedule::{MigrationState, ScheduledDate, ScheduledStatus, SchedulerLock};
pub use session::SessionLock;
pub use validations::ScorePoint;
