//! SQL: `jobs.query`, `jobs.getQueryResults` and query jobs. The fake has no SQL engine (a design non-goal), so
//! these answer 400 `invalidQuery` with a message that says what the fake does support.

use super::errors::ApiError;

/// The answer to every SQL call.
pub(crate) fn unsupported() -> ApiError {
    ApiError::new(
        "invalidQuery",
        "The fake BigQuery does not run SQL. It supports datasets, tables, NDJSON, CSV and Parquet load jobs by multipart \
         or resumable upload, copy jobs, jobs.get, tabledata.list and tabledata.insertAll; read rows with \
         tabledata.list instead.",
    )
}
