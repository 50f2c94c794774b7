//! `INFORMATION_SCHEMA.TABLES`, `.COLUMNS` and `.PARTITIONS` of a dataset, built from the catalog with the
//! columns pipelines read (names, types in GoogleSQL spelling, partitioning and clustering, row counts and
//! modification times per partition).

use std::collections::BTreeMap;

use super::super::errors::ErrorProto;
use super::super::schema::{Field, FieldType, Mode};
use super::super::values::{Value, logical_bytes};
use super::context::{Column, Context, Relation};
use super::{TableView, unsupported};

/// The view a name addresses, if it is an INFORMATION_SCHEMA view.
pub(crate) fn view(cx: &Context<'_>, parts: &[String]) -> Result<Option<Relation>, ErrorProto> {
    let Some(at) = parts.iter().position(|part| part.eq_ignore_ascii_case("INFORMATION_SCHEMA")) else {
        return Ok(None);
    };
    let (project, dataset) = match &parts[..at] {
        [dataset] => (cx.request.project.to_owned(), dataset.clone()),
        [project, dataset] => (project.clone(), dataset.clone()),
        _ => return Err(unsupported(format!("{} (only dataset-level views are supported)", parts.join(".")))),
    };
    if dataset.to_ascii_lowercase().starts_with("region-") {
        return Err(unsupported(format!("{} (only dataset-level views are supported)", parts.join("."))));
    }
    let [view] = &parts[at + 1..] else {
        return Err(unsupported(format!("The INFORMATION_SCHEMA name {}", parts.join("."))));
    };
    if !cx.catalog.has_dataset(&project, &dataset) {
        return Err(ErrorProto::new(
            "notFound",
            format!("Not found: Dataset {project}:{dataset} was not found in location US"),
        ));
    }
    let tables = cx.catalog.tables(&project, &dataset);
    Ok(Some(match view.to_ascii_uppercase().as_str() {
        "TABLES" => table_rows(&tables),
        "COLUMNS" => column_rows(&tables),
        "PARTITIONS" => partition_rows(&tables),
        other => return Err(unsupported(format!("INFORMATION_SCHEMA.{other}"))),
    }))
}

