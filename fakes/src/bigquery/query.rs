//! SQL on the wire: a query configuration (`configuration.query` of `jobs.insert`, or a `jobs.query` body)
//! parsed into what the engine needs, a finished query's result kept with its job, and the pages of
//! `jobs.query` and `jobs.getQueryResults` (`maxResults`, `pageToken`, `startIndex`, both timestamp encodings).
//! The statements themselves run in `sql/`; jobs and tables are `job.rs`'s.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Value as Json, json};

use super::errors::ApiError;
use super::schema::{Field, Schema};
use super::sql::{Parameter, StatementType, parse_parameters};
use super::values::{TimestampFormat, Value, logical_bytes, record_cells};
use super::wire::Obj;

/// Rows per page when the client sets no `maxResults`, and the response size BigQuery stays under.
const DEFAULT_PAGE_ROWS: usize = 100_000;
const PAGE_BYTE_BUDGET: u64 = 10 * 1024 * 1024;

/// A table a query writes its result to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    pub project: String,
    pub dataset: String,
    pub table: String,
}

/// A query as the engine and the job runner need it.
#[derive(Debug, Clone)]
pub(crate) struct QueryConfig {
    pub sql: String,
    pub default_dataset: Option<(String, String)>,
    pub parameters: Vec<Parameter>,
    pub destination: Option<Destination>,
    /// `WRITE_EMPTY` (BigQuery's default for query results), `WRITE_TRUNCATE` or `WRITE_APPEND`.
    pub write_disposition: String,
    pub create_never: bool,
    pub dry_run: bool,
}

fn invalid_query(message: impl Into<String>) -> ApiError {
    ApiError::new("invalidQuery", message)
}

/// Parses `configuration.query` or a `jobs.query` body. Legacy SQL is refused: REST defaults to it, but every
/// official client sends `useLegacySql: false`.
pub(crate) fn parse_config(query: Obj<'_>, project: &str, dry_run: bool) -> Result<QueryConfig, ApiError> {
    let sql = query
        .str("query")?
        .filter(|sql| !sql.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("Required parameter is missing: query"))?;
    if query.bool("useLegacySql")?.unwrap_or(true) {
        return Err(invalid_query(
            "Legacy SQL is not supported by the fake BigQuery: set useLegacySql to false (the official clients do)",
        ));
    }
    let default_dataset = match query.obj("defaultDataset") {
        Some(dataset) => Some((
            dataset.str("projectId")?.unwrap_or(project).to_owned(),
            dataset
                .str("datasetId")?
                .ok_or_else(|| ApiError::invalid("Required parameter is missing: defaultDataset.datasetId"))?
                .to_owned(),
        )),
        None => None,
    };
    let destination = match query.obj("destinationTable") {
        Some(table) => Some(Destination {
            project: table.str("projectId")?.unwrap_or(project).to_owned(),
            dataset: table
                .str("datasetId")?
                .ok_or_else(|| ApiError::invalid("Required parameter is missing: destinationTable.datasetId"))?
                .to_owned(),
            table: table
                .str("tableId")?
                .ok_or_else(|| ApiError::invalid("Required parameter is missing: destinationTable.tableId"))?
                .to_owned(),
        }),
        None => None,
    };
    let write_disposition = match query.enum_value("writeDisposition")?.as_deref() {
        None => "WRITE_EMPTY".to_owned(),
        Some(value @ ("WRITE_EMPTY" | "WRITE_APPEND" | "WRITE_TRUNCATE")) => value.to_owned(),
        Some(other) => return Err(ApiError::invalid(format!("Invalid value for writeDisposition: {other}"))),
    };
    let create_never = match query.enum_value("createDisposition")?.as_deref() {
        None | Some("CREATE_IF_NEEDED") => false,
        Some("CREATE_NEVER") => true,
        Some(other) => return Err(ApiError::invalid(format!("Invalid value for createDisposition: {other}"))),
    };
    Ok(QueryConfig {
        sql: sql.to_owned(),
        default_dataset,
        parameters: parse_parameters(query)?,
        destination,
        write_disposition,
        create_never,
        dry_run,
    })
}

/// A finished query: its rows (none for DML) and the numbers its job reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryResult {
    pub statement: StatementType,
    pub fields: Vec<Field>,
    pub rows: Vec<Vec<Value>>,
    /// Inserted, updated and deleted rows of a DML statement.
    pub dml: Option<(u64, u64, u64)>,
    pub bytes_processed: u64,
    pub destination: Option<Destination>,
}

impl QueryResult {
    /// Rows returned, or rows a DML statement changed.
    pub fn output_rows(&self) -> u64 {
        self.affected().unwrap_or(self.rows.len() as u64)
    }

    fn affected(&self) -> Option<u64> {
        self.dml.map(|(inserted, updated, deleted)| inserted + updated + deleted)
    }

