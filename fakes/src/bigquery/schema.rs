//! Table schemas, time partitioning and clustering: parsing them from requests, the validation BigQuery applies,
//! schema evolution, and their JSON in the legacy type spelling. It does not hold or convert row values.

use serde_json::{Value, json};

use super::errors::ApiError;
use super::wire::Obj;

/// A column type, whatever spelling the client used (`INT64` and `INTEGER` are the same type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    String,
    Bytes,
    Integer,
    Float,
    Numeric,
    BigNumeric,
    Boolean,
    Timestamp,
    Date,
    Time,
    Datetime,
    Geography,
    Json,
    Record,
}

impl FieldType {
    /// The type that holds values of both, as schema auto-detection widens a column: INTEGER and FLOAT to FLOAT,
    /// DATE and TIMESTAMP to TIMESTAMP, anything else that differs to STRING.
    pub fn widen(self, seen: FieldType) -> FieldType {
        match (self, seen) {
            (a, b) if a == b => a,
            (FieldType::Integer, FieldType::Float) | (FieldType::Float, FieldType::Integer) => FieldType::Float,
            (FieldType::Date, FieldType::Timestamp) | (FieldType::Timestamp, FieldType::Date) => FieldType::Timestamp,
            _ => FieldType::String,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "STRING" => Self::String,
            "BYTES" => Self::Bytes,
            "INTEGER" | "INT64" => Self::Integer,
            "FLOAT" | "FLOAT64" => Self::Float,
            "NUMERIC" | "DECIMAL" => Self::Numeric,
            "BIGNUMERIC" | "BIGDECIMAL" => Self::BigNumeric,
            "BOOLEAN" | "BOOL" => Self::Boolean,
            "TIMESTAMP" => Self::Timestamp,
            "DATE" => Self::Date,
            "TIME" => Self::Time,
            "DATETIME" => Self::Datetime,
            "GEOGRAPHY" => Self::Geography,
            "JSON" => Self::Json,
            "RECORD" | "STRUCT" => Self::Record,
            _ => return None,
        })
    }

    /// The spelling BigQuery answers with, whatever the client sent.
    pub fn legacy_name(self) -> &'static str {
        match self {
            Self::String => "STRING",
            Self::Bytes => "BYTES",
            Self::Integer => "INTEGER",
            Self::Float => "FLOAT",
            Self::Numeric => "NUMERIC",
            Self::BigNumeric => "BIGNUMERIC",
            Self::Boolean => "BOOLEAN",
            Self::Timestamp => "TIMESTAMP",
            Self::Date => "DATE",
            Self::Time => "TIME",
            Self::Datetime => "DATETIME",
            Self::Geography => "GEOGRAPHY",
            Self::Json => "JSON",
            Self::Record => "RECORD",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Nullable,
    Required,
    Repeated,
}

impl Mode {
    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "NULLABLE" => Self::Nullable,
            "REQUIRED" => Self::Required,
            "REPEATED" => Self::Repeated,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Nullable => "NULLABLE",
            Self::Required => "REQUIRED",
            Self::Repeated => "REPEATED",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub name: String,
    pub field_type: FieldType,
    pub mode: Mode,
    /// Sub-fields of a RECORD, empty otherwise.
    pub fields: Vec<Field>,
    pub description: Option<String>,
}

impl Field {
    pub fn new(name: &str, field_type: FieldType, mode: Mode) -> Self {
        Self { name: name.to_owned(), field_type, mode, fields: Vec::new(), description: None }
    }

    fn to_json(&self) -> Value {
        let mut field = json!({"name": self.name, "type": self.field_type.legacy_name(), "mode": self.mode.name()});
        if !self.fields.is_empty() {
            field["fields"] = Value::Array(self.fields.iter().map(Field::to_json).collect());
        }
        if let Some(description) = &self.description {
            field["description"] = Value::String(description.clone());
        }
        field
    }
}

/// An ordered list of columns. Stored rows are positional, so schema evolution only ever appends columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Schema {
    pub fields: Vec<Field>,
}

impl Schema {
    /// Parse `{"fields":[...]}` and apply BigQuery's naming and typing rules.
    pub fn from_json(value: &Value) -> Result<Self, ApiError> {
        let fields = parse_fields(Obj::new(value, "schema").array("fields")?, "")?;
        Ok(Self { fields })
    }

    pub fn to_json(&self) -> Value {
        json!({"fields": self.fields.iter().map(Field::to_json).collect::<Vec<_>>()})
    }

