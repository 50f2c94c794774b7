//! Load and copy jobs: reading `configuration.load`, then running the load atomically against the stored tables
//! with BigQuery's dispositions, partition decorators, schema checks and bad-record accounting. NDJSON, CSV
//! (`csv_load.rs`) and Parquet (`parquet_load.rs`); Avro and ORC loads fail with `invalid`. It does not parse
//! uploads; `upload.rs` hands it the bytes. Copy jobs (`configuration.copy`, at the end) share the dispositions
//! and the partition rules.

use serde_json::{Map, Value as Json};

use super::csv_load::{self, CsvOptions};
use super::errors::{ApiError, ErrorProto, default_message};
use super::job::{Job, JobOutcome, LoadStatistics, claim_job_id};
use super::routes::Reply;
use super::schema::{Evolution, Field, FieldType, Mode, Schema, TimePartitioning, validate_clustering};
use super::state::{State, now_ms};
use super::table::{StoredRow, Table, TableName};
use super::values::{Value, parse_row, parse_timestamp};
use super::wire::{Obj, without_nulls};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteDisposition {
    Append,
    Truncate,
    Empty,
}

impl WriteDisposition {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteDisposition::Append => "WRITE_APPEND",
            WriteDisposition::Truncate => "WRITE_TRUNCATE",
            WriteDisposition::Empty => "WRITE_EMPTY",
        }
    }
}

/// The failure a test planted for the next job (`FakeBigQuery::fail_next_job`), if any.
pub(crate) fn planted_failure(state: &mut State) -> Option<JobOutcome> {
    let reason = state.job_failures.pop_front()?;
    let error = ErrorProto::new(&reason, default_message(&reason));
    Some(JobOutcome::Failed { errors: vec![error.clone()], error })
}

/// Stores a job that ran at insert time and answers with its resource.
pub(crate) fn store_job(state: &mut State, job: Job, base_uri: &str) -> Reply {
    let job_id = job.job_id.clone();
    let body = job.to_json(base_uri, job.polls_left == 0);
    state.add_job(job);
    Reply::json(body).for_job(&job_id)
}

/// `configuration.load`, validated as far as BigQuery validates it before accepting the job.
#[derive(Debug, Clone)]
struct LoadConfig {
    project: String,
    dataset: String,
    name: TableName,
    source_format: String,
    schema: Option<Schema>,
    create_never: bool,
    write: WriteDisposition,
    partitioning: Option<TimePartitioning>,
    clustering: Option<Vec<String>>,
    ignore_unknown: bool,
    max_bad_records: u64,
    autodetect: bool,
    evolution: Evolution,
    csv: CsvOptions,
}

impl LoadConfig {
    fn parse(load: Obj<'_>, job_project: &str) -> Result<Self, ApiError> {
        let missing = || ApiError::invalid("Required parameter is missing: configuration.load.destinationTable");
        let destination = load.obj("destinationTable").ok_or_else(missing)?;
        let dataset = destination.str("datasetId")?.ok_or_else(missing)?;
        let table_id = destination.str("tableId")?.ok_or_else(missing)?;
        let create_never = match load.enum_value("createDisposition")?.as_deref() {
            None | Some("CREATE_IF_NEEDED") => false,
            Some("CREATE_NEVER") => true,
            Some(other) => {
                return Err(ApiError::invalid(format!("Invalid value for createDisposition: {other}")));
            }
        };
        let write = match load.enum_value("writeDisposition")?.as_deref() {
            None | Some("WRITE_APPEND") => WriteDisposition::Append,
            Some("WRITE_TRUNCATE") => WriteDisposition::Truncate,
            Some("WRITE_EMPTY") => WriteDisposition::Empty,
            Some(other) => {
                return Err(ApiError::invalid(format!("Invalid value for writeDisposition: {other}")));
            }
        };
        let mut evolution = Evolution::default();
        for option in load.array("schemaUpdateOptions")? {
            match option.as_str().map(str::to_ascii_uppercase).as_deref() {
                Some("ALLOW_FIELD_ADDITION") => evolution.allow_addition = true,
                Some("ALLOW_FIELD_RELAXATION") => evolution.allow_relaxation = true,
                _ => {
                    return Err(ApiError::invalid(format!("Invalid value for schemaUpdateOptions: {option}")));
                }
            }
        }
        let max_bad_records = load.i64("maxBadRecords")?.unwrap_or(0);
        Ok(Self {
            project: destination.str("projectId")?.unwrap_or(job_project).to_owned(),
            dataset: dataset.to_owned(),
            name: TableName::parse(table_id)?,
            source_format: load.enum_value("sourceFormat")?.unwrap_or_else(|| "CSV".into()),
            schema: load.get("schema").map(Schema::from_json).transpose()?.filter(|schema| !schema.fields.is_empty()),
            create_never,
            write,
            partitioning: load.get("timePartitioning").map(TimePartitioning::from_json).transpose()?,
            clustering: load
                .get("clustering")
                .map(super::schema::parse_clustering)
                .transpose()?
                .filter(|fields| !fields.is_empty()),
            ignore_unknown: load.bool("ignoreUnknownValues")?.unwrap_or(false),
            max_bad_records: u64::try_from(max_bad_records).unwrap_or(0),
            autodetect: load.bool("autodetect")?.unwrap_or(false),
            evolution,
            csv: CsvOptions::parse(load)?,
        })
    }