    fn dml_stats(&self) -> Option<Json> {
        self.dml.map(|(inserted, updated, deleted)| {
            json!({
                "insertedRowCount": inserted.to_string(),
                "updatedRowCount": updated.to_string(),
                "deletedRowCount": deleted.to_string(),
            })
        })
    }

    fn schema(&self) -> Json {
        Schema { fields: self.fields.clone() }.to_json()
    }

    /// `statistics.query` of the job.
    pub fn statistics(&self) -> Json {
        let bytes = self.bytes_processed.to_string();
        let mut statistics = json!({
            "totalBytesProcessed": bytes,
            "totalBytesBilled": bytes,
            "totalSlotMs": "0",
            "cacheHit": false,
            "statementType": self.statement.name(),
            "billingTier": 1,
        });
        if let Some(affected) = self.affected() {
            statistics["numDmlAffectedRows"] = Json::String(affected.to_string());
            statistics["dmlStats"] = self.dml_stats().unwrap_or(Json::Null);
        } else {
            statistics["schema"] = self.schema();
        }
        statistics
    }

    /// The numbers a `jobs.query` or `getQueryResults` answer carries besides the rows.
    fn annotate(&self, body: &mut Json) {
        body["totalBytesProcessed"] = Json::String(self.bytes_processed.to_string());
        body["cacheHit"] = Json::Bool(false);
        if let Some(affected) = self.affected() {
            body["numDmlAffectedRows"] = Json::String(affected.to_string());
            body["dmlStats"] = self.dml_stats().unwrap_or(Json::Null);
        }
    }
}

/// Which rows a page holds and how they are written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRequest {
    pub max_results: Option<u64>,
    pub start: usize,
    pub timestamps: TimestampFormat,
}

/// Page tokens carry the next row offset and are only valid for the job that issued them.
fn token_check(job_id: &str, offset: usize) -> u32 {
    let mut hasher = DefaultHasher::new();
    (job_id, offset, "query").hash(&mut hasher);
    (hasher.finish() & 0xffff_ffff) as u32
}

fn page_token(job_id: &str, offset: usize) -> String {
    format!("Q{offset:x}Z{:08x}", token_check(job_id, offset))
}

/// The offset a `pageToken` (or else `startIndex`) names.
pub(crate) fn start_of(job_id: &str, token: Option<&str>, start_index: Option<u64>) -> Result<usize, ApiError> {
    match token.filter(|token| !token.is_empty()) {
        Some(token) => {
            let parsed = token
                .strip_prefix('Q')
                .and_then(|rest| rest.split_once('Z'))
                .and_then(|(offset, check)| {
                    Some((usize::from_str_radix(offset, 16).ok()?, u32::from_str_radix(check, 16).ok()?))
                })
                .filter(|(offset, check)| *check == token_check(job_id, *offset));
            parsed.map(|(offset, _)| offset).ok_or_else(|| ApiError::invalid(format!("Invalid page token: {token}")))
        }
        None => Ok(usize::try_from(start_index.unwrap_or(0)).unwrap_or(usize::MAX)),
    }
}

/// A `jobs.query` or `getQueryResults` answer for a finished query: `schema`, `totalRows`, the page's `rows`
/// (none when `maxResults` is 0, as the clients expect) and `pageToken` only when rows remain.
pub(crate) fn results_body(
    kind: &str,
    job_reference: &Json,
    job_id: &str,
    result: &QueryResult,
    page: PageRequest,
) -> Json {
    let total = result.rows.len();
    let mut body = json!({
        "kind": kind,
        "jobReference": job_reference,
        "jobComplete": true,
        "totalRows": total.to_string(),
        "schema": result.schema(),
    });
    result.annotate(&mut body);
    let limit = page.max_results.map_or(DEFAULT_PAGE_ROWS, |max| usize::try_from(max).unwrap_or(usize::MAX));
    let mut rows = Vec::new();
    let mut bytes = 0u64;
    for row in result.rows.iter().skip(page.start) {
        if rows.len() >= limit || (bytes >= PAGE_BYTE_BUDGET && !rows.is_empty()) {
            break;
        }
        bytes += row.iter().map(logical_bytes).sum::<u64>() + 8 * row.len() as u64;
        rows.push(json!({"f": record_cells(row, &result.fields, page.timestamps)}));
    }
    let next = page.start.saturating_add(rows.len());
    if next < total && limit > 0 {
        body["pageToken"] = Json::String(page_token(job_id, next));
    }
    if !rows.is_empty() {
        body["rows"] = Json::Array(rows);
    }
    body
}

/// The answer while the job still runs: no schema, rows or totals.
pub(crate) fn pending_body(kind: &str, job_reference: &Json) -> Json {
    json!({"kind": kind, "jobReference": job_reference, "jobComplete": false})
}