    /// Column names are case-insensitive in BigQuery.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        index_of(&self.fields, name)
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.index_of(name).map(|index| &self.fields[index])
    }

    /// The schema after a client proposes `proposed` for a table that has `self`. Existing columns keep their
    /// position; additions go at the end.
    pub fn evolve(&self, proposed: &Schema, table: &str, options: Evolution) -> Result<Schema, String> {
        evolve_fields(&self.fields, &proposed.fields, table, options).map(|fields| Schema { fields })
    }
}

pub(crate) fn index_of(fields: &[Field], name: &str) -> Option<usize> {
    fields
        .iter()
        .position(|field| field.name == name)
        .or_else(|| fields.iter().position(|field| field.name.eq_ignore_ascii_case(name)))
}

/// What a schema change may do: `schemaUpdateOptions` for load jobs, always both for `tables.patch`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Evolution {
    pub allow_addition: bool,
    pub allow_relaxation: bool,
}

fn evolve_fields(
    existing: &[Field],
    proposed: &[Field],
    table: &str,
    options: Evolution,
) -> Result<Vec<Field>, String> {
    let mismatch = |detail: String| format!("Provided Schema does not match Table {table}. {detail}");
    let mut result = Vec::with_capacity(proposed.len().max(existing.len()));
    for old in existing {
        let Some(new) = index_of(proposed, &old.name).map(|index| &proposed[index]) else {
            return Err(mismatch(format!("Field {} is missing in new schema", old.name)));
        };
        if new.field_type != old.field_type {
            return Err(mismatch(format!(
                "Field {} has changed type from {} to {}",
                old.name,
                old.field_type.legacy_name(),
                new.field_type.legacy_name()
            )));
        }
        let relaxed = old.mode == Mode::Required && new.mode == Mode::Nullable;
        if new.mode != old.mode && !(relaxed && options.allow_relaxation) {
            return Err(mismatch(format!(
                "Field {} has changed mode from {} to {}",
                old.name,
                old.mode.name(),
                new.mode.name()
            )));
        }
        let mut kept = old.clone();
        kept.mode = new.mode;
        if old.field_type == FieldType::Record {
            kept.fields = evolve_fields(&old.fields, &new.fields, table, options)?;
        }
        if new.description.is_some() {
            kept.description.clone_from(&new.description);
        }
        result.push(kept);
    }
    for new in proposed {
        if index_of(existing, &new.name).is_some() {
            continue;
        }
        if !options.allow_addition {
            return Err(mismatch(format!("Cannot add fields (field: {})", new.name)));
        }
        if new.mode == Mode::Required {
            return Err(format!("Cannot add required fields to an existing schema. (field: {})", new.name));
        }
        result.push(new.clone());
    }
    Ok(result)
}

fn parse_fields(items: &[Value], parent: &str) -> Result<Vec<Field>, ApiError> {
    let mut fields: Vec<Field> = Vec::with_capacity(items.len());
    for item in items {
        let obj = Obj::new(item, "schema.fields");
        let name = obj.str("name")?.ok_or_else(|| ApiError::invalid("Empty field name"))?;
        if !valid_field_name(name) {
            return Err(ApiError::invalid(format!(
                "Invalid field name \"{name}\". Fields must contain only letters, numbers, and underscores, start \
                 with a letter or underscore, and be at most 300 characters long."
            )));
        }
        if index_of(&fields, name).is_some() {
            return Err(ApiError::invalid(format!("Field {parent}{name} already exists in schema")));
        }
        let type_name =
            obj.str("type")?.ok_or_else(|| ApiError::invalid(format!("Field {parent}{name} has no type")))?;
        let field_type = FieldType::parse(type_name)
            .ok_or_else(|| ApiError::invalid(format!("Invalid value for type: {type_name} is not a valid value")))?;
        let mode = match obj.str("mode")? {
            None => Mode::Nullable,
            Some(text) => Mode::parse(text)
                .ok_or_else(|| ApiError::invalid(format!("Invalid value for mode: {text} is not a valid value")))?,
        };
        let sub = obj.array("fields")?;
        let sub_fields = if field_type == FieldType::Record {
            if sub.is_empty() {
                return Err(ApiError::invalid(format!("Field {parent}{name} is type RECORD but has no schema")));
            }
            parse_fields(sub, &format!("{parent}{name}."))?
        } else {
            Vec::new()
        };
        fields.push(Field {
            name: name.to_owned(),
            field_type,
            mode,
            fields: sub_fields,
            description: obj.str("description")?.map(str::to_owned),
        });
    }
    Ok(fields)
}

