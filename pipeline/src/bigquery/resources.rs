//! The BigQuery REST v2 resources the pipeline sends and reads, with only the fields it uses: a dataset to
//! create, a table (schema, DAY partitioning, clustering), a job's status and load statistics, a
//! `tabledata.list` page and BigQuery's error body. Fields BigQuery adds that are not named here are ignored,
//! so a newer API answer still decodes. It does not know any endpoint: `client.rs` does.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The dataset `datasets.insert` creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    pub dataset_reference: DatasetReference,
    pub location: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetReference {
    pub project_id: String,
    pub dataset_id: String,
}

/// A table: what `tables.insert` creates and what `tables.get` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    pub table_reference: TableReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Absent on a table created without columns.
    #[serde(default)]
    pub schema: TableSchema,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_partitioning: Option<TimePartitioning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clustering: Option<Clustering>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableReference {
    pub project_id: String,
    pub dataset_id: String,
    pub table_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    /// BigQuery leaves `fields` out of an empty schema.
    #[serde(default)]
    pub fields: Vec<TableFieldSchema>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFieldSchema {
    pub name: String,
    /// The type as BigQuery spells it: the legacy names (`INTEGER`, `FLOAT`) in answers, either spelling
    /// (`INT64`, `FLOAT64`) accepted in requests. Kept as text so that a column of a type this pipeline
    /// never writes (`NUMERIC`, `JSON`) still decodes and is reported by name.
    #[serde(rename = "type")]
    pub field_type: String,
    /// `REQUIRED`, `NULLABLE` or `REPEATED`; BigQuery treats an absent mode as `NULLABLE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimePartitioning {
    /// `DAY` for every table of this pipeline.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clustering {
    pub fields: Vec<String>,
}

/// What `jobs.get` answers about a job, as far as the pipeline reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(default)]
    pub status: JobStatus,
    #[serde(default)]
    pub statistics: JobStatistics,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// `PENDING`, `RUNNING` or `DONE`.
    #[serde(default)]
    pub state: String,
    /// Set when a finished job failed; the job is DONE all the same.
    #[serde(default)]
    pub error_result: Option<ErrorProto>,
}

/// One of BigQuery's error items (`errorResult`, `error.errors[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorProto {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct JobStatistics {
    #[serde(default)]
    pub load: Option<LoadStatistics>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadStatistics {
    /// An int64, which BigQuery sends as a JSON string.
    #[serde(default)]
    pub output_rows: Option<String>,
}

/// One page of `tabledata.list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableDataList {
    /// Rows in the whole table or partition (an int64 as a JSON string), not in this page.
    #[serde(default)]
    pub total_rows: Option<String>,
    /// Present while further pages follow.
    #[serde(default)]
    pub page_token: Option<String>,
    /// Absent on an empty page.
    #[serde(default)]
    pub rows: Vec<TableRow>,
}

/// A row of `tabledata.list`: its cells in schema order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TableRow {
    #[serde(default)]
    pub f: Vec<TableCell>,
}

/// A cell: every scalar as a JSON string, or null.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TableCell {
    #[serde(default)]
    pub v: Value,
}

/// The body of a failed call: `{"error": {"code", "message", "errors": [{"reason", ...}]}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(super) struct ErrorDetail {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<ErrorProto>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_job_decodes_its_state_error_result_and_output_rows_and_ignores_the_rest() {
        let job: Job = serde_json::from_value(json!({
            "kind": "bigquery#job",
            "jobReference": {"projectId": "p", "jobId": "j", "location": "US"},
            "status": {"state": "DONE", "errorResult": {"reason": "backendError", "message": "m", "location": "x"},
                       "errors": [{"reason": "backendError", "message": "m"}]},
            "statistics": {"creationTime": "1", "load": {"outputRows": "42", "badRecords": "0"}},
        }))
        .expect("a job");
        assert_eq!(job.status.state, "DONE");
        let error = job.status.error_result.expect("an error result");
        assert_eq!((error.reason.as_str(), error.message.as_str()), ("backendError", "m"));
        assert_eq!(job.statistics.load.and_then(|l| l.output_rows).as_deref(), Some("42"));

        let running: Job = serde_json::from_value(json!({"status": {"state": "RUNNING"}})).expect("a job");
        assert_eq!((running.status.state.as_str(), running.status.error_result), ("RUNNING", None));
        assert_eq!(running.statistics.load, None);
    }

    #[test]
    fn a_table_page_decodes_string_and_null_cells_and_an_empty_page_has_no_rows() {
        let page: TableDataList = serde_json::from_value(json!({
            "kind": "bigquery#tableDataList", "totalRows": "3", "pageToken": "2",
            "rows": [{"f": [{"v": "bitmex"}, {"v": null}]}],
        }))
        .expect("a page");
        assert_eq!((page.total_rows.as_deref(), page.page_token.as_deref()), (Some("3"), Some("2")));
        let cells: Vec<&Value> = page.rows[0].f.iter().map(|c| &c.v).collect();
        assert_eq!(cells, [&json!("bitmex"), &Value::Null]);
        let empty: TableDataList = serde_json::from_value(json!({"totalRows": "0"})).expect("a page");
        assert!(empty.rows.is_empty() && empty.page_token.is_none());
    }

    #[test]
    fn a_table_is_sent_without_absent_options_and_read_back_with_any_column_type() {
        let table = Table {
            table_reference: TableReference {
                project_id: "p".to_owned(),
                dataset_id: "d".to_owned(),
                table_id: "t".to_owned(),
            },
            description: None,
            schema: TableSchema {
                fields: vec![TableFieldSchema {
                    name: "a".to_owned(),
                    field_type: "STRING".to_owned(),
                    mode: None,
                    description: None,
                }],
            },
            time_partitioning: None,
            clustering: None,
        };
        assert_eq!(
            serde_json::to_value(&table).expect("json"),
            json!({"tableReference": {"projectId": "p", "datasetId": "d", "tableId": "t"},
                   "schema": {"fields": [{"name": "a", "type": "STRING"}]}})
        );
        let read: Table = serde_json::from_value(json!({
            "tableReference": {"projectId": "p", "datasetId": "d", "tableId": "t"},
            "schema": {"fields": [{"name": "n", "type": "NUMERIC", "mode": "NULLABLE"}]},
            "timePartitioning": {"type": "DAY", "field": "n"}, "numRows": "0",
        }))
        .expect("a table");
        assert_eq!(read.schema.fields[0].field_type, "NUMERIC");
        assert_eq!(read.time_partitioning.and_then(|p| p.field).as_deref(), Some("n"));
        let bare: Table = serde_json::from_value(json!({
            "tableReference": {"projectId": "p", "datasetId": "d", "tableId": "t"},
        }))
        .expect("a table without a schema");
        assert!(bare.schema.fields.is_empty());
    }

    #[test]
    fn an_error_body_gives_its_message_and_first_reason() {
        let body: ErrorBody = serde_json::from_value(json!({"error": {"code": 404, "message": "Not found: t",
            "status": "NOT_FOUND", "errors": [{"reason": "notFound", "message": "Not found: t", "domain": "global"}]}}))
        .expect("an error body");
        assert_eq!(body.error.message, "Not found: t");
        assert_eq!(body.error.errors[0].reason, "notFound");
    }
}
