//! Everything the fake remembers between requests: datasets with their tables and rows, jobs, open upload
//! sessions, the request log and the fault plans. It does not speak HTTP.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use super::dataset::Dataset;
use super::errors::ApiError;
use super::faults::Faults;
use super::job::Job;
use super::recording::RecordedRequest;
use super::table::Table;
use super::upload::UploadSession;

/// The whole fake, behind one mutex shared by every responder.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// `http://127.0.0.1:PORT`, used when a request has no Host header.
    pub base_uri: String,
    /// Keyed by (project, dataset).
    pub datasets: BTreeMap<(String, String), Dataset>,
    /// Keyed by (project, job id); `job_order` keeps insertion order.
    pub jobs: HashMap<(String, String), Job>,
    pub job_order: Vec<(String, String)>,
    pub uploads: HashMap<String, UploadSession>,
    pub requests: Vec<RecordedRequest>,
    pub faults: Faults,
    /// How many `jobs.get` polls a new job answers RUNNING before DONE.
    pub running_polls: u32,
    /// Reasons the next completing load jobs fail with, first in first out.
    pub job_failures: VecDeque<String>,
    /// `jobs.query` requestIds seen, with the job each created: a retried request answers from that job.
    pub query_requests: HashMap<(String, String), String>,
    next_serial: u64,
}

impl State {
    pub fn new(base_uri: String) -> Self {
        Self { base_uri, ..Self::default() }
    }

    /// A process-unique token: job ids, upload ids and etags are built from it.
    pub fn fresh_token(&mut self) -> String {
        self.next_serial += 1;
        let mut low = DefaultHasher::new();
        (self.next_serial, now_ms(), "low").hash(&mut low);
        let mut high = DefaultHasher::new();
        (self.next_serial, "high").hash(&mut high);
        format!("{:016x}{:016x}", high.finish(), low.finish())
    }

    pub fn dataset(&self, project: &str, dataset: &str) -> Result<&Dataset, ApiError> {
        self.datasets
            .get(&(project.to_owned(), dataset.to_owned()))
            .ok_or_else(|| ApiError::not_found(&format!("Dataset {project}:{dataset}")))
    }

    pub fn dataset_mut(&mut self, project: &str, dataset: &str) -> Result<&mut Dataset, ApiError> {
        self.datasets
            .get_mut(&(project.to_owned(), dataset.to_owned()))
            .ok_or_else(|| ApiError::not_found(&format!("Dataset {project}:{dataset}")))
    }

    /// A table by its bare id (no decorator). A missing dataset reads as a missing table, like BigQuery.
    pub fn table(&self, project: &str, dataset: &str, table: &str) -> Result<&Table, ApiError> {
        self.datasets
            .get(&(project.to_owned(), dataset.to_owned()))
            .and_then(|found| found.tables.get(table))
            .ok_or_else(|| ApiError::not_found(&format!("Table {project}:{dataset}.{table}")))
    }

    pub fn table_mut(&mut self, project: &str, dataset: &str, table: &str) -> Result<&mut Table, ApiError> {
        self.datasets
            .get_mut(&(project.to_owned(), dataset.to_owned()))
            .and_then(|found| found.tables.get_mut(table))
            .ok_or_else(|| ApiError::not_found(&format!("Table {project}:{dataset}.{table}")))
    }

    pub fn job(&self, project: &str, job_id: &str) -> Option<&Job> {
        self.jobs.get(&(project.to_owned(), job_id.to_owned()))
    }

    pub fn add_job(&mut self, job: Job) {
        let key = (job.project.clone(), job.job_id.clone());
        self.job_order.push(key.clone());
        self.jobs.insert(key, job);
    }
}

/// Milliseconds since the Unix epoch, the unit of every BigQuery `*Time` field.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