    fn qualified_target(&self) -> String {
        format!("{}:{}.{}", self.project, self.dataset, self.name.display())
    }
}

/// A load job as an upload delivers it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadRequest<'a> {
    /// The project in the upload URL, which owns the job.
    pub project: &'a str,
    /// The Job JSON: the first multipart part, or the resumable session's metadata.
    pub job: &'a Json,
    /// The NDJSON bytes.
    pub data: &'a [u8],
    /// For `selfLink`.
    pub base_uri: &'a str,
}

/// Create the job, run the load, and answer with the Job resource. HTTP errors are for malformed jobs and
/// reused ids; a load that fails is HTTP 200 with `status.errorResult`.
pub(crate) fn insert_load_job(state: &mut State, request: LoadRequest<'_>) -> Result<Reply, ApiError> {
    let LoadRequest { project, job: job_json, data, base_uri } = request;
    let config = parse_job(job_json, project)?;
    let job_id = match claim_job_id(state, project, job_json)? {
        Ok(job_id) => job_id,
        Err(duplicate) => return Ok(duplicate),
    };
    let created_ms = now_ms();
    let outcome = match planted_failure(state) {
        Some(failed) => failed,
        None => run(state, &config, data),
    };
    let requested_location =
        Obj::new(job_json, "").obj("jobReference").and_then(|reference| reference.str("location").ok().flatten());
    let location = requested_location
        .map(str::to_owned)
        .or_else(|| state.dataset(&config.project, &config.dataset).ok().map(|dataset| dataset.location.clone()))
        .unwrap_or_else(|| "US".into());
    let mut configuration = without_nulls(job_json.get("configuration").unwrap_or(&Json::Null));
    normalise_numbers(&mut configuration);
    configuration["jobType"] = Json::String("LOAD".into());
    let job = Job {
        project: project.to_owned(),
        job_id,
        location,
        configuration,
        destination: Some(config.qualified_target()),
        write_disposition: Some(config.write.as_str().into()),
        created_ms,
        started_ms: created_ms,
        ended_ms: now_ms(),
        outcome,
        polls_left: state.running_polls,
        etag: state.fresh_token(),
    };
    Ok(store_job(state, job, base_uri))
}

/// BigQuery echoes int32 fields as JSON numbers and int64 fields as strings, whatever the client sent; typed
/// clients decode `maxBadRecords` as an integer and would reject a string.
fn normalise_numbers(configuration: &mut Json) {
    let Some(load) = configuration.get_mut("load") else { return };
    for int32 in ["maxBadRecords", "skipLeadingRows"] {
        if let Some(number) =
            load.get(int32).and_then(|value| value.as_str()).and_then(|text| text.trim().parse::<i64>().ok())
        {
            load[int32] = Json::from(number);
        }
    }
    if let Some(number) = load.pointer("/timePartitioning/expirationMs").and_then(Json::as_i64) {
        load["timePartitioning"]["expirationMs"] = Json::String(number.to_string());
    }
}

/// The checks BigQuery makes before it accepts a load job (HTTP 400 otherwise), for a resumable session start.
pub(crate) fn check_job(job_json: &Json, project: &str) -> Result<(), ApiError> {
    parse_job(job_json, project).map(drop)
}

fn parse_job(job_json: &Json, project: &str) -> Result<LoadConfig, ApiError> {
    let configuration = Obj::new(job_json, "").obj("configuration");
    if configuration.is_some_and(|configuration| configuration.has("query")) {
        return Err(ApiError::invalid(
            "A query job carries no media: send it with POST /bigquery/v2/projects/{p}/jobs or /queries",
        ));
    }
    let load = configuration.and_then(|configuration| configuration.obj("load")).ok_or_else(|| {
        ApiError::invalid("Required parameter is missing: configuration.load (the fake runs load jobs only)")
    })?;
    if let Some(reference) = Obj::new(job_json, "").obj("jobReference")
        && let Some(job_id) = reference.str("jobId")?
    {
        super::job::check_job_id(job_id)?;
    }
    LoadConfig::parse(load, project)
}

