//! Typed cell values: parsing them from NDJSON or insertAll JSON against a schema, and encoding them back as
//! BigQuery's `{"v": "string"}` cells or as canonical JSON for test assertions. It does not know tables or jobs.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::{Map, Value as Json, json};

use super::schema::{Field, FieldType, Mode, NULL_PARTITION, PartitionUnit};

/// One stored value. Its column type comes from the schema, so NUMERIC, BYTES, GEOGRAPHY and JSON are kept as
/// their canonical text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Integer(i64),
    Float(f64),
    Boolean(bool),
    String(String),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    Date(NaiveDate),
    Time(NaiveTime),
    Datetime(NaiveDateTime),
    /// Sub-field values in the order of the RECORD's sub-fields.
    Record(Vec<Value>),
    Repeated(Vec<Value>),
}

/// Why a row was rejected: the column (dotted for nested fields) and BigQuery's words for the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowError {
    pub location: String,
    pub message: String,
}

impl RowError {
    fn new(location: &str, message: impl Into<String>) -> Self {
        Self { location: location.to_owned(), message: message.into() }
    }
}

/// Parse one JSON object into positional values for `fields`. Keys match columns case-insensitively; unknown
/// keys are an error unless `ignore_unknown`.
pub(crate) fn parse_row(
    object: &Map<String, Json>,
    fields: &[Field],
    ignore_unknown: bool,
) -> Result<Vec<Value>, RowError> {
    parse_record(object, fields, ignore_unknown, "")
}

fn parse_record(
    object: &Map<String, Json>,
    fields: &[Field],
    ignore_unknown: bool,
    prefix: &str,
) -> Result<Vec<Value>, RowError> {
    let mut values = vec![Value::Null; fields.len()];
    let mut seen = vec![false; fields.len()];
    for (key, raw) in object {
        let Some(index) = super::schema::index_of(fields, key) else {
            if ignore_unknown {
                continue;
            }
            let location = format!("{prefix}{key}");
            return Err(RowError::new(&location, format!("no such field: {location}.")));
        };
        seen[index] = true;
        values[index] = parse_field(raw, &fields[index], ignore_unknown, prefix)?;
    }
    for (index, field) in fields.iter().enumerate() {
        if seen[index] && values[index] != Value::Null {
            continue;
        }
        match field.mode {
            Mode::Required => {
                let location = format!("{prefix}{}", field.name);
                return Err(RowError::new(&location, format!("Missing required field: {location}.")));
            }
            Mode::Repeated => values[index] = Value::Repeated(Vec::new()),
            Mode::Nullable => {}
        }
    }
    Ok(values)
}

fn parse_field(raw: &Json, field: &Field, ignore_unknown: bool, prefix: &str) -> Result<Value, RowError> {
    let location = format!("{prefix}{}", field.name);
    if raw.is_null() {
        return Ok(Value::Null);
    }
    if field.mode == Mode::Repeated {
        let Json::Array(items) = raw else {
            return Err(RowError::new(&location, format!("Expected array for repeated field: {location}.")));
        };
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            if item.is_null() {
                return Err(RowError::new(
                    &location,
                    format!("Only optional fields can be set to NULL. Field: {location}; Value: NULL"),
                ));
            }
            values.push(parse_scalar_or_record(item, field, ignore_unknown, &location)?);
        }
        return Ok(Value::Repeated(values));
    }
    if raw.is_array() {
        return Err(RowError::new(&location, format!("Array specified for non-repeated field: {location}.")));
    }
    parse_scalar_or_record(raw, field, ignore_unknown, &location)
}

