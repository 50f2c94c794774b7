//! Row access over HTTP: `tabledata.list` (paging, `selectedFields`, both timestamp encodings) and
//! `tabledata.insertAll` (streaming inserts with per-row errors and insertId dedupe). It does not filter or
//! sort rows; rows come back in insertion order (SQL is `sql/`'s).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Value as Json, json};

use super::errors::ApiError;
use super::routes::{ApiRequest, Reply};
use super::schema::Field;
use super::state::{State, now_ms};
use super::table::{StoredRow, StreamingBuffer, Table, TableName};
use super::values::{TimestampFormat, Value, cell, parse_row};
use super::wire::Obj;

/// Rows per page when the client sets no `maxResults`.
const DEFAULT_PAGE_ROWS: usize = 100_000;
/// Roughly BigQuery's 10 MB response budget, measured in logical bytes plus per-cell overhead.
const PAGE_BYTE_BUDGET: u64 = 10 * 1024 * 1024;
/// insertAll's documented request limit.
const INSERT_ALL_LIMIT: usize = 10 * 1024 * 1024;

/// Opaque page tokens that carry the next row offset and are only valid for the table that issued them.
fn page_token(table: &Table, offset: usize) -> String {
    format!("BQ{offset:x}Z{:08x}", token_check(table, offset))
}

fn token_check(table: &Table, offset: usize) -> u32 {
    let mut hasher = DefaultHasher::new();
    (table.qualified(), table.created_ms, offset).hash(&mut hasher);
    (hasher.finish() & 0xffff_ffff) as u32
}

fn parse_page_token(table: &Table, token: &str) -> Option<usize> {
    let (offset, check) = token.strip_prefix("BQ")?.split_once('Z')?;
    let offset = usize::from_str_radix(offset, 16).ok()?;
    (u32::from_str_radix(check, 16).ok()? == token_check(table, offset)).then_some(offset)
}

/// Indices of the `selectedFields` columns, in table order (BigQuery ignores the order of the selection).
fn selected_columns(fields: &[Field], selection: Option<&str>) -> Result<Vec<usize>, ApiError> {
    let Some(selection) = selection.filter(|selection| !selection.trim().is_empty()) else {
        return Ok((0..fields.len()).collect());
    };
    let mut indices = Vec::new();
    for name in selection.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let top = name.split('.').next().unwrap_or(name);
        let index = super::schema::index_of(fields, top).ok_or_else(|| {
            ApiError::invalid(format!("Invalid field selection {name}: no such field in the table schema"))
        })?;
        indices.push(index);
    }
    indices.sort_unstable();
    indices.dedup();
    Ok(indices)
}

/// `GET /projects/{p}/datasets/{d}/tables/{t}/data`, also for a decorated `t$20240601`.
pub(crate) fn list(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let name = TableName::parse(request.param(2))?;
    let timestamps = if request.query_bool("formatOptions.useInt64Timestamp")? {
        TimestampFormat::Int64Micros
    } else {
        TimestampFormat::FloatSeconds
    };
    let max_results = request.query_u64("maxResults")?;
    let start_index = request.query_u64("startIndex")?;
    let etag = state.fresh_token();
    let table = state.table(request.param(0), request.param(1), &name.table)?;
    table.check_decorator(&name).map_err(ApiError::invalid)?;
    let columns = selected_columns(&table.schema.fields, request.query("selectedFields"))?;
    let start = match request.query("pageToken").filter(|token| !token.is_empty()) {
        Some(token) => {
            parse_page_token(table, token).ok_or_else(|| ApiError::invalid(format!("Invalid page token: {token}")))?
        }
        None => usize::try_from(start_index.unwrap_or(0)).unwrap_or(usize::MAX),
    };
    let limit = max_results.map_or(DEFAULT_PAGE_ROWS, |max| usize::try_from(max).unwrap_or(usize::MAX));
    let total = table.rows_in(name.partition.as_deref()).count();
    let mut rows = Vec::new();
    let mut bytes = 0u64;
    for row in table.rows_in(name.partition.as_deref()).skip(start) {
        if rows.len() >= limit || (bytes >= PAGE_BYTE_BUDGET && !rows.is_empty()) {
            break;
        }
        bytes += row.logical_bytes() + 8 * columns.len() as u64;
        rows.push(encode_row(row, &table.schema.fields, &columns, timestamps));
    }
    let next = start.saturating_add(rows.len());
    let mut body = json!({"kind": "bigquery#tableDataList", "etag": etag, "totalRows": total.to_string()});
    if next < total && limit > 0 {
        body["pageToken"] = Json::String(page_token(table, next));
    }
    if !rows.is_empty() {
        body["rows"] = Json::Array(rows);
    }
    Ok(Reply::json(body))
}