/// Why a load job failed: its `errorResult` and `errors`.
struct Failure {
    error: ErrorProto,
    errors: Vec<ErrorProto>,
}

impl Failure {
    fn new(reason: &str, message: impl Into<String>) -> Self {
        let error = ErrorProto::new(reason, message);
        Self { errors: vec![error.clone()], error }
    }
}

/// What a successful load changes, computed before anything is touched so a failing load changes nothing.
struct Plan {
    /// The table to create, when it does not exist yet.
    create: Option<Table>,
    schema: Schema,
    truncate: Truncation,
    rows: Vec<StoredRow>,
    statistics: LoadStatistics,
    warnings: Vec<ErrorProto>,
}

enum Truncation {
    Nothing,
    Table,
    Partition(String),
}

fn run(state: &mut State, config: &LoadConfig, data: &[u8]) -> JobOutcome {
    let etag = state.fresh_token();
    match plan(state, config, data) {
        Err(failure) => JobOutcome::Failed { error: failure.error, errors: failure.errors },
        Ok(plan) => {
            let Ok(dataset) = state.dataset_mut(&config.project, &config.dataset) else {
                return JobOutcome::Failed {
                    error: ErrorProto::new("internalError", "the dataset vanished during the load"),
                    errors: Vec::new(),
                };
            };
            if let Some(table) = plan.create {
                dataset.tables.insert(config.name.table.clone(), table);
            }
            let Some(table) = dataset.tables.get_mut(&config.name.table) else {
                return JobOutcome::Failed {
                    error: ErrorProto::new("internalError", "the table vanished during the load"),
                    errors: Vec::new(),
                };
            };
            match plan.truncate {
                Truncation::Nothing => {}
                Truncation::Table => {
                    table.rows.clear();
                    table.streaming = None;
                }
                Truncation::Partition(partition) => {
                    table.rows.retain(|row| row.partition.as_deref() != Some(partition.as_str()))
                }
            }
            table.schema = plan.schema;
            table.rows.extend(plan.rows);
            table.touch(etag);
            JobOutcome::Succeeded { load: plan.statistics, warnings: plan.warnings }
        }
    }
}

