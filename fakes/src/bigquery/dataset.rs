//! Datasets: the resource, and `datasets.insert`, `get`, `list` and `delete`. It does not implement access
//! control lists, dataset patching or default encryption; those fields are neither stored nor echoed.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::errors::ApiError;
use super::paging;
use super::routes::{ApiRequest, Reply};
use super::state::{State, now_ms};
use super::table::Table;
use super::wire::Obj;

#[derive(Debug)]
pub(crate) struct Dataset {
    pub project: String,
    pub dataset_id: String,
    pub location: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub etag: String,
    pub description: Option<String>,
    pub friendly_name: Option<String>,
    pub labels: Option<Json>,
    pub default_table_expiration_ms: Option<i64>,
    /// Keyed by table id (case-sensitive, as in BigQuery).
    pub tables: BTreeMap<String, Table>,
}

impl Dataset {
    fn reference(&self) -> Json {
        json!({"projectId": self.project, "datasetId": self.dataset_id})
    }

    fn id(&self) -> String {
        format!("{}:{}", self.project, self.dataset_id)
    }

    fn to_json(&self, base_uri: &str) -> Json {
        let mut body = json!({
            "kind": "bigquery#dataset",
            "etag": self.etag,
            "id": self.id(),
            "selfLink": format!("{base_uri}/bigquery/v2/projects/{}/datasets/{}", self.project, self.dataset_id),
            "datasetReference": self.reference(),
            "location": self.location,
            "creationTime": self.created_ms.to_string(),
            "lastModifiedTime": self.modified_ms.to_string(),
            "type": "DEFAULT",
        });
        if let Some(description) = &self.description {
            body["description"] = Json::String(description.clone());
        }
        if let Some(name) = &self.friendly_name {
            body["friendlyName"] = Json::String(name.clone());
        }
        if let Some(labels) = &self.labels {
            body["labels"] = labels.clone();
        }
        if let Some(expiration) = self.default_table_expiration_ms {
            body["defaultTableExpirationMs"] = Json::String(expiration.to_string());
        }
        body
    }
}

/// Letters, digits and underscores, at most 1024 characters.
fn valid_dataset_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 1024 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `POST /projects/{p}/datasets`.
pub(crate) fn insert(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let project = request.param(0);
    let body = request.json()?;
    let obj = Obj::new(&body, "");
    let reference = obj.obj("datasetReference");
    let dataset_id = reference
        .map(|reference| reference.str("datasetId"))
        .transpose()?
        .flatten()
        .ok_or_else(|| ApiError::invalid("Required parameter is missing: datasetReference.datasetId"))?;
    if !valid_dataset_id(dataset_id) {
        return Err(ApiError::invalid(format!(
            "Invalid dataset ID \"{dataset_id}\". Dataset IDs must be alphanumeric (plus underscores) and must be at \
             most 1024 characters long."
        )));
    }
    let key = (project.to_owned(), dataset_id.to_owned());
    if state.datasets.contains_key(&key) {
        return Err(ApiError::duplicate(&format!("Dataset {project}:{dataset_id}")));
    }
    let now = now_ms();
    let dataset = Dataset {
        project: project.to_owned(),
        dataset_id: dataset_id.to_owned(),
        location: obj.str("location")?.unwrap_or("US").to_owned(),
        created_ms: now,
        modified_ms: now,
        etag: state.fresh_token(),
        description: obj.str("description")?.map(str::to_owned),
        friendly_name: obj.str("friendlyName")?.map(str::to_owned),
        labels: obj.get("labels").filter(|labels| labels.as_object().is_some_and(|map| !map.is_empty())).cloned(),
        default_table_expiration_ms: obj.i64("defaultTableExpirationMs")?,
        tables: BTreeMap::new(),
    };
    let body = dataset.to_json(&request.base_uri);
    state.datasets.insert(key, dataset);
    Ok(Reply::json(body))
}

/// `GET /projects/{p}/datasets/{d}`.
pub(crate) fn get(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let dataset = state.dataset(request.param(0), request.param(1))?;
    Ok(Reply::json(dataset.to_json(&request.base_uri)))
}

/// `GET /projects/{p}/datasets`, paged by `maxResults` and `pageToken`.
pub(crate) fn list(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let project = request.param(0);
    let mut datasets: Vec<Json> = state
        .datasets
        .values()
        .filter(|dataset| dataset.project == project)
        .map(|dataset| {
            json!({"kind": "bigquery#dataset", "id": dataset.id(), "datasetReference": dataset.reference(),
                   "location": dataset.location})
        })
        .collect();
    let page = paging::page(request, datasets.len())?;
    let datasets: Vec<Json> = datasets.drain(page.items).collect();
    let mut body = json!({"kind": "bigquery#datasetList", "etag": state.fresh_token()});
    if !datasets.is_empty() {
        body["datasets"] = Json::Array(datasets);
    }
    if let Some(token) = page.next_token {
        body["nextPageToken"] = Json::String(token);
    }
    Ok(Reply::json(body))
}

/// `DELETE /projects/{p}/datasets/{d}?deleteContents=`: 204, or 400 `resourceInUse` while tables remain.
pub(crate) fn delete(state: &mut State, request: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let (project, dataset_id) = (request.param(0), request.param(1));
    let delete_contents = request.query_bool("deleteContents")?;
    let dataset = state.dataset(project, dataset_id)?;
    if !dataset.tables.is_empty() && !delete_contents {
        return Err(ApiError::new("resourceInUse", format!("Dataset {project}:{dataset_id} is still in use")));
    }
    state.datasets.remove(&(project.to_owned(), dataset_id.to_owned()));
    Ok(Reply::empty(204))
}