fn parse_scalar_or_record(raw: &Json, field: &Field, ignore_unknown: bool, location: &str) -> Result<Value, RowError> {
    let bad = || {
        let shown = match raw {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        };
        RowError::new(
            location,
            format!(
                "Could not convert value '{}' to {}. Field: {location}; Value: {shown}",
                describe_json(raw),
                type_word(field.field_type)
            ),
        )
    };
    let value = match field.field_type {
        FieldType::Record => {
            let Json::Object(object) = raw else {
                return Err(bad());
            };
            Value::Record(parse_record(object, &field.fields, ignore_unknown, &format!("{location}."))?)
        }
        FieldType::Integer => Value::Integer(parse_integer(raw).ok_or_else(bad)?),
        FieldType::Float => Value::Float(parse_float(raw).ok_or_else(bad)?),
        FieldType::Boolean => Value::Boolean(match raw {
            Json::Bool(flag) => *flag,
            Json::String(text) if text.eq_ignore_ascii_case("true") => true,
            Json::String(text) if text.eq_ignore_ascii_case("false") => false,
            _ => return Err(bad()),
        }),
        FieldType::String | FieldType::Geography => Value::String(match raw {
            Json::String(text) => text.clone(),
            Json::Number(number) => number.to_string(),
            Json::Bool(flag) => flag.to_string(),
            _ => return Err(bad()),
        }),
        FieldType::Bytes => match raw {
            Json::String(text) if text.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b)) => {
                Value::String(text.clone())
            }
            _ => return Err(bad()),
        },
        FieldType::Numeric | FieldType::BigNumeric => Value::String(parse_numeric(raw).ok_or_else(bad)?),
        FieldType::Json => Value::String(match raw {
            Json::String(text) => serde_json::from_str::<Json>(text).map_err(|_| bad())?.to_string(),
            other => other.to_string(),
        }),
        FieldType::Timestamp => Value::Timestamp(match raw {
            Json::String(text) => parse_timestamp(text).ok_or_else(bad)?,
            Json::Number(number) => epoch_seconds_to_micros(number).ok_or_else(bad)?,
            _ => return Err(bad()),
        }),
        FieldType::Date => match raw {
            Json::String(text) => Value::Date(NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| bad())?),
            _ => return Err(bad()),
        },
        FieldType::Time => match raw {
            Json::String(text) => {
                Value::Time(NaiveTime::parse_from_str(text.trim(), "%H:%M:%S%.f").map_err(|_| bad())?)
            }
            _ => return Err(bad()),
        },
        FieldType::Datetime => match raw {
            Json::String(text) => Value::Datetime(parse_datetime(text).ok_or_else(bad)?),
            _ => return Err(bad()),
        },
    };
    Ok(value)
}

fn type_word(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Integer => "integer",
        FieldType::Float => "double",
        FieldType::Boolean => "boolean",
        FieldType::Timestamp => "timestamp",
        FieldType::Date => "date",
        FieldType::Time => "time",
        FieldType::Datetime => "datetime",
        FieldType::Record => "record",
        FieldType::Numeric | FieldType::BigNumeric => "numeric",
        FieldType::Bytes => "bytes",
        FieldType::Json => "json",
        FieldType::String | FieldType::Geography => "string",
    }
}

/// BigQuery quotes the offending value the way its protobuf parser saw it.
fn describe_json(raw: &Json) -> String {
    match raw {
        Json::String(text) => format!("string_value: \"{text}\""),
        Json::Number(number) => format!("double_value: {number}"),
        Json::Bool(flag) => format!("bool_value: {flag}"),
        Json::Object(_) => "struct_value".into(),
        Json::Array(_) => "list_value".into(),
        Json::Null => "null_value: NULL_VALUE".into(),
    }
}