fn plan(state: &State, config: &LoadConfig, data: &[u8]) -> Result<Plan, Failure> {
    let target = config.qualified_target();
    let dataset = state
        .dataset(&config.project, &config.dataset)
        .map_err(|_| Failure::new("notFound", format!("Not found: Dataset {}:{}", config.project, config.dataset)))?;
    let (mut csv, parquet) = match config.source_format.as_str() {
        "NEWLINE_DELIMITED_JSON" => (None, None),
        "CSV" => (Some(config.csv.clone()), None),
        "PARQUET" => {
            let rows = super::parquet_load::read(data).map_err(|message| {
                Failure::new("invalid", format!("Error while reading data, error message: {message} File: {FILE}"))
            })?;
            (None, Some(rows))
        }
        other => {
            return Err(Failure::new(
                "invalid",
                format!("The fake BigQuery loads CSV, NEWLINE_DELIMITED_JSON and PARQUET, not sourceFormat {other}"),
            ));
        }
    };
    let existing = dataset.tables.get(&config.name.table);
    let whole_truncate = config.write == WriteDisposition::Truncate && config.name.partition.is_none();
    let (create, schema, partitioning) = match existing {
        None => {
            if config.create_never {
                return Err(Failure::new(
                    "notFound",
                    format!("Not found: Table {}:{}.{}", config.project, config.dataset, config.name.table),
                ));
            }
            // A Parquet file carries its schema: BigQuery takes it without autodetect.
            let schema = match (&config.schema, config.autodetect || parquet.is_some()) {
                (Some(schema), _) => schema.clone(),
                (None, true) => match (csv.as_mut(), &parquet) {
                    (Some(options), _) => csv_load::infer_schema(data, options),
                    (None, Some(rows)) => infer_from_objects(rows.iter()),
                    (None, None) => infer_schema(data),
                },
                (None, false) => {
                    return Err(Failure::new("invalid", "No schema specified on job or table."));
                }
            };
            if let Some(partitioning) = &config.partitioning {
                partitioning.validate(&schema).map_err(|message| Failure::new("invalid", message))?;
            }
            if let Some(fields) = &config.clustering {
                validate_clustering(fields, &schema).map_err(|message| Failure::new("invalid", message))?;
            }
            // The etag is set when the load commits.
            let mut table =
                Table::new(&config.project, &config.dataset, &config.name.table, schema.clone(), String::new());
            table.partitioning.clone_from(&config.partitioning);
            table.clustering.clone_from(&config.clustering);
            let partitioning = table.partitioning.clone();
            (Some(table), schema, partitioning)
        }
        Some(table) => {
            if let Some(requested) = &config.partitioning
                && !table.partitioning.as_ref().is_some_and(|current| current.same_scheme(requested))
            {
                return Err(Failure::new(
                    "invalid",
                    format!(
                        "Incompatible table partitioning specification. Expects partitioning specification {}, but \
                         input partitioning specification is {}",
                        table.partitioning.as_ref().map_or_else(|| "none".to_owned(), TimePartitioning::describe),
                        requested.describe()
                    ),
                ));
            }
            let schema = match &config.schema {
                Some(proposed) if whole_truncate => {
                    if let Some(partitioning) = &table.partitioning {
                        partitioning.validate(proposed).map_err(|message| Failure::new("invalid", message))?;
                    }
                    proposed.clone()
                }
                Some(proposed) => table
                    .schema
                    .evolve(proposed, &table.qualified(), config.evolution)
                    .map_err(|message| Failure::new("invalid", message))?,
                None => table.schema.clone(),
            };
            (None, schema, table.partitioning.clone())
        }
    };
    let decorator = config.name.partition.as_deref();
    if let Some(partition) = decorator {
        let unit_ok = partitioning.as_ref().is_some_and(|partitioning| partitioning.unit.is_valid_id(partition));
        if !unit_ok {
            let message = match &partitioning {
                None => format!("Cannot use partition decorator on non-partitioned table {target}"),
                Some(partitioning) => format!(
                    "Invalid partition decorator {partition} for a table partitioned by {}",
                    partitioning.unit.name()
                ),
            };
            return Err(Failure::new("invalid", message));
        }
    }
    if config.write == WriteDisposition::Empty
        && existing.is_some_and(|table| table.rows_in(decorator).next().is_some())
    {
        return Err(Failure::new("duplicate", format!("Already Exists: Table {target}")));
    }

    let mut layout = Table::new(&config.project, &config.dataset, &config.name.table, schema, String::new());
    layout.partitioning = partitioning;
    let (parsed, kind) = match (&csv, &parquet) {
        (Some(options), _) => {
            // CSV columns are positional in the job's schema when it gives one (pandas writes the frame's column
            // order), and land in the table's columns by name.
            let source = config.schema.as_ref().unwrap_or(&layout.schema);
            let rows = csv_load::parse_csv(data, source, options, config.ignore_unknown);
            let rows_in_table_order =
                by_name(rows.rows, source, &layout.schema).map_err(|message| Failure::new("invalid", message))?;
            (Parsed { rows: rows_in_table_order, errors: rows.errors, lines: rows.lines }, "CSV")
        }
        (None, Some(rows)) => (parse_objects(rows, &layout.schema, config.ignore_unknown), "Parquet"),
        (None, None) => (parse_ndjson(data, &layout.schema, config.ignore_unknown), "JSON"),
    };
    let bad = parsed.errors.len() as u64;
    if bad > config.max_bad_records {
        let summary = ErrorProto::new(
            "invalid",
            format!(
                "Error while reading data, error message: {kind} table encountered too many errors, giving up. \
                 Rows: {}; errors: {bad}. Please look into the errors[] collection for more details.",
                parsed.lines
            ),
        );
        let mut errors = vec![summary.clone()];
        errors.extend(parsed.errors.into_iter().take(100));
        return Err(Failure { error: summary, errors });
    }
    let mut rows = Vec::with_capacity(parsed.rows.len());
    let mut output_bytes = 0;
    for values in parsed.rows {
        let partition = layout.partition_for(&values, decorator);
        if let (Some(wanted), Some(actual)) = (decorator, &partition)
            && wanted != actual
        {
            return Err(Failure::new(
                "invalid",
                format!("Some rows belong to different partitions rather than destination partition {wanted}"),
            ));
        }
        let row = StoredRow { partition, values };
        output_bytes += row.logical_bytes();
        rows.push(row);
    }
    let truncate = match (config.write, decorator) {
        (WriteDisposition::Truncate, Some(partition)) => Truncation::Partition(partition.to_owned()),
        (WriteDisposition::Truncate, None) => Truncation::Table,
        _ => Truncation::Nothing,
    };
    Ok(Plan {
        create,
        schema: layout.schema,
        truncate,
        statistics: LoadStatistics {
            input_files: 1,
            input_file_bytes: data.len() as u64,
            output_rows: rows.len() as u64,
            output_bytes,
            bad_records: bad,
        },
        rows,
        warnings: parsed.errors,
    })
}

