//! The fake BigQuery over real HTTP on loopback: every test starts its own server and talks to it the way the
//! official clients do. One module per resource; `support` holds the shared builders.

mod datasets;
mod faults;
mod insert_all;
mod jobs;
mod loads;
mod protocol;
mod support;
mod tabledata;
mod tables;
