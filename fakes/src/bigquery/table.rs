//! Tables: the resource with its typed rows, partition decorators (`t$20240601`), and `tables.insert`, `get`,
//! `list`, `patch`/`update` and `delete`. It does not implement views, external tables, range partitioning or
//! table expiry; expiration fields are stored and echoed but nothing ever expires.

use std::collections::HashSet;

use serde_json::{Value as Json, json};

use super::errors::ApiError;
use super::paging;
use super::routes::{ApiRequest, Reply};
use super::schema::{Evolution, Schema, TimePartitioning, clustering_json, parse_clustering, validate_clustering};
use super::state::{State, now_ms};
use super::values::{Value, logical_bytes, partition_id};
use super::wire::Obj;

/// A table id as clients write it, possibly with a partition decorator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    pub table: String,
    pub partition: Option<String>,
}

impl TableName {
    pub fn parse(id: &str) -> Result<Self, ApiError> {
        let (table, partition) = match id.split_once('$') {
            Some((table, partition)) => (table, Some(partition.to_owned())),
            None => (id, None),
        };
        let valid = !table.is_empty()
            && table.len() <= 1024
            && table.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && partition.as_deref().is_none_or(|partition| !partition.is_empty());
        if !valid {
            return Err(invalid_table_id(id));
        }
        Ok(Self { table: table.to_owned(), partition })
    }

    /// `t` or `t$20240601`, as BigQuery names a target in messages.
    pub fn display(&self) -> String {
        match &self.partition {
            Some(partition) => format!("{}${partition}", self.table),
            None => self.table.clone(),
        }
    }
}

fn invalid_table_id(id: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid table ID \"{id}\". Table IDs must be alphanumeric (plus underscores) and must be at most 1024 \
         characters long. Also, Table decorators cannot be used."
    ))
}

/// One stored row: typed values in schema order and the partition it lives in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredRow {
    /// `None` for a table without partitioning.
    pub partition: Option<String>,
    pub values: Vec<Value>,
}

impl StoredRow {
    pub fn logical_bytes(&self) -> u64 {
        self.values.iter().map(logical_bytes).sum()
    }
}

/// Rows that arrived through insertAll, reported as `streamingBuffer` like BigQuery does for recent streams.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamingBuffer {
    pub rows: u64,
    pub bytes: u64,
    pub oldest_ms: i64,
}

/// A table and its rows. Deliberately not `Clone`: a table can hold millions of rows.
#[derive(Debug)]
pub(crate) struct Table {
    pub project: String,
    pub dataset: String,
    pub table_id: String,
    pub schema: Schema,
    pub partitioning: Option<TimePartitioning>,
    pub clustering: Option<Vec<String>>,
    pub description: Option<String>,
    pub friendly_name: Option<String>,
    pub labels: Option<Json>,
    pub expiration_ms: Option<i64>,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub etag: String,
    pub rows: Vec<StoredRow>,
    pub streaming: Option<StreamingBuffer>,
    /// insertAll `insertId`s seen, for best-effort dedupe (kept for the table's lifetime).
    pub insert_ids: HashSet<String>,
}

impl Table {
    pub fn new(project: &str, dataset: &str, table_id: &str, schema: Schema, etag: String) -> Self {
        let now = now_ms();
        Self {
            project: project.to_owned(),
            dataset: dataset.to_owned(),
            table_id: table_id.to_owned(),
            schema,
            partitioning: None,
            clustering: None,
            description: None,
            friendly_name: None,
            labels: None,
            expiration_ms: None,
            created_ms: now,
            modified_ms: now,
            etag,
            rows: Vec::new(),
            streaming: None,
            insert_ids: HashSet::new(),
        }
    }

    /// `p:d.t`, as BigQuery writes it in messages and `id`.
    pub fn qualified(&self) -> String {
        format!("{}:{}.{}", self.project, self.dataset, self.table_id)
    }

