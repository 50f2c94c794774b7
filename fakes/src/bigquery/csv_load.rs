//! CSV load data: `configuration.load`'s CSV options, the rows of a CSV file against a schema (by position, as
//! BigQuery reads CSV), BigQuery's messages for a bad row (the byte position and line of the row, the column's
//! name and position), and schema auto-detection from a header row and the values under it.

use serde_json::{Map, Value as Json};

use super::errors::{ApiError, ErrorProto};
use super::schema::{Field, FieldType, Mode, Schema};
use super::values::{Value, parse_row, parse_timestamp};
use super::wire::Obj;

/// The CSV options of a load job, with BigQuery's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CsvOptions {
    pub skip_leading_rows: u64,
    pub delimiter: u8,
    /// `None`: quoting off (`quote: ""`).
    pub quote: Option<u8>,
    /// A cell equal to it is NULL (default: the empty cell).
    pub null_marker: String,
    pub allow_jagged_rows: bool,
    pub allow_quoted_newlines: bool,
}

impl CsvOptions {
    pub fn parse(load: Obj<'_>) -> Result<CsvOptions, ApiError> {
        let single_byte = |name: &str, text: &str| -> Result<u8, ApiError> {
            match text {
                "\\t" | "tab" | "TAB" => Ok(b'\t'),
                _ if text.len() == 1 => Ok(text.as_bytes()[0]),
                _ => Err(ApiError::invalid(format!(
                    "Invalid value for {name}: {text:?}; the fake BigQuery takes a single-byte character"
                ))),
            }
        };
        let skip = load.i64("skipLeadingRows")?.unwrap_or(0);
        Ok(CsvOptions {
            skip_leading_rows: u64::try_from(skip)
                .map_err(|_| ApiError::invalid(format!("Invalid value for skipLeadingRows: {skip}")))?,
            delimiter: match load.str("fieldDelimiter")? {
                None => b',',
                Some(text) => single_byte("fieldDelimiter", text)?,
            },
            quote: match load.str("quote")? {
                None => Some(b'"'),
                Some("") => None,
                Some(text) => Some(single_byte("quote", text)?),
            },
            null_marker: load.str("nullMarker")?.unwrap_or_default().to_owned(),
            allow_jagged_rows: load.bool("allowJaggedRows")?.unwrap_or(false),
            allow_quoted_newlines: load.bool("allowQuotedNewlines")?.unwrap_or(false),
        })
    }

    fn reader<'a>(&self, data: &'a [u8]) -> csv::Reader<&'a [u8]> {
        let mut builder = csv::ReaderBuilder::new();
        builder.has_headers(false).flexible(true).delimiter(self.delimiter);
        match self.quote {
            Some(quote) => builder.quote(quote),
            None => builder.quoting(false),
        };
        builder.from_reader(data)
    }
}

/// The rows of a CSV load: values, errors (BigQuery's `ErrorProto`s) and the rows read.
pub(crate) struct CsvRows {
    pub rows: Vec<Vec<Value>>,
    pub errors: Vec<ErrorProto>,
    pub lines: u64,
}

const FILE: &str = "file-00000000";

fn problem(message: &str) -> ErrorProto {
    ErrorProto::new("invalid", format!("Error while reading data, error message: {message} File: {FILE}")).at(FILE)
}

/// Reads `data` against `schema`: cell `i` is field `i`; a cell equal to the null marker is NULL.
pub(crate) fn parse_csv(data: &[u8], schema: &Schema, options: &CsvOptions, ignore_unknown: bool) -> CsvRows {
    let mut out = CsvRows { rows: Vec::new(), errors: Vec::new(), lines: 0 };
    if let Some(field) = schema.fields.iter().find(|f| f.field_type == FieldType::Record || f.mode == Mode::Repeated) {
        out.errors.push(problem(&format!(
            "CSV cannot load the {} {} field {}: use NEWLINE_DELIMITED_JSON.",
            field.mode.name(),
            field.field_type.legacy_name(),
            field.name
        )));
        return out;
    }
    let mut reader = options.reader(data);
    let mut record = csv::ByteRecord::new();
    let mut line: u64 = 0;
    loop {
        let start = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => {
                line += 1;
                out.lines += 1;
                out.errors.push(problem(&format!(
                    "Error detected while parsing row starting at position: {start} (line {line}): {err}."
                )));
                continue;
            }
        }
        line += 1;
        if line <= options.skip_leading_rows || (record.len() == 1 && record[0].is_empty()) {
            continue;
        }
        if !options.allow_quoted_newlines && record.iter().any(|cell| cell.contains(&b'\n')) {
            out.lines += 1;
            out.errors.push(problem(&format!(
                "Error detected while parsing row starting at position: {start} (line {line}). Error: Missing close double quote (\") character."
            )));
            continue;
        }
        out.lines += 1;
        match row(&record, schema, options, ignore_unknown) {
            Ok(values) => out.rows.push(values),
            Err(message) => out.errors.push(problem(&format!("{message} starting at position: {start} (line {line})"))),
        }
    }
    out
}