/// Rows read in `source`'s column order, rearranged into `table`'s by column name; a column the source lacks is
/// NULL (an empty array when REPEATED), and may not be REQUIRED.
fn by_name(rows: Vec<Vec<Value>>, source: &Schema, table: &Schema) -> Result<Vec<Vec<Value>>, String> {
    if source
        .fields
        .iter()
        .map(|f| f.name.to_ascii_lowercase())
        .eq(table.fields.iter().map(|f| f.name.to_ascii_lowercase()))
    {
        return Ok(rows);
    }
    let mut positions = Vec::with_capacity(table.fields.len());
    for field in &table.fields {
        let position = source.index_of(&field.name);
        if position.is_none() && field.mode == Mode::Required {
            return Err(format!("Required field {} is missing from the load's schema", field.name));
        }
        positions.push(position);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            positions
                .iter()
                .zip(&table.fields)
                .map(|(position, field)| match position {
                    Some(index) => row.get(*index).cloned().unwrap_or(Value::Null),
                    None if field.mode == Mode::Repeated => Value::Repeated(Vec::new()),
                    None => Value::Null,
                })
                .collect()
        })
        .collect())
}

struct Parsed {
    rows: Vec<Vec<Value>>,
    errors: Vec<ErrorProto>,
    /// Non-blank lines read.
    lines: u64,
}

const FILE: &str = "file-00000000";

fn parse_ndjson(data: &[u8], schema: &Schema, ignore_unknown: bool) -> Parsed {
    let mut parsed = Parsed { rows: Vec::new(), errors: Vec::new(), lines: 0 };
    let mut position = 0usize;
    for line in data.split(|byte| *byte == b'\n') {
        let start = position;
        position += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        parsed.lines += 1;
        let problem = |message: String| {
            ErrorProto::new(
                "invalid",
                format!("Error while reading data, error message: JSON parsing error in row starting at position {start}: {message} File: {FILE}"),
            )
            .at(FILE)
        };
        match serde_json::from_slice::<Json>(line) {
            Err(err) => parsed.errors.push(problem(format!("Parser terminated before end of string: {err}."))),
            Ok(Json::Object(object)) => match parse_row(&object, &schema.fields, ignore_unknown) {
                Ok(values) => parsed.rows.push(values),
                Err(error) => parsed.errors.push(problem(capitalised(&error.message))),
            },
            Ok(_) => parsed.errors.push(problem("Only JSON objects are allowed at the top level.".into())),
        }
    }
    parsed
}

/// Rows of a Parquet file, read as NDJSON rows are (by column name).
fn parse_objects(objects: &[Map<String, Json>], schema: &Schema, ignore_unknown: bool) -> Parsed {
    let mut parsed = Parsed { rows: Vec::new(), errors: Vec::new(), lines: objects.len() as u64 };
    for (index, object) in objects.iter().enumerate() {
        match parse_row(object, &schema.fields, ignore_unknown) {
            Ok(values) => parsed.rows.push(values),
            Err(error) => parsed.errors.push(
                ErrorProto::new(
                    "invalid",
                    format!(
                        "Error while reading data, error message: Parquet row {index}: {} File: {FILE}",
                        capitalised(&error.message)
                    ),
                )
                .at(FILE),
            ),
        }
    }
    parsed
}

fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Schema auto-detection over the first 500 rows: booleans, integers, floats, dates, timestamps, records and
/// arrays; conflicting types widen (INTEGER+FLOAT to FLOAT, DATE+TIMESTAMP to TIMESTAMP, else STRING).
fn infer_schema(data: &[u8]) -> Schema {
    let objects: Vec<Map<String, Json>> = data
        .split(|byte| *byte == b'\n')
        .filter_map(|line| serde_json::from_slice::<Json>(line).ok())
        .filter_map(|value| match value {
            Json::Object(object) => Some(object),
            _ => None,
        })
        .take(500)
        .collect();
    infer_from_objects(objects.iter())
}

/// The same detection over rows already read (a Parquet file's).
fn infer_from_objects<'a>(objects: impl Iterator<Item = &'a Map<String, Json>>) -> Schema {
    let mut fields: Vec<Field> = Vec::new();
    for object in objects.take(500) {
        merge_object(&mut fields, object);
    }
    Schema { fields }
}