fn columns(spec: &[(&str, FieldType)]) -> Vec<Column> {
    spec.iter()
        .map(|(name, ty)| Column { qualifier: None, field: Field::new(name, *ty, Mode::Nullable), hidden: false })
        .collect()
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

fn micros(ms: i64) -> Value {
    Value::Timestamp(ms.saturating_mul(1_000))
}

/// A column type in GoogleSQL spelling, as `data_type` shows it.
fn sql_type(field: &Field) -> String {
    let base = match field.field_type {
        FieldType::Integer => "INT64".to_owned(),
        FieldType::Float => "FLOAT64".to_owned(),
        FieldType::Boolean => "BOOL".to_owned(),
        FieldType::Record => {
            let inner: Vec<String> = field.fields.iter().map(|sub| format!("{} {}", sub.name, sql_type(sub))).collect();
            format!("STRUCT<{}>", inner.join(", "))
        }
        other => other.legacy_name().to_owned(),
    };
    if field.mode == Mode::Repeated { format!("ARRAY<{base}>") } else { base }
}

fn ddl(table: &TableView<'_>) -> String {
    let columns: Vec<String> = table
        .fields
        .iter()
        .map(|field| {
            let required = if field.mode == Mode::Required { " NOT NULL" } else { "" };
            format!("  {} {}{required}", field.name, sql_type(field))
        })
        .collect();
    let mut text =
        format!("CREATE TABLE `{}.{}.{}`\n(\n{}\n)", table.project, table.dataset, table.table, columns.join(",\n"));
    match table.partitioning {
        Some((unit, Some(column))) => {
            let is_date = table.fields.iter().any(|f| f.name == column && f.field_type == FieldType::Date);
            if is_date && unit == "DAY" {
                text.push_str(&format!("\nPARTITION BY {column}"));
            } else if unit == "DAY" {
                text.push_str(&format!("\nPARTITION BY DATE({column})"));
            } else {
                text.push_str(&format!("\nPARTITION BY TIMESTAMP_TRUNC({column}, {unit})"));
            }
        }
        Some((unit, None)) => text.push_str(&format!("\nPARTITION BY TIMESTAMP_TRUNC(_PARTITIONTIME, {unit})")),
        None => {}
    }
    if !table.clustering.is_empty() {
        text.push_str(&format!("\nCLUSTER BY {}", table.clustering.join(", ")));
    }
    text.push(';');
    text
}

fn table_rows(tables: &[TableView<'_>]) -> Relation {
    use FieldType::{String as S, Timestamp as T};
    let columns = columns(&[
        ("table_catalog", S),
        ("table_schema", S),
        ("table_name", S),
        ("table_type", S),
        ("is_insertable_into", S),
        ("is_typed", S),
        ("creation_time", T),
        ("ddl", S),
    ]);
    let rows = tables
        .iter()
        .map(|table| {
            vec![
                text(table.project),
                text(table.dataset),
                text(table.table),
                text("BASE TABLE"),
                text("YES"),
                text("NO"),
                micros(table.created_ms),
                text(&ddl(table)),
            ]
        })
        .collect();
    Relation { columns, rows }
}

fn column_rows(tables: &[TableView<'_>]) -> Relation {
    use FieldType::{Integer as I, String as S};
    let columns = columns(&[
        ("table_catalog", S),
        ("table_schema", S),
        ("table_name", S),
        ("column_name", S),
        ("ordinal_position", I),
        ("is_nullable", S),
        ("data_type", S),
        ("is_generated", S),
        ("is_hidden", S),
        ("is_system_defined", S),
        ("is_partitioning_column", S),
        ("clustering_ordinal_position", I),
    ]);
    let mut rows = Vec::new();
    for table in tables {
        for (index, field) in table.fields.iter().enumerate() {
            let partitioning =
                matches!(table.partitioning, Some((_, Some(column))) if column.eq_ignore_ascii_case(&field.name));
            let clustering = table.clustering.iter().position(|name| name.eq_ignore_ascii_case(&field.name));
            rows.push(vec![
                text(table.project),
                text(table.dataset),
                text(table.table),
                text(&field.name),
                Value::Integer(index as i64 + 1),
                text(if field.mode == Mode::Required { "NO" } else { "YES" }),
                text(&sql_type(field)),
                text("NEVER"),
                text("NO"),
                text("NO"),
                text(if partitioning { "YES" } else { "NO" }),
                clustering.map_or(Value::Null, |position| Value::Integer(position as i64 + 1)),
            ]);
        }
    }
    Relation { columns, rows }
}

fn partition_rows(tables: &[TableView<'_>]) -> Relation {
    use FieldType::{Integer as I, String as S, Timestamp as T};
    let columns = columns(&[
        ("table_catalog", S),
        ("table_schema", S),
        ("table_name", S),
        ("partition_id", S),
        ("total_rows", I),
        ("total_logical_bytes", I),
        ("last_modified_time", T),
        ("storage_tier", S),
    ]);
    let mut rows = Vec::new();
    for table in tables {
        let mut partitions: BTreeMap<Option<&str>, (i64, u64)> = BTreeMap::new();
        if table.partitioning.is_none() {
            partitions.insert(None, (0, 0));
        }
        for (partition, values) in &table.rows {
            let key = if table.partitioning.is_some() { *partition } else { None };
            let entry = partitions.entry(key).or_default();
            entry.0 += 1;
            entry.1 += values.iter().map(logical_bytes).sum::<u64>();
        }
        for (partition, (count, bytes)) in partitions {
            rows.push(vec![
                text(table.project),
                text(table.dataset),
                text(table.table),
                partition.map_or(Value::Null, text),
                Value::Integer(count),
                Value::Integer(i64::try_from(bytes).unwrap_or(i64::MAX)),
                micros(table.modified_ms),
                text("ACTIVE"),
            ]);
        }
    }
    Relation { columns, rows }
}
