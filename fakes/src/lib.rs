//! Loopback stand-ins for the vendors the pipeline talks to, for tests and `harness mocks serve`.
//! Nothing here reaches the network beyond 127.0.0.1, and nothing here knows the pipeline.

pub mod bigquery;
pub mod front;
pub mod tardis;

pub use bigquery::FakeBigQuery;
