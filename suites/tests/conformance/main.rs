//! Conformance: the vendors' own clients work against our fakes unchanged. The official Python `tardis-dev`
//! package against the mock Tardis; Google's `google-cloud-bigquery` Python client, Google's
//! `@google-cloud/bigquery` Node client and the pipeline's Rust `gcp-bigquery-client` against the fake BigQuery.
//! Each test starts its own fakes, drives one client through a scenario, and checks both what the client saw and
//! what the fake stored and logged.
//!
//! The Python clients come from the pinned venv `scripts/setup-python.sh` builds, the Node client from the pinned
//! lockfile `scripts/setup-node.sh` installs (scripts/test.sh runs both); without them these tests fail and say
//! so, they never skip.

mod candles;
mod node;
mod node_bigquery;
mod python;
mod python_bigquery;
mod python_tardis;
mod rust_bigquery;