fn merge_object(fields: &mut Vec<Field>, object: &Map<String, Json>) {
    for (key, value) in object {
        let Some(detected) = detect(key, value) else {
            continue;
        };
        match super::schema::index_of(fields, key) {
            None => fields.push(detected),
            Some(index) => {
                let current = &mut fields[index];
                if current.field_type == FieldType::Record && detected.field_type == FieldType::Record {
                    for sub in detected.fields {
                        if super::schema::index_of(&current.fields, &sub.name).is_none() {
                            current.fields.push(sub);
                        }
                    }
                } else {
                    current.field_type = current.field_type.widen(detected.field_type);
                }
            }
        }
    }
}

fn detect(name: &str, value: &Json) -> Option<Field> {
    let (element, mode) = match value {
        Json::Array(items) => (items.iter().find(|item| !item.is_null())?, Mode::Repeated),
        Json::Null => return None,
        other => (other, Mode::Nullable),
    };
    let mut field = Field::new(name, FieldType::String, mode);
    field.field_type = match element {
        Json::Bool(_) => FieldType::Boolean,
        Json::Number(number) if number.is_i64() || number.is_u64() => FieldType::Integer,
        Json::Number(_) => FieldType::Float,
        Json::String(text) if chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() => FieldType::Date,
        Json::String(text) if text.len() > 10 && parse_timestamp(text).is_some() => FieldType::Timestamp,
        Json::Object(object) => {
            let mut sub = Vec::new();
            merge_object(&mut sub, object);
            if sub.is_empty() {
                return None;
            }
            field.fields = sub;
            FieldType::Record
        }
        _ => FieldType::String,
    };
    Some(field)
}

// --- copy jobs --------------------------------------------------------------------------------------------------
// `configuration.copy`: one or more source tables (or partitions, `t$YYYYMMDD`) into a destination table or
// partition, with BigQuery's dispositions (WRITE_EMPTY by default for copies), the destination created from the
// first source when needed, schemas that must match, and the partition rule of loads: rows copied into a
// partition must belong to it. The copy runs at insert time and atomically.

/// A table a copy or a query writes, possibly decorated.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub project: String,
    pub dataset: String,
    pub name: TableName,
}

impl Target {
    fn parse(reference: Obj<'_>, job_project: &str, what: &str) -> Result<Target, ApiError> {
        let missing = || ApiError::invalid(format!("Required parameter is missing: configuration.copy.{what}"));
        Ok(Target {
            project: reference.str("projectId")?.unwrap_or(job_project).to_owned(),
            dataset: reference.str("datasetId")?.ok_or_else(missing)?.to_owned(),
            name: TableName::parse(reference.str("tableId")?.ok_or_else(missing)?)?,
        })
    }

    pub fn display(&self) -> String {
        format!("{}:{}.{}", self.project, self.dataset, self.name.display())
    }
}

struct CopyConfig {
    sources: Vec<Target>,
    destination: Target,
    write: WriteDisposition,
    create_never: bool,
}

fn parse_copy(copy: Obj<'_>, project: &str) -> Result<CopyConfig, ApiError> {
    let mut sources = Vec::new();
    if let Some(source) = copy.obj("sourceTable") {
        sources.push(Target::parse(source, project, "sourceTable")?);
    }
    for source in copy.array("sourceTables")? {
        sources.push(Target::parse(Obj::new(source, "configuration.copy.sourceTables"), project, "sourceTables")?);
    }
    if sources.is_empty() {
        return Err(ApiError::invalid("Required parameter is missing: configuration.copy.sourceTable"));
    }
    let destination = copy
        .obj("destinationTable")
        .ok_or_else(|| ApiError::invalid("Required parameter is missing: configuration.copy.destinationTable"))?;
    let write = match copy.enum_value("writeDisposition")?.as_deref() {
        None | Some("WRITE_EMPTY") => WriteDisposition::Empty,
        Some("WRITE_APPEND") => WriteDisposition::Append,
        Some("WRITE_TRUNCATE") => WriteDisposition::Truncate,
        Some(other) => return Err(ApiError::invalid(format!("Invalid value for writeDisposition: {other}"))),
    };
    let create_never = match copy.enum_value("createDisposition")?.as_deref() {
        None | Some("CREATE_IF_NEEDED") => false,
        Some("CREATE_NEVER") => true,
        Some(other) => return Err(ApiError::invalid(format!("Invalid value for createDisposition: {other}"))),
    };
    Ok(CopyConfig {
        sources,
        destination: Target::parse(destination, project, "destinationTable")?,
        write,
        create_never,
    })
}