fn parse_integer(raw: &Json) -> Option<i64> {
    match raw {
        Json::Number(number) => number.as_i64().or_else(|| {
            number.as_f64().filter(|float| float.fract() == 0.0 && float.abs() < 9.2e18).map(|float| float as i64)
        }),
        Json::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn parse_float(raw: &Json) -> Option<f64> {
    match raw {
        Json::Number(number) => number.as_f64(),
        Json::String(text) => match text.trim() {
            "NaN" => Some(f64::NAN),
            "Infinity" | "inf" | "+inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other if other.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) && !other.is_empty() => {
                other.parse().ok()
            }
            _ => None,
        },
        _ => None,
    }
}

fn parse_numeric(raw: &Json) -> Option<String> {
    let text = match raw {
        Json::Number(number) => number.to_string(),
        Json::String(text) => text.trim().to_owned(),
        _ => return None,
    };
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(&text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    (digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty())).then_some(text)
}

fn epoch_seconds_to_micros(number: &serde_json::Number) -> Option<i64> {
    let micros = match number.as_i64() {
        Some(seconds) => seconds.checked_mul(1_000_000)?,
        None => {
            let seconds = number.as_f64()?;
            let micros = (seconds * 1e6).round();
            if !micros.is_finite() || micros.abs() > 2.6e17 {
                return None;
            }
            micros as i64
        }
    };
    in_timestamp_range(micros).then_some(micros)
}

/// 0001-01-01 00:00:00 to 9999-12-31 23:59:59.999999 UTC.
fn in_timestamp_range(micros: i64) -> bool {
    (-62_135_596_800_000_000..=253_402_300_799_999_999).contains(&micros)
}

/// The TIMESTAMP forms BigQuery accepts in JSON: RFC 3339 (`2024-06-01T00:01:00Z`, with fractions, with an
/// offset), `YYYY-MM-DD HH:MM:SS[.ffffff][ UTC]`, and a bare date (midnight UTC).
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let with_offset = ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f %#z"]
        .iter()
        .find_map(|format| DateTime::parse_from_str(text, format).ok());
    let micros = if let Some(parsed) = with_offset.or_else(|| DateTime::parse_from_rfc3339(text).ok()) {
        parsed.timestamp_micros()
    } else {
        let naive = text
            .strip_suffix(" UTC")
            .or_else(|| text.strip_suffix("UTC"))
            .or_else(|| text.strip_suffix('Z'))
            .or_else(|| text.strip_suffix('z'))
            .unwrap_or(text)
            .trim_end();
        parse_datetime(naive)?.and_utc().timestamp_micros()
    };
    in_timestamp_range(micros).then_some(micros)
}

fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|date| date.and_hms_opt(0, 0, 0)))
}

/// The partition id a value of the partitioning column puts its row in.
pub(crate) fn partition_id(value: &Value, unit: PartitionUnit) -> String {
    let instant = match value {
        Value::Timestamp(micros) => DateTime::from_timestamp_micros(*micros).map(|at| at.naive_utc()),
        Value::Date(date) => date.and_hms_opt(0, 0, 0),
        Value::Datetime(at) => Some(*at),
        _ => None,
    };
    instant.map_or_else(|| NULL_PARTITION.to_owned(), |at| at.format(unit.id_format()).to_string())
}

/// How values are written in `{"v": ..}` cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampFormat {
    /// Float seconds in Java's `Double.toString` form, e.g. `1.7172E9` (the REST default).
    FloatSeconds,
    /// Int64 microseconds, with `formatOptions.useInt64Timestamp=true`.
    Int64Micros,
}

/// A cell: every scalar is a string, NULL is `null`, RECORD is `{"f":[..]}`, REPEATED is `[{"v":..}]`.
pub(crate) fn cell(value: &Value, field: &Field, timestamps: TimestampFormat) -> Json {
    json!({"v": cell_value(value, field, timestamps)})
}

fn cell_value(value: &Value, field: &Field, timestamps: TimestampFormat) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Repeated(items) => {
            let element = Field { mode: Mode::Nullable, ..field.clone() };
            Json::Array(items.iter().map(|item| cell(item, &element, timestamps)).collect())
        }
        Value::Record(values) => json!({"f": record_cells(values, &field.fields, timestamps)}),
        Value::Timestamp(micros) => Json::String(match timestamps {
            TimestampFormat::Int64Micros => micros.to_string(),
            TimestampFormat::FloatSeconds => java_double(*micros as f64 / 1e6),
        }),
        scalar => Json::String(scalar_text(scalar)),
    }
}

/// Cells of a record in sub-field order; columns added after the row was written read as NULL.
pub(crate) fn record_cells(values: &[Value], fields: &[Field], timestamps: TimestampFormat) -> Vec<Json> {
    fields
        .iter()
        .enumerate()
        .map(|(index, field)| cell(values.get(index).unwrap_or(&Value::Null), field, timestamps))
        .collect()
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Integer(number) => number.to_string(),
        Value::Float(number) => java_double(*number),
        Value::Boolean(flag) => flag.to_string(),
        Value::String(text) => text.clone(),
        Value::Date(date) => date.format("%Y-%m-%d").to_string(),
        Value::Time(time) => format_time(*time),
        Value::Datetime(at) => format!("{}T{}", at.date().format("%Y-%m-%d"), format_time(at.time())),
        Value::Timestamp(micros) => micros.to_string(),
        Value::Null | Value::Record(_) | Value::Repeated(_) => String::new(),
    }
}