fn valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_');
    first_ok && name.len() <= 300 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How a partitioned table splits its rows into partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionUnit {
    Hour,
    Day,
    Month,
    Year,
}

impl PartitionUnit {
    pub fn name(self) -> &'static str {
        match self {
            Self::Hour => "HOUR",
            Self::Day => "DAY",
            Self::Month => "MONTH",
            Self::Year => "YEAR",
        }
    }

    /// The chrono format of a partition id: `20240601` for DAY.
    pub fn id_format(self) -> &'static str {
        match self {
            Self::Hour => "%Y%m%d%H",
            Self::Day => "%Y%m%d",
            Self::Month => "%Y%m",
            Self::Year => "%Y",
        }
    }

    /// Whether `id` is a well-formed partition id of this unit (the part after `$` in a decorator).
    pub fn is_valid_id(self, id: &str) -> bool {
        if id == NULL_PARTITION {
            return true;
        }
        if !id.bytes().all(|byte| byte.is_ascii_digit()) {
            return false;
        }
        // All digits, so byte slicing cannot split a character.
        let (day, hour) = match (self, id.len()) {
            (Self::Hour, 10) => (id[..8].to_owned(), &id[8..]),
            (Self::Day, 8) => (id.to_owned(), "00"),
            (Self::Month, 6) => (format!("{id}01"), "00"),
            (Self::Year, 4) => (format!("{id}0101"), "00"),
            _ => return false,
        };
        chrono::NaiveDate::parse_from_str(&day, "%Y%m%d").is_ok() && hour.parse::<u32>().is_ok_and(|hour| hour < 24)
    }
}

/// The partition id of rows whose partitioning column is NULL.
pub(crate) const NULL_PARTITION: &str = "__NULL__";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimePartitioning {
    pub unit: PartitionUnit,
    /// The partitioning column; `None` means ingestion-time partitioning (`_PARTITIONTIME`).
    pub field: Option<String>,
    pub expiration_ms: Option<i64>,
    pub require_partition_filter: Option<bool>,
}

impl TimePartitioning {
    pub fn from_json(value: &Value) -> Result<Self, ApiError> {
        let obj = Obj::new(value, "timePartitioning");
        let unit = match obj.enum_value("type")?.as_deref() {
            Some("DAY") => PartitionUnit::Day,
            Some("HOUR") => PartitionUnit::Hour,
            Some("MONTH") => PartitionUnit::Month,
            Some("YEAR") => PartitionUnit::Year,
            Some(other) => {
                return Err(ApiError::invalid(format!("Invalid value for type: {other} is not a valid value")));
            }
            None => {
                return Err(ApiError::invalid("Partitioning specification must have a type"));
            }
        };
        Ok(Self {
            unit,
            field: obj.str("field")?.map(str::to_owned),
            expiration_ms: obj.i64("expirationMs")?,
            require_partition_filter: obj.bool("requirePartitionFilter")?,
        })
    }

    pub fn to_json(&self) -> Value {
        let mut value = json!({"type": self.unit.name()});
        if let Some(field) = &self.field {
            value["field"] = Value::String(field.clone());
        }
        if let Some(expiration) = self.expiration_ms {
            value["expirationMs"] = Value::String(expiration.to_string());
        }
        if let Some(required) = self.require_partition_filter {
            value["requirePartitionFilter"] = Value::Bool(required);
        }
        value
    }

    /// The column must be a top-level DATE, TIMESTAMP or DATETIME.
    pub fn validate(&self, schema: &Schema) -> Result<(), String> {
        let Some(name) = &self.field else {
            return Ok(());
        };
        let Some(field) = schema.field(name) else {
            return Err("The field specified for partitioning cannot be found in the schema".into());
        };
        if field.mode == Mode::Repeated
            || !matches!(field.field_type, FieldType::Date | FieldType::Timestamp | FieldType::Datetime)
        {
            return Err(format!(
                "The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The \
                 type found is: {}.",
                field.field_type.legacy_name()
            ));
        }
        if field.field_type == FieldType::Date && self.unit == PartitionUnit::Hour {
            return Err("HOUR partitioning is not supported for a DATE partitioning column".into());
        }
        Ok(())
    }

    /// Same partitioning scheme (type and column); expiration may differ.
    pub fn same_scheme(&self, other: &Self) -> bool {
        self.unit == other.unit
            && match (&self.field, &other.field) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            }
    }

    /// BigQuery's words for a scheme, as in "Incompatible table partitioning specification".
    pub fn describe(&self) -> String {
        match &self.field {
            Some(field) => format!("interval(type:{},field:{field})", self.unit.name().to_ascii_lowercase()),
            None => format!("interval(type:{})", self.unit.name().to_ascii_lowercase()),
        }
    }
}