/// `POST /projects/{p}/jobs` with `configuration.copy`: creates the job, runs the copy, answers the Job.
pub(crate) fn insert_copy_job(
    state: &mut State,
    project: &str,
    job_json: &Json,
    base_uri: &str,
) -> Result<Reply, ApiError> {
    let copy = Obj::new(job_json, "").obj("configuration").and_then(|c| c.obj("copy"));
    let config = parse_copy(
        copy.ok_or_else(|| ApiError::invalid("Required parameter is missing: configuration.copy"))?,
        project,
    )?;
    let job_id = match claim_job_id(state, project, job_json)? {
        Ok(job_id) => job_id,
        Err(duplicate) => return Ok(duplicate),
    };
    let created_ms = now_ms();
    let outcome = match planted_failure(state) {
        Some(failed) => failed,
        None => match run_copy(state, &config) {
            Ok(rows) => JobOutcome::Copied { rows },
            Err(error) => JobOutcome::Failed { errors: vec![error.clone()], error },
        },
    };
    let mut configuration = without_nulls(job_json.get("configuration").unwrap_or(&Json::Null));
    configuration["jobType"] = Json::String("COPY".into());
    let location = state
        .dataset(&config.destination.project, &config.destination.dataset)
        .map(|dataset| dataset.location.clone())
        .unwrap_or_else(|_| "US".into());
    let job = Job {
        project: project.to_owned(),
        job_id,
        location,
        configuration,
        destination: Some(config.destination.display()),
        write_disposition: Some(config.write.as_str().into()),
        created_ms,
        started_ms: created_ms,
        ended_ms: now_ms(),
        outcome,
        polls_left: state.running_polls,
        etag: state.fresh_token(),
    };
    Ok(store_job(state, job, base_uri))
}

fn table_not_found(target: &Target) -> ErrorProto {
    ErrorProto::new("notFound", format!("Not found: Table {}:{}.{}", target.project, target.dataset, target.name.table))
}

/// The shape a copy or a query gives a table it creates: the first source's, or the result's.
#[derive(Clone)]
pub(crate) struct Shape {
    pub schema: Schema,
    pub partitioning: Option<TimePartitioning>,
    pub clustering: Option<Vec<String>>,
}

impl Shape {
    fn table(&self, target: &Target) -> Table {
        let mut table =
            Table::new(&target.project, &target.dataset, &target.name.table, self.schema.clone(), String::new());
        table.partitioning.clone_from(&self.partitioning);
        table.clustering.clone_from(&self.clustering);
        table
    }
}

/// Runs the copy; the rows copied. Nothing changes unless it succeeds.
fn run_copy(state: &mut State, config: &CopyConfig) -> Result<u64, ErrorProto> {
    let mut rows: Vec<StoredRow> = Vec::new();
    let mut first: Option<Shape> = None;
    for source in &config.sources {
        let table = state
            .dataset(&source.project, &source.dataset)
            .ok()
            .and_then(|dataset| dataset.tables.get(&source.name.table))
            .ok_or_else(|| table_not_found(source))?;
        match &first {
            None => {
                first = Some(Shape {
                    schema: table.schema.clone(),
                    partitioning: table.partitioning.clone(),
                    clustering: table.clustering.clone(),
                });
            }
            Some(shape) if shape.schema != table.schema => {
                return Err(ErrorProto::new(
                    "invalid",
                    format!("Source table {} has a schema that differs from the other sources", source.display()),
                ));
            }
            Some(_) => {}
        }
        rows.extend(table.rows_in(source.name.partition.as_deref()).cloned());
    }
    let shape = first.ok_or_else(|| ErrorProto::new("invalid", "No source table"))?;
    write_rows(state, &config.destination, &shape, rows, config.write, config.create_never)
}

/// Whether two schemas have the same columns, names and types (modes and descriptions aside).
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields.len() == b.fields.len()
        && a.fields
            .iter()
            .zip(&b.fields)
            .all(|(x, y)| x.name.eq_ignore_ascii_case(&y.name) && x.field_type == y.field_type && x.fields == y.fields)
}

