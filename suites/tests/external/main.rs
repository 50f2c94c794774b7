//! External pipelines as black boxes: `harness exec` hands a command the fakes, a database and the documented
//! environment and returns its status; `harness run --pipeline-cmd` scores what a command wrote — the Python
//! example on the vendors' official clients, the pandas example (staging tables, MERGE, COUNT(*)), their broken
//! copies, the reference `pipeline` binary, a command that crashes halfway. And `pipeline validate`, as pointed
//! at production, only ever reads BigQuery.
//!
//! The binaries are run as built (`cargo build -p harness -p pipeline`; the test command builds them); the
//! Python examples run on the pinned venv of `scripts/setup-python.sh` and fail, never skip, without it.

mod exec;
mod pipeline_cmd;
mod support;
mod validate;