fn encode_row(row: &StoredRow, fields: &[Field], columns: &[usize], timestamps: TimestampFormat) -> Json {
    let cells: Vec<Json> = columns
        .iter()
        .map(|&index| cell(row.values.get(index).unwrap_or(&Value::Null), &fields[index], timestamps))
        .collect();
    json!({"f": cells})
}

fn row_error(reason: &str, location: &str, message: &str) -> Json {
    json!({"reason": reason, "location": location, "debugInfo": "", "message": message})
}

/// `POST /projects/{p}/datasets/{d}/tables/{t}/insertAll`: all rows or none unless `skipInvalidRows`; rows that
/// were fine but not inserted get reason `stopped`.
pub(crate) fn insert_all(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    if request.body.len() > INSERT_ALL_LIMIT {
        return Err(ApiError::invalid(format!("Request payload size exceeds the limit: {INSERT_ALL_LIMIT} bytes.")));
    }
    let body = request.json()?;
    let obj = Obj::new(&body, "");
    if obj.has("templateSuffix") {
        return Err(ApiError::invalid("templateSuffix is not supported by the fake BigQuery"));
    }
    let skip_invalid = obj.bool("skipInvalidRows")?.unwrap_or(false);
    let ignore_unknown = obj.bool("ignoreUnknownValues")?.unwrap_or(false);
    let items = obj.array("rows")?;
    let name = TableName::parse(request.param(2))?;
    let etag = state.fresh_token();
    let table = state.table_mut(request.param(0), request.param(1), &name.table)?;
    table.check_decorator(&name).map_err(ApiError::invalid)?;
    if items.is_empty() {
        return Err(ApiError::invalid("No rows present in the request."));
    }

    let mut accepted: Vec<(Option<String>, StoredRow)> = Vec::with_capacity(items.len());
    let mut errors: Vec<(usize, Json)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let row = Obj::new(item, "rows");
        let insert_id = row.str("insertId")?.map(str::to_owned);
        let Some(Json::Object(object)) = row.get("json") else {
            errors.push((index, row_error("invalid", "", "Missing row content (json).")));
            continue;
        };
        match parse_row(object, &table.schema.fields, ignore_unknown) {
            Err(error) => errors.push((index, row_error("invalid", &error.location, &error.message))),
            Ok(values) => {
                let partition = table.partition_for(&values, name.partition.as_deref());
                match (&name.partition, &partition) {
                    (Some(wanted), Some(actual)) if wanted != actual => errors.push((
                        index,
                        row_error(
                            "invalid",
                            "",
                            &format!("The row belongs to partition {actual} rather than {wanted}."),
                        ),
                    )),
                    _ => accepted.push((insert_id, StoredRow { partition, values })),
                }
            }
        }
    }

    let mut reply = json!({"kind": "bigquery#tableDataInsertAllResponse"});
    if !errors.is_empty() && !skip_invalid {
        let failed: Vec<usize> = errors.iter().map(|(index, _)| *index).collect();
        let mut all: Vec<(usize, Json)> = errors;
        all.extend(
            (0..items.len()).filter(|index| !failed.contains(index)).map(|index| (index, row_error("stopped", "", ""))),
        );
        all.sort_by_key(|(index, _)| *index);
        reply["insertErrors"] = insert_errors(all);
        return Ok(Reply::json(reply));
    }

    let mut inserted = 0u64;
    let mut inserted_bytes = 0u64;
    for (insert_id, row) in accepted {
        if let Some(insert_id) = insert_id
            && !table.insert_ids.insert(insert_id)
        {
            continue;
        }
        inserted += 1;
        inserted_bytes += row.logical_bytes();
        table.rows.push(row);
    }
    if inserted > 0 {
        let buffer = table.streaming.get_or_insert(StreamingBuffer { rows: 0, bytes: 0, oldest_ms: now_ms() });
        buffer.rows += inserted;
        buffer.bytes += inserted_bytes;
        table.touch(etag);
    }
    if !errors.is_empty() {
        reply["insertErrors"] = insert_errors(errors);
    }
    Ok(Reply::json(reply))
}

fn insert_errors(errors: Vec<(usize, Json)>) -> Json {
    Json::Array(errors.into_iter().map(|(index, error)| json!({"index": index, "errors": [error]})).collect())
}