    /// Rows of the whole table, or of one partition.
    pub fn rows_in<'a>(&'a self, partition: Option<&'a str>) -> impl Iterator<Item = &'a StoredRow> + 'a {
        self.rows.iter().filter(move |row| partition.is_none_or(|wanted| row.partition.as_deref() == Some(wanted)))
    }

    /// The partition a new row belongs to. `ingestion` is the partition id used for ingestion-time tables (a
    /// decorator, or now).
    pub fn partition_for(&self, values: &[Value], ingestion: Option<&str>) -> Option<String> {
        let partitioning = self.partitioning.as_ref()?;
        Some(match &partitioning.field {
            Some(field) => {
                let value = self.schema.index_of(field).and_then(|index| values.get(index)).unwrap_or(&Value::Null);
                partition_id(value, partitioning.unit)
            }
            None => ingestion.map_or_else(
                || chrono::Utc::now().naive_utc().format(partitioning.unit.id_format()).to_string(),
                str::to_owned,
            ),
        })
    }

    /// A decorator must be a well-formed id of this table's partitioning unit.
    pub fn check_decorator(&self, name: &TableName) -> Result<(), String> {
        let Some(partition) = &name.partition else {
            return Ok(());
        };
        let Some(partitioning) = &self.partitioning else {
            return Err(format!("Cannot use partition decorator on non-partitioned table {}", self.qualified()));
        };
        if !partitioning.unit.is_valid_id(partition) {
            return Err(format!(
                "Invalid partition decorator {partition} for table {} partitioned by {}",
                self.qualified(),
                partitioning.unit.name()
            ));
        }
        Ok(())
    }

    fn reference(&self) -> Json {
        self.reference_to(&self.table_id)
    }

    fn reference_to(&self, table_id: &str) -> Json {
        json!({"projectId": self.project, "datasetId": self.dataset, "tableId": table_id})
    }

    /// The Table resource; with `partition`, the resource of that partition (`tables.get` on `t$id`): its counts,
    /// and the decorated id in `id`, `selfLink` and `tableReference`, as BigQuery answers. Clients rely on that
    /// reference: Python's `list_rows("p.d.t$20240601")` reads `{tableReference}/data`, so an undecorated
    /// reference would make it list the whole table.
    pub fn to_json(&self, base_uri: &str, location: &str, partition: Option<&str>) -> Json {
        let (rows, bytes) =
            self.rows_in(partition).fold((0u64, 0u64), |(rows, bytes), row| (rows + 1, bytes + row.logical_bytes()));
        let table_id = match partition {
            Some(partition) => format!("{}${partition}", self.table_id),
            None => self.table_id.clone(),
        };
        let mut body = json!({
            "kind": "bigquery#table",
            "etag": self.etag,
            "id": format!("{}:{}.{table_id}", self.project, self.dataset),
            "selfLink": format!(
                "{base_uri}/bigquery/v2/projects/{}/datasets/{}/tables/{}",
                self.project,
                self.dataset,
                table_id.replace('$', "%24")
            ),
            "tableReference": self.reference_to(&table_id),
            "schema": self.schema.to_json(),
            "numBytes": bytes.to_string(),
            "numLongTermBytes": "0",
            "numRows": rows.to_string(),
            "numTotalLogicalBytes": bytes.to_string(),
            "numActiveLogicalBytes": bytes.to_string(),
            "numLongTermLogicalBytes": "0",
            "creationTime": self.created_ms.to_string(),
            "lastModifiedTime": self.modified_ms.to_string(),
            "type": "TABLE",
            "location": location,
        });
        if let Some(partitioning) = &self.partitioning {
            body["timePartitioning"] = partitioning.to_json();
            if let Some(required) = partitioning.require_partition_filter {
                body["requirePartitionFilter"] = Json::Bool(required);
            }
        }
        if let Some(clustering) = &self.clustering {
            body["clustering"] = clustering_json(clustering);
        }
        if let Some(description) = &self.description {
            body["description"] = Json::String(description.clone());
        }
        if let Some(name) = &self.friendly_name {
            body["friendlyName"] = Json::String(name.clone());
        }
        if let Some(labels) = &self.labels {
            body["labels"] = labels.clone();
        }
        if let Some(expiration) = self.expiration_ms {
            body["expirationTime"] = Json::String(expiration.to_string());
        }
        if let Some(buffer) = self.streaming {
            body["streamingBuffer"] = json!({
                "estimatedRows": buffer.rows.to_string(),
                "estimatedBytes": buffer.bytes.to_string(),
                "oldestEntryTime": buffer.oldest_ms.to_string(),
            });
        }
        body
    }

    fn list_entry(&self) -> Json {
        let mut entry = json!({
            "kind": "bigquery#table",
            "id": self.qualified(),
            "tableReference": self.reference(),
            "type": "TABLE",
            "creationTime": self.created_ms.to_string(),
        });
        if let Some(partitioning) = &self.partitioning {
            entry["timePartitioning"] = partitioning.to_json();
        }
        if let Some(clustering) = &self.clustering {
            entry["clustering"] = clustering_json(clustering);
        }
        entry
    }

    /// Record a data or metadata change.
    pub fn touch(&mut self, etag: String) {
        self.modified_ms = now_ms().max(self.created_ms);
        self.etag = etag;
    }
}