fn row(
    record: &csv::ByteRecord,
    schema: &Schema,
    options: &CsvOptions,
    ignore_unknown: bool,
) -> Result<Vec<Value>, String> {
    let fields = &schema.fields;
    if record.len() > fields.len() && !ignore_unknown {
        return Err(format!("Too many values in row ({} columns, the schema has {})", record.len(), fields.len()));
    }
    if record.len() < fields.len() && !options.allow_jagged_rows {
        return Err(format!(
            "CSV table references column position {}, but the row contains only {} columns",
            fields.len() - 1,
            record.len()
        ));
    }
    let mut object = Map::new();
    let mut texts = Vec::with_capacity(fields.len());
    for (position, field) in fields.iter().enumerate() {
        let Some(cell) = record.get(position) else { break };
        let text = String::from_utf8(cell.to_vec())
            .map_err(|_| format!("Bad character (not UTF-8) in column {} ({})", position, field.name))?;
        if text != options.null_marker {
            object.insert(field.name.clone(), Json::String(text.clone()));
        }
        texts.push(text);
    }
    parse_row(&object, fields, false).map_err(|error| {
        match fields.iter().position(|f| f.name.eq_ignore_ascii_case(&error.location)) {
            Some(position) if position < texts.len() && texts[position] != options.null_marker => format!(
                "Could not parse '{}' as {} for field {} (position {position})",
                texts[position],
                fields[position].field_type.legacy_name(),
                fields[position].name
            ),
            _ => error.message,
        }
    })
}

/// Auto-detection: column names from the first row when it looks like a header (every cell a name while a later
/// row has a number, a boolean or a date under it, or `skipLeadingRows` asks for it), else `string_field_N`; types
/// from up to 500 rows (INTEGER, FLOAT, BOOLEAN, DATE, TIMESTAMP, else STRING), widened as for JSON. The header,
/// when detected, is then skipped.
pub(crate) fn infer_schema(data: &[u8], options: &mut CsvOptions) -> Schema {
    let mut reader = options.reader(data);
    let rows: Vec<Vec<String>> = reader
        .byte_records()
        .filter_map(Result::ok)
        .take(501)
        .map(|r| r.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect())
        .filter(|r: &Vec<String>| !(r.len() == 1 && r[0].is_empty()))
        .collect();
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let typed = |rows: &[Vec<String>]| -> Vec<FieldType> {
        (0..width)
            .map(|i| {
                rows.iter()
                    .filter_map(|r| r.get(i))
                    .filter(|cell| **cell != options.null_marker)
                    .map(|cell| detect(cell))
                    .reduce(FieldType::widen)
                    .unwrap_or(FieldType::String)
            })
            .collect()
    };
    let skip = usize::try_from(options.skip_leading_rows).unwrap_or(usize::MAX).min(rows.len());
    let body_types = typed(&rows[skip.max(1).min(rows.len())..]);
    let header_like = rows.first().is_some_and(|first| {
        first.iter().all(|cell| detect(cell) == FieldType::String && !cell.is_empty())
            && body_types.iter().any(|t| *t != FieldType::String)
    });
    let header = (skip >= 1 || header_like).then(|| rows.first().cloned()).flatten();
    if header.is_some() && skip == 0 {
        options.skip_leading_rows = 1;
    }
    let types = if header.is_some() { body_types } else { typed(&rows) };
    let fields = types
        .into_iter()
        .enumerate()
        .map(|(i, field_type)| {
            let name = header
                .as_ref()
                .and_then(|h| h.get(i))
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("string_field_{i}"));
            Field::new(&name, field_type, Mode::Nullable)
        })
        .collect();
    Schema { fields }
}

