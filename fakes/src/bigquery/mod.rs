//! A fake BigQuery REST v2 server on loopback, built on wiremock: datasets, tables, load jobs by multipart and
//! resumable upload (NDJSON, CSV, Parquet), copy jobs, query jobs (GoogleSQL SELECT, DML and INFORMATION_SCHEMA
//! through `sql/`), jobs.get, jobs.query, getQueryResults, tabledata.list and insertAll, with typed rows in memory
//! and fault injection. It has no Storage Read/Write API.

mod csv_load;
mod dataset;
mod errors;
mod faults;
mod job;
mod load;
mod multipart;
mod paging;
mod parquet_load;
mod query;
mod recording;
mod routes;
mod schema;
mod server;
mod sql;
mod state;
mod table;
mod tabledata;
mod upload;
mod values;
mod wire;

pub use faults::Route;
pub use job::JobSummary;
pub use recording::RecordedRequest;
pub use server::{FakeBigQuery, ROUTE_PRIORITY};