/// Writes rows into a destination table with the write and create dispositions of a copy or a query job:
/// the table is created with `shape` when missing, a decorator targets one partition, and nothing changes
/// unless every row fits. The rows written.
pub(crate) fn write_rows(
    state: &mut State,
    destination: &Target,
    shape: &Shape,
    rows: Vec<StoredRow>,
    write: WriteDisposition,
    create_never: bool,
) -> Result<u64, ErrorProto> {
    let dataset = state.dataset(&destination.project, &destination.dataset).map_err(|_| {
        ErrorProto::new("notFound", format!("Not found: Dataset {}:{}", destination.project, destination.dataset))
    })?;
    let existing = dataset.tables.get(&destination.name.table);
    let layout = match existing {
        Some(table) => {
            if !same_columns(&table.schema, &shape.schema) {
                return Err(ErrorProto::new(
                    "invalid",
                    format!("Provided Schema does not match Table {}", destination.display()),
                ));
            }
            Shape { schema: table.schema.clone(), partitioning: table.partitioning.clone(), clustering: None }
                .table(destination)
        }
        None if create_never => return Err(table_not_found(destination)),
        None => shape.table(destination),
    };
    let decorator = destination.name.partition.as_deref();
    if decorator.is_some() && layout.partitioning.is_none() {
        return Err(ErrorProto::new(
            "invalid",
            format!("Cannot use partition decorator on non-partitioned table {}", destination.display()),
        ));
    }
    if write == WriteDisposition::Empty && existing.is_some_and(|table| table.rows_in(decorator).next().is_some()) {
        return Err(ErrorProto::new("duplicate", format!("Already Exists: Table {}", destination.display())));
    }
    let mut copied = Vec::with_capacity(rows.len());
    for row in rows {
        let partition = layout.partition_for(&row.values, decorator);
        if let (Some(wanted), Some(actual)) = (decorator, &partition)
            && wanted != actual
        {
            return Err(ErrorProto::new(
                "invalid",
                format!("Some rows belong to different partitions rather than destination partition {wanted}"),
            ));
        }
        copied.push(StoredRow { partition, values: row.values });
    }
    let count = copied.len() as u64;
    let etag = state.fresh_token();
    let dataset =
        state.dataset_mut(&destination.project, &destination.dataset).map_err(|_| table_not_found(destination))?;
    let table = dataset.tables.entry(destination.name.table.clone()).or_insert_with(|| shape.table(destination));
    match (write, decorator) {
        (WriteDisposition::Truncate, Some(partition)) => {
            table.rows.retain(|row| row.partition.as_deref() != Some(partition))
        }
        (WriteDisposition::Truncate, None) => {
            table.rows.clear();
            table.streaming = None;
        }
        _ => {}
    }
    table.rows.extend(copied);
    table.touch(etag);
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autodetect_infers_and_widens_column_types() {
        let data = b"{\"n\":1,\"x\":1,\"d\":\"2024-06-01\",\"ts\":\"2024-06-01T00:00:00Z\",\"s\":\"a\",\"b\":true}\n{\"x\":1.5}\n";
        let schema = infer_schema(data);
        // Column order follows serde_json's map order, so compare by name.
        let mut types: Vec<(String, &str)> =
            schema.fields.iter().map(|field| (field.name.clone(), field.field_type.legacy_name())).collect();
        types.sort();
        let expected =
            [("b", "BOOLEAN"), ("d", "DATE"), ("n", "INTEGER"), ("s", "STRING"), ("ts", "TIMESTAMP"), ("x", "FLOAT")];
        assert_eq!(types, expected.map(|(name, kind)| (name.to_owned(), kind)));
        assert!(schema.fields.iter().all(|field| field.mode == Mode::Nullable));
    }

    #[test]
    fn csv_columns_in_the_job_schema_order_land_by_name() {
        let field = |name: &str, mode: Mode| Field::new(name, FieldType::String, mode);
        let table =
            Schema { fields: vec![field("a", Mode::Required), field("b", Mode::Nullable), field("c", Mode::Nullable)] };
        let source = Schema { fields: vec![field("B", Mode::Nullable), field("a", Mode::Required)] };
        let text = |t: &str| Value::String(t.to_owned());
        let rows = by_name(vec![vec![text("b1"), text("a1")]], &source, &table);
        assert_eq!(rows, Ok(vec![vec![text("a1"), text("b1"), Value::Null]]));
        let without_a = Schema { fields: vec![field("b", Mode::Nullable)] };
        assert!(by_name(vec![vec![text("b1")]], &without_a, &table).is_err_and(|m| m.contains("Required field a")));
    }

    #[test]
    fn ndjson_errors_name_the_byte_position_of_the_row() {
        let schema = Schema { fields: vec![Field::new("a", FieldType::Integer, Mode::Nullable)] };
        let parsed = parse_ndjson(b"{\"a\":1}\r\n\n{\"a\":\"x\"}\n{\"b\":2}", &schema, false);
        assert_eq!(parsed.rows, vec![vec![Value::Integer(1)]]);
        assert_eq!(parsed.lines, 3);
        assert_eq!(parsed.errors.len(), 2);
        assert!(parsed.errors[0].message.contains("row starting at position 10"), "{}", parsed.errors[0].message);
        assert!(parsed.errors[1].message.contains("No such field: b."), "{}", parsed.errors[1].message);
    }
}
