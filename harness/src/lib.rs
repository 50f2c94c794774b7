//! The harness: drives the pipeline against a mock Tardis, a fake BigQuery and a provisioned Postgres,
//! and scores what landed against the generator's ground truth.

pub mod cli;
pub mod contract;
pub mod coverage;
pub mod crash;
pub mod defects;
pub mod diagnosis;
pub mod environment;
pub mod external;
pub mod faults;
pub mod load;
pub mod mocks;
pub mod nightly;
pub mod notify;
pub mod postgres;
pub mod recovery;
pub mod report;
pub mod run;
pub mod scenario;
pub mod scoring;
pub mod slack;
pub mod world;

pub use postgres::{Backend, PostgresServer, TestDatabase};
pub use world::{World, WorldOptions};