fn detect(cell: &str) -> FieldType {
    let cell = cell.trim();
    if cell.parse::<i64>().is_ok() {
        FieldType::Integer
    } else if cell.parse::<f64>().is_ok_and(f64::is_finite) {
        FieldType::Float
    } else if cell.eq_ignore_ascii_case("true") || cell.eq_ignore_ascii_case("false") {
        FieldType::Boolean
    } else if chrono::NaiveDate::parse_from_str(cell, "%Y-%m-%d").is_ok() {
        FieldType::Date
    } else if cell.len() > 10 && parse_timestamp(cell).is_some() {
        FieldType::Timestamp
    } else {
        FieldType::String
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema {
            fields: vec![
                Field::new("day", FieldType::Date, Mode::Required),
                Field::new("symbol", FieldType::String, Mode::Nullable),
                Field::new("close", FieldType::Float, Mode::Nullable),
                Field::new("trades", FieldType::Integer, Mode::Nullable),
            ],
        }
    }

    fn options() -> CsvOptions {
        CsvOptions {
            skip_leading_rows: 1,
            delimiter: b',',
            quote: Some(b'"'),
            null_marker: String::new(),
            allow_jagged_rows: false,
            allow_quoted_newlines: false,
        }
    }

    #[test]
    fn rows_are_read_by_position_with_quotes_and_nulls() {
        let data = b"day,symbol,close,trades\n2024-06-03,\"BTC,USDT\",67000.5,12\n2024-06-03,ETHUSDT,,3\n";
        let parsed = parse_csv(data, &schema(), &options(), false);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.lines, 2);
        assert_eq!(parsed.rows[0][1], Value::String("BTC,USDT".to_owned()));
        assert_eq!(parsed.rows[0][3], Value::Integer(12));
        assert_eq!(parsed.rows[1][2], Value::Null);
    }

    #[test]
    fn a_bad_cell_names_the_row_and_the_column() {
        let data = b"day,symbol,close,trades\n2024-06-03,BTCUSDT,1.5,12\n2024-06-03,ETHUSDT,2.5,many\n2024-06-03,X\n";
        let parsed = parse_csv(data, &schema(), &options(), false);
        assert_eq!(parsed.rows.len(), 1);
        let messages: Vec<&str> = parsed.errors.iter().map(|e| e.message.as_str()).collect();
        assert!(
            messages[0].contains(
                "Could not parse 'many' as INTEGER for field trades (position 3) starting at position: 50 (line 3)"
            ),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("references column position 3, but the row contains only 2 columns"),
            "{messages:?}"
        );
        assert!(messages[1].contains("(line 4)"), "{messages:?}");
    }

    #[test]
    fn other_delimiters_and_null_markers_are_honoured() {
        let mut options = options();
        options.delimiter = b'\t';
        options.null_marker = "\\N".to_owned();
        let parsed = parse_csv(b"h\th\th\th\n2024-06-03\t\\N\t1\t2\n", &schema(), &options, false);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.rows[0][1], Value::Null);
    }

    #[test]
    fn autodetect_reads_a_header_and_types_the_columns_under_it() {
        let mut options = options();
        options.skip_leading_rows = 0;
        let schema = infer_schema(
            b"day,symbol,close,trades,ok\n2024-06-03,BTCUSDT,1.5,12,true\n2024-06-04,ETH,2,3,false\n",
            &mut options,
        );
        let fields: Vec<(String, &str)> =
            schema.fields.iter().map(|f| (f.name.clone(), f.field_type.legacy_name())).collect();
        let expected =
            [("day", "DATE"), ("symbol", "STRING"), ("close", "FLOAT"), ("trades", "INTEGER"), ("ok", "BOOLEAN")];
        assert_eq!(fields, expected.map(|(n, t)| (n.to_owned(), t)));
        assert_eq!(options.skip_leading_rows, 1, "the detected header is skipped");
        let mut options = CsvOptions { skip_leading_rows: 0, ..options };
        let headless = infer_schema(b"1,a\n2,b\n", &mut options);
        assert_eq!(headless.fields[0].name, "string_field_0");
        assert_eq!(options.skip_leading_rows, 0);
    }
}