fn format_time(time: NaiveTime) -> String {
    let micros = time.nanosecond() / 1_000;
    if micros == 0 { time.format("%H:%M:%S").to_string() } else { format!("{}.{micros:06}", time.format("%H:%M:%S")) }
}

/// Java's `Double.toString`, which is what BigQuery's REST layer prints: plain between 1e-3 and 1e7, otherwise
/// `d.dddE±n`, always with a digit after the point.
pub(crate) fn java_double(number: f64) -> String {
    if number.is_nan() {
        return "NaN".into();
    }
    if number.is_infinite() {
        return if number > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let magnitude = number.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let plain = number.to_string();
        if plain.contains('.') { plain } else { format!("{plain}.0") }
    } else {
        let scientific = format!("{number:E}");
        match scientific.split_once('E') {
            Some((mantissa, exponent)) if !mantissa.contains('.') => {
                format!("{mantissa}.0E{exponent}")
            }
            _ => scientific,
        }
    }
}

/// Canonical JSON for test assertions: INTEGER and TIMESTAMP (microseconds) as JSON integers, FLOAT as a number
/// (non-finite ones as `"NaN"`, `"Infinity"`, `"-Infinity"`), DATE as `YYYY-MM-DD`, RECORD as an object.
pub(crate) fn canonical(value: &Value, field: &Field) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Integer(number) | Value::Timestamp(number) => Json::from(*number),
        Value::Float(number) if number.is_finite() => Json::from(*number),
        Value::Float(number) => Json::String(java_double(*number)),
        Value::Boolean(flag) => Json::Bool(*flag),
        Value::Record(values) => Json::Object(canonical_record(values, &field.fields)),
        Value::Repeated(items) => Json::Array(items.iter().map(|item| canonical(item, field)).collect()),
        scalar => Json::String(scalar_text(scalar)),
    }
}

pub(crate) fn canonical_record(values: &[Value], fields: &[Field]) -> Map<String, Json> {
    fields
        .iter()
        .enumerate()
        .map(|(index, field)| (field.name.clone(), canonical(values.get(index).unwrap_or(&Value::Null), field)))
        .collect()
}