/// Fields a client may set on create and patch besides the schema, read in full before any is applied.
#[derive(Debug, Default)]
struct Descriptive {
    description: Option<String>,
    friendly_name: Option<String>,
    /// `Some(None)` clears the labels (an empty object).
    labels: Option<Option<Json>>,
    expiration_ms: Option<i64>,
}

impl Descriptive {
    fn read(obj: Obj<'_>) -> Result<Self, ApiError> {
        Ok(Self {
            description: obj.str("description")?.map(str::to_owned),
            friendly_name: obj.str("friendlyName")?.map(str::to_owned),
            labels: obj
                .get("labels")
                .map(|labels| labels.as_object().is_some_and(|map| !map.is_empty()).then(|| labels.clone())),
            expiration_ms: obj.i64("expirationTime")?,
        })
    }

    fn apply(self, table: &mut Table) {
        if self.description.is_some() {
            table.description = self.description;
        }
        if self.friendly_name.is_some() {
            table.friendly_name = self.friendly_name;
        }
        if let Some(labels) = self.labels {
            table.labels = labels;
        }
        if self.expiration_ms.is_some() {
            table.expiration_ms = self.expiration_ms;
        }
    }
}

/// Partitioning and clustering of a new table, validated against its schema.
pub(crate) fn layout_from(
    obj: Obj<'_>,
    schema: &Schema,
) -> Result<(Option<TimePartitioning>, Option<Vec<String>>), ApiError> {
    let partitioning = obj.get("timePartitioning").map(TimePartitioning::from_json).transpose()?;
    if let Some(partitioning) = &partitioning {
        partitioning.validate(schema).map_err(ApiError::invalid)?;
    }
    let clustering = obj.get("clustering").map(parse_clustering).transpose()?.filter(|fields| !fields.is_empty());
    if let Some(fields) = &clustering {
        validate_clustering(fields, schema).map_err(ApiError::invalid)?;
    }
    Ok((partitioning, clustering))
}

/// `POST /projects/{p}/datasets/{d}/tables`.
pub(crate) fn insert(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let (project, dataset_id) = (request.param(0), request.param(1));
    let body = request.json()?;
    let obj = Obj::new(&body, "");
    for unsupported in ["view", "materializedView", "externalDataConfiguration", "rangePartitioning"] {
        if obj.has(unsupported) {
            return Err(ApiError::invalid(format!("{unsupported} is not supported by the fake BigQuery")));
        }
    }
    let table_id = obj
        .obj("tableReference")
        .map(|reference| reference.str("tableId"))
        .transpose()?
        .flatten()
        .ok_or_else(|| ApiError::invalid("Required parameter is missing: tableReference.tableId"))?;
    let name = TableName::parse(table_id)?;
    if name.partition.is_some() {
        return Err(invalid_table_id(table_id));
    }
    let schema = obj.get("schema").map(Schema::from_json).transpose()?.unwrap_or_default();
    let (partitioning, clustering) = layout_from(obj, &schema)?;
    let etag = state.fresh_token();
    let dataset = state.dataset_mut(project, dataset_id)?;
    if dataset.tables.contains_key(&name.table) {
        return Err(ApiError::duplicate(&format!("Table {project}:{dataset_id}.{}", name.table)));
    }
    let mut table = Table::new(project, dataset_id, &name.table, schema, etag);
    table.partitioning = partitioning;
    table.clustering = clustering;
    Descriptive::read(obj)?.apply(&mut table);
    let body = table.to_json(&request.base_uri, &dataset.location, None);
    dataset.tables.insert(name.table, table);
    Ok(Reply::json(body))
}

/// `GET /projects/{p}/datasets/{d}/tables/{t}`; with `t$id`, the counts of that partition.
pub(crate) fn get(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let (project, dataset_id) = (request.param(0), request.param(1));
    let name = TableName::parse(request.param(2))?;
    let location = state.dataset(project, dataset_id).map(|dataset| dataset.location.clone()).unwrap_or_default();
    let table = state.table(project, dataset_id, &name.table)?;
    table.check_decorator(&name).map_err(ApiError::invalid)?;
    Ok(Reply::json(table.to_json(&request.base_uri, &location, name.partition.as_deref())))
}

