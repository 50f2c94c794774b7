//! GoogleSQL for the fake BigQuery: the subset daily loaders use, parsed with `sqlparser`'s BigQuery dialect and
//! run by our own evaluator over the stored rows, with BigQuery's types (INT64, FLOAT64, NUMERIC as exact decimals,
//! DATE, TIMESTAMP in microseconds UTC) and BigQuery's errors. Anything outside the subset is refused with
//! `invalidQuery` naming what is unsupported, never answered wrongly.
//!
//! It sees tables through [`Catalog`] and never changes them: a DML statement returns the target's new rows as a
//! [`Mutation`] for the caller to store, so a failing statement changes nothing. It does not know HTTP or jobs.

mod context;
mod dml;
mod eval;
mod functions;
mod info_schema;
mod numeric;
mod ops;
mod params;
mod plan;
mod select;
mod signatures;
#[cfg(test)]
mod tests;
mod typing;

use sqlparser::ast::Statement;
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::Parser;

use super::errors::ErrorProto;
use super::schema::Field;
use super::values::Value;

pub(crate) use params::parse_parameters;

/// What BigQuery's `statistics.query.statementType` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementType {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Truncate,
}

impl StatementType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Merge => "MERGE",
            Self::Truncate => "TRUNCATE_TABLE",
        }
    }
}

/// A query parameter as `queryParameters` sends it: named (`@day`) or positional (`?`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parameter {
    pub name: Option<String>,
    pub field: Field,
    pub value: Value,
}

/// One statement to run.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    pub sql: &'a str,
    /// The job's project: names without a project resolve in it.
    pub project: &'a str,
    /// `defaultDataset`: names without a dataset resolve in it.
    pub default_dataset: Option<(String, String)>,
    pub parameters: Vec<Parameter>,
    /// `CURRENT_TIMESTAMP()`, microseconds since the epoch, fixed for the statement.
    pub now_micros: i64,
}

/// A table as the engine reads it.
#[derive(Debug, Clone)]
pub(crate) struct TableView<'a> {
    pub project: &'a str,
    pub dataset: &'a str,
    pub table: &'a str,
    pub fields: &'a [Field],
    /// The partitioning unit (`DAY`, ...) and column (`None`: ingestion time).
    pub partitioning: Option<(&'static str, Option<&'a str>)>,
    pub clustering: &'a [String],
    pub created_ms: i64,
    pub modified_ms: i64,
    /// Each row with its partition id.
    pub rows: Vec<(Option<&'a str>, &'a [Value])>,
    /// Rows streamed by insertAll are still in the streaming buffer, which DML may not touch.
    pub streaming: bool,
}

/// Where the engine finds tables.
pub(crate) trait Catalog {
    fn table(&self, project: &str, dataset: &str, table: &str) -> Option<TableView<'_>>;
    fn has_dataset(&self, project: &str, dataset: &str) -> bool;
    /// Every table of a dataset, by name.
    fn tables(&self, project: &str, dataset: &str) -> Vec<TableView<'_>>;
}

/// A SELECT's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResultSet {
    pub fields: Vec<Field>,
    pub rows: Vec<Vec<Value>>,
}

/// One row of a table after a DML statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MutatedRow {
    pub values: Vec<Value>,
    /// The partition the row was in (`None` for an inserted row).
    pub previous: Option<String>,
    /// Inserted or updated: its partition follows from its values (or, with ingestion-time partitioning, stays).
    pub changed: bool,
}

/// A DML statement's effect: the target table's rows afterwards, and the counts BigQuery reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mutation {
    pub project: String,
    pub dataset: String,
    pub table: String,
    pub rows: Vec<MutatedRow>,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

/// A statement's result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Rows(ResultSet),
    Dml(StatementType, Mutation),
}

impl Outcome {
    pub fn statement_type(&self) -> StatementType {
        match self {
            Self::Rows(_) => StatementType::Select,
            Self::Dml(kind, _) => *kind,
        }
    }
}

/// `invalidQuery`, as BigQuery answers a query it cannot run.
pub(crate) fn invalid_query(message: impl Into<String>) -> ErrorProto {
    ErrorProto::new("invalidQuery", message).at("query")
}

/// `invalidQuery` for a construct outside the supported subset.
pub(crate) fn unsupported(what: impl std::fmt::Display) -> ErrorProto {
    invalid_query(format!(
        "{what} is not supported by the fake BigQuery's SQL engine (it runs SELECT with joins, GROUP BY, HAVING, \
         ORDER BY, LIMIT, WITH and UNION ALL; INSERT, UPDATE, DELETE, MERGE and TRUNCATE TABLE; \
         INFORMATION_SCHEMA.TABLES, COLUMNS and PARTITIONS)"
    ))
}

/// Parses and runs one statement.
pub(crate) fn run(catalog: &dyn Catalog, request: &Request<'_>) -> Result<Outcome, ErrorProto> {
    let statements = Parser::parse_sql(&BigQueryDialect {}, request.sql)
        .map_err(|err| invalid_query(format!("Syntax error: {}", syntax_message(&err.to_string()))))?;
    let statement = match statements.as_slice() {
        [] => return Err(invalid_query("Syntax error: Unexpected end of script at [1:1]")),
        [one] => one,
        _ => return Err(unsupported("A script of several statements")),
    };
    let context = context::Context::new(catalog, request, select::query_relation);
    match statement {
        Statement::Query(query) => select::run_query(&context, query).map(Outcome::Rows),
        Statement::Insert(insert) => dml::insert(&context, insert).map(|m| Outcome::Dml(StatementType::Insert, m)),
        Statement::Update(update) => dml::update(&context, update).map(|m| Outcome::Dml(StatementType::Update, m)),
        Statement::Delete(delete) => dml::delete(&context, delete).map(|m| Outcome::Dml(StatementType::Delete, m)),
        Statement::Merge(merge) => dml::merge(&context, merge).map(|m| Outcome::Dml(StatementType::Merge, m)),
        Statement::Truncate(truncate) => {
            dml::truncate(&context, truncate).map(|m| Outcome::Dml(StatementType::Truncate, m))
        }
        other => Err(unsupported(format!("The statement `{}`", statement_head(other)))),
    }
}

/// sqlparser's words without its "sql parser error: " prefix.
fn syntax_message(text: &str) -> String {
    text.strip_prefix("sql parser error: ").unwrap_or(text).to_owned()
}

/// The first words of a statement, to name it in an error.
fn statement_head(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    words.join(" ")
}