/// BigQuery's logical size of a value, used for `numBytes` and `outputBytes`.
pub(crate) fn logical_bytes(value: &Value) -> u64 {
    match value {
        Value::Null => 0,
        Value::Boolean(_) => 1,
        Value::Integer(_)
        | Value::Float(_)
        | Value::Timestamp(_)
        | Value::Date(_)
        | Value::Time(_)
        | Value::Datetime(_) => 8,
        Value::String(text) => 2 + text.len() as u64,
        Value::Record(values) | Value::Repeated(values) => values.iter().map(logical_bytes).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn field(field_type: FieldType) -> Field {
        Field::new("c", field_type, Mode::Nullable)
    }

    fn parse(raw: &Json, field_type: FieldType) -> Result<Value, RowError> {
        let object = json!({"c": raw});
        let object = object.as_object().expect("built as an object");
        parse_row(object, &[field(field_type)], false).map(|mut values| values.remove(0))
    }

    #[rstest]
    #[case(json!(42), FieldType::Integer, Value::Integer(42))]
    #[case(json!("42"), FieldType::Integer, Value::Integer(42))]
    #[case(json!(1.5), FieldType::Float, Value::Float(1.5))]
    #[case(json!("2.5"), FieldType::Float, Value::Float(2.5))]
    #[case(json!("Infinity"), FieldType::Float, Value::Float(f64::INFINITY))]
    #[case(json!(true), FieldType::Boolean, Value::Boolean(true))]
    #[case(json!("true"), FieldType::Boolean, Value::Boolean(true))]
    #[case(json!("x"), FieldType::String, Value::String("x".into()))]
    #[case(json!("2024-06-01T00:01:00Z"), FieldType::Timestamp, Value::Timestamp(1_717_200_060_000_000))]
    #[case(json!("2024-06-01T00:01:00.25Z"), FieldType::Timestamp, Value::Timestamp(1_717_200_060_250_000))]
    #[case(json!("2024-06-01T02:01:00+02:00"), FieldType::Timestamp, Value::Timestamp(1_717_200_060_000_000))]
    #[case(json!("2024-06-01 00:01:00"), FieldType::Timestamp, Value::Timestamp(1_717_200_060_000_000))]
    #[case(json!("2024-06-01 00:01:00.000001 UTC"), FieldType::Timestamp, Value::Timestamp(1_717_200_060_000_001))]
    #[case(json!(1_717_200_060), FieldType::Timestamp, Value::Timestamp(1_717_200_060_000_000))]
    #[case(json!(1_717_200_060.5), FieldType::Timestamp, Value::Timestamp(1_717_200_060_500_000))]
    #[case(json!("2024-06-01"), FieldType::Date, Value::Date(NaiveDate::from_ymd_opt(2024, 6, 1).expect("a real date")))]
    #[case(json!(null), FieldType::Integer, Value::Null)]
    fn accepted_json_forms_parse_to_typed_values(
        #[case] raw: Json,
        #[case] field_type: FieldType,
        #[case] expected: Value,
    ) {
        assert_eq!(parse(&raw, field_type), Ok(expected));
    }

    #[rstest]
    #[case(json!("abc"), FieldType::Integer)]
    #[case(json!(1.5), FieldType::Integer)]
    #[case(json!("yes"), FieldType::Boolean)]
    #[case(json!("June 1st"), FieldType::Timestamp)]
    #[case(json!("2024-13-01"), FieldType::Date)]
    #[case(json!({"a": 1}), FieldType::String)]
    #[case(json!([1]), FieldType::Integer)]
    fn malformed_values_are_row_errors(#[case] raw: Json, #[case] field_type: FieldType) {
        let error = parse(&raw, field_type).expect_err("must be rejected");
        assert_eq!(error.location, "c");
    }

    #[test]
    fn unknown_and_missing_required_fields_are_row_errors() {
        let fields = [Field::new("a", FieldType::Integer, Mode::Required)];
        let unknown = json!({"a": 1, "b": 2});
        let unknown = unknown.as_object().expect("an object");
        assert_eq!(
            parse_row(unknown, &fields, false),
            Err(RowError { location: "b".into(), message: "no such field: b.".into() })
        );
        assert_eq!(parse_row(unknown, &fields, true), Ok(vec![Value::Integer(1)]));
        let missing = json!({});
        let missing = missing.as_object().expect("an object");
        assert_eq!(parse_row(missing, &fields, false).map_err(|e| e.message), Err("Missing required field: a.".into()));
    }

    #[rstest]
    #[case(1_717_200_000.0, "1.7172E9")]
    #[case(1_000_000_000.0, "1.0E9")]
    #[case(1_717_200_060.123_456, "1.717200060123456E9")]
    #[case(100.0, "100.0")]
    #[case(0.5, "0.5")]
    #[case(0.0001, "1.0E-4")]
    #[case(0.0, "0.0")]
    #[case(f64::NAN, "NaN")]
    #[case(f64::NEG_INFINITY, "-Infinity")]
    fn doubles_print_like_java(#[case] number: f64, #[case] expected: &str) {
        assert_eq!(java_double(number), expected);
    }

    #[test]
    fn cells_are_strings_and_timestamps_follow_the_format_option() {
        let ts = field(FieldType::Timestamp);
        let value = Value::Timestamp(1_717_200_000_000_000);
        assert_eq!(cell(&value, &ts, TimestampFormat::FloatSeconds), json!({"v": "1.7172E9"}));
        assert_eq!(cell(&value, &ts, TimestampFormat::Int64Micros), json!({"v": "1717200000000000"}));
        assert_eq!(
            cell(&Value::Integer(7), &field(FieldType::Integer), TimestampFormat::Int64Micros),
            json!({"v": "7"})
        );
        assert_eq!(cell(&Value::Null, &field(FieldType::Integer), TimestampFormat::Int64Micros), json!({"v": null}));
    }

    #[test]
    fn timestamps_partition_by_their_utc_date() {
        assert_eq!(partition_id(&Value::Timestamp(1_717_286_399_999_999), PartitionUnit::Day), "20240601");
        assert_eq!(partition_id(&Value::Timestamp(1_717_286_400_000_000), PartitionUnit::Day), "20240602");
        assert_eq!(partition_id(&Value::Null, PartitionUnit::Day), NULL_PARTITION);
    }
}