/// `GET /projects/{p}/datasets/{d}/tables`, paged by `maxResults` and `pageToken`; `totalItems` counts them all.
pub(crate) fn list(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let etag = state.fresh_token();
    let dataset = state.dataset(request.param(0), request.param(1))?;
    let total = dataset.tables.len();
    let page = paging::page(request, total)?;
    let tables: Vec<Json> =
        dataset.tables.values().skip(page.items.start).take(page.items.len()).map(Table::list_entry).collect();
    let mut body = json!({"kind": "bigquery#tableList", "etag": etag, "totalItems": total});
    if !tables.is_empty() {
        body["tables"] = Json::Array(tables);
    }
    if let Some(token) = page.next_token {
        body["nextPageToken"] = Json::String(token);
    }
    Ok(Reply::json(body))
}

/// `PATCH` (and `PUT`) `/projects/{p}/datasets/{d}/tables/{t}`: schema additions and relaxations, descriptive
/// fields, clustering, partition expiry. The partitioning scheme itself cannot change.
pub(crate) fn patch(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let (project, dataset_id) = (request.param(0), request.param(1));
    let name = TableName::parse(request.param(2))?;
    let body = request.json()?;
    let obj = Obj::new(&body, "");
    let etag = state.fresh_token();
    let location = state.dataset(project, dataset_id).map(|dataset| dataset.location.clone()).unwrap_or_default();
    let table = state.table_mut(project, dataset_id, &name.table)?;
    // Everything is checked before anything changes, and rows are never copied.
    let schema = match obj.get("schema") {
        Some(schema) => {
            let proposed = Schema::from_json(schema)?;
            let all = Evolution { allow_addition: true, allow_relaxation: true };
            Some(table.schema.evolve(&proposed, &table.qualified(), all).map_err(ApiError::invalid)?)
        }
        None => None,
    };
    let partitioning = match obj.get("timePartitioning") {
        Some(partitioning) => {
            let proposed = TimePartitioning::from_json(partitioning)?;
            if !table.partitioning.as_ref().is_some_and(|current| current.same_scheme(&proposed)) {
                return Err(ApiError::invalid("Cannot change partitioning spec for a table"));
            }
            Some(proposed)
        }
        None => None,
    };
    let clustering = match obj.get("clustering") {
        Some(clustering) => {
            let fields = parse_clustering(clustering)?;
            validate_clustering(&fields, schema.as_ref().unwrap_or(&table.schema)).map_err(ApiError::invalid)?;
            Some((!fields.is_empty()).then_some(fields))
        }
        None => None,
    };
    let descriptive = Descriptive::read(obj)?;
    if let Some(schema) = schema {
        table.schema = schema;
    }
    if partitioning.is_some() {
        table.partitioning = partitioning;
    }
    if let Some(clustering) = clustering {
        table.clustering = clustering;
    }
    descriptive.apply(table);
    table.touch(etag);
    Ok(Reply::json(table.to_json(&request.base_uri, &location, None)))
}

/// `DELETE /projects/{p}/datasets/{d}/tables/{t}`: 204. With `t$id`, deletes only that partition's rows.
pub(crate) fn delete(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let (project, dataset_id) = (request.param(0), request.param(1));
    let name = TableName::parse(request.param(2))?;
    let etag = state.fresh_token();
    let table = state.table_mut(project, dataset_id, &name.table)?;
    match &name.partition {
        Some(partition) => {
            table.check_decorator(&name).map_err(ApiError::invalid)?;
            table.rows.retain(|row| row.partition.as_deref() != Some(partition.as_str()));
            table.touch(etag);
        }
        None => {
            state.dataset_mut(project, dataset_id)?.tables.remove(&name.table);
        }
    }
    Ok(Reply::empty(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorators_split_off_the_table_id() {
        assert_eq!(
            TableName::parse("candles$20240601"),
            Ok(TableName { table: "candles".into(), partition: Some("20240601".into()) })
        );
        assert_eq!(TableName::parse("candles"), Ok(TableName { table: "candles".into(), partition: None }));
        assert!(TableName::parse("bad.name").is_err());
        assert!(TableName::parse("t$").is_err());
    }
}