/// At most four top-level clustering columns.
pub(crate) fn parse_clustering(value: &Value) -> Result<Vec<String>, ApiError> {
    let obj = Obj::new(value, "clustering");
    obj.array("fields")?
        .iter()
        .map(|field| {
            field.as_str().map(str::to_owned).ok_or_else(|| ApiError::invalid("Clustering fields must be strings"))
        })
        .collect()
}

pub(crate) fn validate_clustering(fields: &[String], schema: &Schema) -> Result<(), String> {
    if fields.len() > 4 {
        return Err(format!(
            "Too many clustering fields: {}. Only up to 4 clustering fields are allowed.",
            fields.len()
        ));
    }
    for name in fields {
        let Some(field) = schema.field(name) else {
            return Err(format!(
                "The field specified for clustering cannot be found in the schema.  Invalid field: {name}."
            ));
        };
        if field.mode == Mode::Repeated
            || matches!(field.field_type, FieldType::Float | FieldType::Record | FieldType::Json)
        {
            return Err(format!(
                "Field {name} is of type {} which is not supported for clustering",
                if field.mode == Mode::Repeated { "ARRAY" } else { field.field_type.legacy_name() }
            ));
        }
    }
    Ok(())
}

pub(crate) fn clustering_json(fields: &[String]) -> Value {
    json!({"fields": fields})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(value: &Value) -> Schema {
        Schema::from_json(value).expect("a valid schema")
    }

    #[test]
    fn standard_sql_type_names_come_back_in_legacy_spelling() {
        let parsed = schema(&json!({"fields":[
            {"name":"a","type":"INT64"},{"name":"b","type":"FLOAT64"},{"name":"c","type":"BOOL"},
            {"name":"d","type":"STRUCT","fields":[{"name":"x","type":"string","mode":"required"}]}]}));
        assert_eq!(
            parsed.to_json(),
            json!({"fields":[
                {"name":"a","type":"INTEGER","mode":"NULLABLE"},{"name":"b","type":"FLOAT","mode":"NULLABLE"},
                {"name":"c","type":"BOOLEAN","mode":"NULLABLE"},
                {"name":"d","type":"RECORD","mode":"NULLABLE","fields":[{"name":"x","type":"STRING","mode":"REQUIRED"}]}]})
        );
    }

    #[test]
    fn duplicate_and_badly_named_columns_are_rejected() {
        assert!(
            Schema::from_json(&json!({"fields":[{"name":"a","type":"STRING"},{"name":"A","type":"STRING"}]})).is_err()
        );
        assert!(Schema::from_json(&json!({"fields":[{"name":"1a","type":"STRING"}]})).is_err());
        assert!(Schema::from_json(&json!({"fields":[{"name":"a","type":"WHATEVER"}]})).is_err());
    }

    #[test]
    fn evolution_appends_new_columns_and_refuses_type_changes() {
        let old = schema(&json!({"fields":[{"name":"a","type":"INTEGER","mode":"REQUIRED"}]}));
        let added =
            schema(&json!({"fields":[{"name":"b","type":"STRING"},{"name":"a","type":"INTEGER","mode":"REQUIRED"}]}));
        let both = Evolution { allow_addition: true, allow_relaxation: true };
        let evolved = old.evolve(&added, "p:d.t", both).expect("addition allowed");
        assert_eq!(evolved.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(old.evolve(&added, "p:d.t", Evolution::default()).is_err());
        let retyped = schema(&json!({"fields":[{"name":"a","type":"STRING","mode":"REQUIRED"}]}));
        assert_eq!(
            old.evolve(&retyped, "p:d.t", both),
            Err("Provided Schema does not match Table p:d.t. Field a has changed type from INTEGER to STRING".into())
        );
    }

    #[test]
    fn partition_ids_are_checked_against_the_unit() {
        assert!(PartitionUnit::Day.is_valid_id("20240601"));
        assert!(!PartitionUnit::Day.is_valid_id("20240631"));
        assert!(!PartitionUnit::Day.is_valid_id("2024060"));
        assert!(PartitionUnit::Hour.is_valid_id("2024060123"));
        assert!(!PartitionUnit::Hour.is_valid_id("2024060124"));
        assert!(PartitionUnit::Month.is_valid_id("202406"));
        assert!(PartitionUnit::Year.is_valid_id("2024"));
    }
}
