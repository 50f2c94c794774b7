//! The engine over an in-memory catalog: results, types and errors of the supported subset.

use chrono::NaiveDate;

use super::super::schema::{Field, FieldType, Mode};
use super::super::values::Value;
use super::*;

struct Memory {
    fields: Vec<Field>,
    rows: Vec<(Option<String>, Vec<Value>)>,
    streaming: bool,
}

impl Catalog for Memory {
    fn table(&self, project: &str, dataset: &str, table: &str) -> Option<TableView<'_>> {
        (project == "p" && dataset == "d" && table == "candles").then(|| self.view())
    }

    fn has_dataset(&self, project: &str, dataset: &str) -> bool {
        project == "p" && dataset == "d"
    }

    fn tables(&self, project: &str, dataset: &str) -> Vec<TableView<'_>> {
        if self.has_dataset(project, dataset) { vec![self.view()] } else { Vec::new() }
    }
}

impl Memory {
    fn view(&self) -> TableView<'_> {
        TableView {
            project: "p",
            dataset: "d",
            table: "candles",
            fields: &self.fields,
            partitioning: Some(("DAY", Some("open_time"))),
            clustering: &[],
            created_ms: 1_000,
            modified_ms: 2_000,
            rows: self.rows.iter().map(|(partition, values)| (partition.as_deref(), values.as_slice())).collect(),
            streaming: self.streaming,
        }
    }
}

const DAY1: i64 = 1_717_372_800_000_000; // 2024-06-03T00:00:00Z
const MINUTE: i64 = 60_000_000;

fn market() -> Memory {
    let fields = vec![
        Field::new("symbol", FieldType::String, Mode::Required),
        Field::new("open_time", FieldType::Timestamp, Mode::Required),
        Field::new("close", FieldType::Float, Mode::Nullable),
        Field::new("trades", FieldType::Integer, Mode::Nullable),
        Field::new("notional", FieldType::Numeric, Mode::Nullable),
    ];
    let row = |symbol: &str, at: i64, close: f64, trades: i64, notional: &str| {
        let partition = if at >= DAY1 + 1440 * MINUTE { "20240604" } else { "20240603" };
        (
            Some(partition.to_owned()),
            vec![
                Value::String(symbol.into()),
                Value::Timestamp(at),
                Value::Float(close),
                Value::Integer(trades),
                Value::String(notional.into()),
            ],
        )
    };
    Memory {
        fields,
        rows: vec![
            row("BTCUSDT", DAY1, 67_000.5, 10, "10.10"),
            row("BTCUSDT", DAY1 + MINUTE, 67_001.0, 5, "0.2"),
            row("ETHUSDT", DAY1, 3_500.25, 7, "1"),
            row("BTCUSDT", DAY1 + 1440 * MINUTE, 68_000.0, 3, "2.5"),
        ],
        streaming: false,
    }
}

fn request(sql: &str) -> Request<'_> {
    Request { sql, project: "p", default_dataset: None, parameters: Vec::new(), now_micros: DAY1 + 2 * 1440 * MINUTE }
}

fn rows(catalog: &Memory, sql: &str) -> ResultSet {
    match run(catalog, &request(sql)) {
        Ok(Outcome::Rows(result)) => result,
        other => panic!("{sql}: {other:?}"),
    }
}

fn error(catalog: &Memory, sql: &str) -> String {
    match run(catalog, &request(sql)) {
        Err(error) => format!("{}: {}", error.reason, error.message),
        Ok(outcome) => panic!("{sql} should fail, got {outcome:?}"),
    }
}

fn dml(catalog: &Memory, sql: &str) -> Mutation {
    match run(catalog, &request(sql)) {
        Ok(Outcome::Dml(_, mutation)) => mutation,
        other => panic!("{sql}: {other:?}"),
    }
}

fn date(text: &str) -> Value {
    Value::Date(NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date"))
}

#[test]
fn counts_per_day_with_group_by_order_by_and_backticked_names() {
    let market = market();
    let result = rows(
        &market,
        "SELECT DATE(open_time) AS day, COUNT(*) AS n, COUNT(DISTINCT symbol), SUM(trades) AS trades \
         FROM `p.d.candles` GROUP BY day ORDER BY day DESC",
    );
    let names: Vec<&str> = result.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["day", "n", "f0_", "trades"]);
    let types: Vec<FieldType> = result.fields.iter().map(|f| f.field_type).collect();
    assert_eq!(types, [FieldType::Date, FieldType::Integer, FieldType::Integer, FieldType::Integer]);
    assert_eq!(
        result.rows,
        vec![
            vec![date("2024-06-04"), Value::Integer(1), Value::Integer(1), Value::Integer(3)],
            vec![date("2024-06-03"), Value::Integer(3), Value::Integer(2), Value::Integer(22)],
        ]
    );
}

#[test]
fn where_having_limit_and_parameters() {
    let market = market();
    let mut request = request(
        "SELECT symbol, MIN(close) AS low, MAX(close) AS high, AVG(trades) AS mean FROM d.candles \
         WHERE open_time >= @start AND open_time < TIMESTAMP_ADD(@start, INTERVAL 1 DAY) \
         GROUP BY 1 HAVING COUNT(*) > 1 ORDER BY symbol LIMIT 5",
    );
    request.parameters = vec![Parameter {
        name: Some("start".into()),
        field: Field::new("start", FieldType::Timestamp, Mode::Nullable),
        value: Value::Timestamp(DAY1),
    }];
    let result = match run(&market, &request) {
        Ok(Outcome::Rows(result)) => result,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        result.rows,
        vec![vec![Value::String("BTCUSDT".into()), Value::Float(67_000.5), Value::Float(67_001.0), Value::Float(7.5),]]
    );
}

#[test]
fn numeric_stays_exact_and_int64_division_is_float64() {
    let market = market();
    let result = rows(&market, "SELECT SUM(notional) AS total, 7 / 2 AS half, DIV(7, 2) AS whole FROM d.candles");
    assert_eq!(result.fields[0].field_type, FieldType::Numeric);
    assert_eq!(result.rows[0], vec![Value::String("13.8".into()), Value::Float(3.5), Value::Integer(3)]);
}

#[test]
fn string_literals_coerce_to_dates_and_timestamps_but_types_do_not_mix() {
    let market = market();
    let result = rows(&market, "SELECT COUNT(*) FROM d.candles WHERE DATE(open_time) = '2024-06-03'");
    assert_eq!(result.rows, vec![vec![Value::Integer(3)]]);
    let result = rows(&market, "SELECT COUNT(*) FROM d.candles WHERE open_time < '2024-06-03 00:00:30 UTC'");
    assert_eq!(result.rows, vec![vec![Value::Integer(2)]]);
    let message = error(&market, "SELECT COUNT(*) FROM d.candles WHERE open_time = DATE '2024-06-03'");
    assert!(message.contains("No matching signature for operator = for argument types: TIMESTAMP, DATE"), "{message}");
}

#[test]
fn date_functions_truncate_extract_and_shift() {
    let market = market();
    let result = rows(
        &market,
        "SELECT TIMESTAMP_TRUNC(TIMESTAMP '2024-06-03 12:34:56', HOUR), EXTRACT(DAYOFWEEK FROM DATE '2024-06-03'), \
         DATE_SUB(DATE '2024-03-01', INTERVAL 1 DAY), CURRENT_DATE(), DATE_DIFF(DATE '2024-06-05', DATE '2024-06-03', DAY)",
    );
    assert_eq!(
        result.rows[0],
        vec![
            Value::Timestamp(DAY1 + 12 * 60 * MINUTE),
            Value::Integer(2),
            date("2024-02-29"),
            date("2024-06-05"),
            Value::Integer(2)
        ]
    );
}

#[test]
fn joins_with_and_union_all() {
    let market = market();
    let result = rows(
        &market,
        "WITH latest AS (SELECT symbol, MAX(open_time) AS last FROM d.candles GROUP BY symbol) \
         SELECT c.symbol, c.close FROM d.candles AS c JOIN latest ON c.symbol = latest.symbol AND c.open_time = latest.last \
         UNION ALL SELECT 'none', NULL ORDER BY 1",
    );
    assert_eq!(
        result.rows,
        vec![
            vec![Value::String("BTCUSDT".into()), Value::Float(68_000.0)],
            vec![Value::String("ETHUSDT".into()), Value::Float(3_500.25)],
            vec![Value::String("none".into()), Value::Null],
        ]
    );
    let left = rows(
        &market,
        "SELECT a.symbol, b.symbol FROM d.candles a LEFT JOIN (SELECT 'ETHUSDT' AS symbol) b USING (symbol) ORDER BY a.symbol, b.symbol",
    );
    assert_eq!(left.rows.iter().filter(|row| row[1] == Value::Null).count(), 3);
}

#[test]
fn unknown_names_and_unsupported_constructs_are_invalid_queries() {
    let market = market();
    assert!(error(&market, "SELECT nope FROM d.candles").starts_with("invalidQuery: Unrecognized name: nope at [1:8]"));
    assert!(error(&market, "SELECT symbol, COUNT(*) FROM d.candles").contains("neither grouped nor aggregated"));
    assert!(
        error(&market, "SELECT ROW_NUMBER() OVER () FROM d.candles").contains("is not supported by the fake BigQuery")
    );
    assert!(
        error(&market, "SELECT ARRAY_AGG(symbol) FROM d.candles").contains("The function ARRAY_AGG is not supported")
    );
    assert!(error(&market, "SELECT * FROM d.missing").starts_with("notFound: Not found: Table p:d.missing"));
    assert!(error(&market, "SELECT * FROM other.t").starts_with("notFound: Not found: Dataset p:other"));
    assert!(error(&market, "SELEC 1").starts_with("invalidQuery: Syntax error"));
    assert!(error(&market, "SELECT 1 / 0").contains("division by zero"));
    assert!(error(&market, "SELECT * FROM candles").contains("must be qualified with a dataset"));
}

#[test]
fn delete_update_insert_keep_partitions_and_count_rows() {
    let market = market();
    let deleted = dml(&market, "DELETE FROM d.candles WHERE DATE(open_time) = '2024-06-03'");
    assert_eq!((deleted.deleted, deleted.rows.len()), (3, 1));
    assert_eq!(deleted.rows[0].previous.as_deref(), Some("20240604"));
    assert!(!deleted.rows[0].changed);
    assert!(error(&market, "DELETE FROM d.candles").contains("DELETE must have a WHERE clause"));

    let updated = dml(&market, "UPDATE d.candles SET trades = trades + 1, close = 1 WHERE symbol = 'ETHUSDT'");
    assert_eq!(updated.updated, 1);
    let changed: Vec<_> = updated.rows.iter().filter(|row| row.changed).collect();
    assert_eq!(changed[0].values[2..4], [Value::Float(1.0), Value::Integer(8)]);
    assert!(
        error(&market, "UPDATE d.candles SET trades = 1.5 WHERE TRUE")
            .contains("Value of type FLOAT64 cannot be assigned to trades")
    );

    let inserted = dml(
        &market,
        "INSERT INTO d.candles (symbol, open_time, close) VALUES ('SOLUSDT', '2024-06-03 00:02:00', 150), \
         ('SOLUSDT', TIMESTAMP '2024-06-03 00:03:00', NULL)",
    );
    assert_eq!((inserted.inserted, inserted.rows.len()), (2, 6));
    assert_eq!(inserted.rows[4].values[2], Value::Float(150.0));
    assert!(error(&market, "INSERT INTO d.candles (symbol) VALUES ('x')").contains("Required column value"));
    let copied = dml(&market, "INSERT INTO d.candles SELECT * FROM d.candles WHERE symbol = 'ETHUSDT'");
    assert_eq!(copied.inserted, 1);
}

#[test]
fn merge_updates_matches_inserts_the_rest_and_refuses_ambiguous_matches() {
    let market = market();
    let merged = dml(
        &market,
        "MERGE d.candles T USING (SELECT 'BTCUSDT' AS symbol, TIMESTAMP '2024-06-03 00:00:00' AS open_time, 1.0 AS close \
         UNION ALL SELECT 'XRPUSDT', TIMESTAMP '2024-06-03 00:00:00', 0.5) S \
         ON T.symbol = S.symbol AND T.open_time = S.open_time \
         WHEN MATCHED THEN UPDATE SET close = S.close \
         WHEN NOT MATCHED THEN INSERT (symbol, open_time, close) VALUES (S.symbol, S.open_time, S.close)",
    );
    assert_eq!((merged.updated, merged.inserted, merged.deleted), (1, 1, 0));
    assert_eq!(merged.rows.len(), 5);
    let ambiguous =
        error(&market, "MERGE d.candles T USING d.candles S ON T.symbol = S.symbol WHEN MATCHED THEN DELETE");
    assert!(ambiguous.contains("must match at most one source row"), "{ambiguous}");
    let by_source = dml(
        &market,
        "MERGE d.candles T USING (SELECT 'ETHUSDT' AS symbol) S ON T.symbol = S.symbol \
         WHEN NOT MATCHED BY SOURCE AND DATE(T.open_time) = '2024-06-04' THEN DELETE",
    );
    assert_eq!((by_source.deleted, by_source.rows.len()), (1, 3));
}

#[test]
fn dml_refuses_the_streaming_buffer() {
    let mut market = market();
    market.streaming = true;
    assert!(error(&market, "DELETE FROM d.candles WHERE TRUE").contains("would affect rows in the streaming buffer"));
    assert_eq!(dml(&market, "INSERT INTO d.candles (symbol, open_time) VALUES ('A', CURRENT_TIMESTAMP())").inserted, 1);
}

#[test]
fn information_schema_lists_tables_columns_and_partitions() {
    let market = market();
    let tables = rows(&market, "SELECT table_name, table_type FROM d.INFORMATION_SCHEMA.TABLES");
    assert_eq!(tables.rows, vec![vec![Value::String("candles".into()), Value::String("BASE TABLE".into())]]);
    let columns = rows(
        &market,
        "SELECT column_name, data_type, is_partitioning_column FROM `p.d.INFORMATION_SCHEMA.COLUMNS` \
         WHERE table_name = 'candles' ORDER BY ordinal_position",
    );
    assert_eq!(columns.rows.len(), 5);
    assert_eq!(
        columns.rows[1],
        vec![Value::String("open_time".into()), Value::String("TIMESTAMP".into()), Value::String("YES".into())]
    );
    assert_eq!(columns.rows[2][1], Value::String("FLOAT64".into()));
    let partitions =
        rows(&market, "SELECT partition_id, total_rows FROM d.INFORMATION_SCHEMA.PARTITIONS ORDER BY partition_id");
    assert_eq!(
        partitions.rows,
        vec![
            vec![Value::String("20240603".into()), Value::Integer(3)],
            vec![Value::String("20240604".into()), Value::Integer(1)],
        ]
    );
    assert!(
        error(&market, "SELECT * FROM d.INFORMATION_SCHEMA.JOBS").contains("INFORMATION_SCHEMA.JOBS is not supported")
    );
}

#[test]
fn positional_and_array_parameters_bind() {
    let market = market();
    let mut request = request("SELECT COUNT(*) FROM d.candles WHERE symbol IN UNNEST(?) AND trades > ?");
    request.parameters = vec![
        Parameter {
            name: None,
            field: Field::new("a", FieldType::String, Mode::Repeated),
            value: Value::Repeated(vec![Value::String("ETHUSDT".into()), Value::String("BTCUSDT".into())]),
        },
        Parameter { name: None, field: Field::new("b", FieldType::Integer, Mode::Nullable), value: Value::Integer(4) },
    ];
    let Ok(Outcome::Rows(result)) = run(&market, &request) else { panic!("the query runs") };
    assert_eq!(result.rows, vec![vec![Value::Integer(3)]]);
    let missing = error(&market, "SELECT @missing");
    assert!(missing.contains("Query parameter 'missing' not found"), "{missing}");
}

#[test]
fn extreme_arguments_are_errors_or_nulls_never_panics() {
    let market = market();
    let result = rows(
        &market,
        "SELECT SUBSTR('abc', 2, 9223372036854775807), SAFE_CAST('1e-2147483648' AS NUMERIC), \
         SAFE_DIVIDE(1, 0), SAFE_CAST('x' AS INT64), CEIL(1.5), FLOOR(-1.5), TRIM('  x ')",
    );
    assert_eq!(
        result.rows[0],
        vec![
            Value::String("bc".into()),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Float(2.0),
            Value::Float(-2.0),
            Value::String("x".into())
        ]
    );
    for sql in [
        "SELECT TIMESTAMP_ADD(TIMESTAMP '2024-01-01', INTERVAL 9223372036854775807 MILLISECOND)",
        "SELECT DATE_ADD(DATE '2024-01-01', INTERVAL 9223372036854775807 DAY)",
        "SELECT 9223372036854775807 + 1",
        "SELECT -(-9223372036854775807 - 1)",
        "SELECT NUMERIC '99999999999999999999999999999' * 10",
        "SELECT TIMESTAMP_SECONDS(9223372036854775807)",
    ] {
        assert!(error(&market, sql).starts_with("invalidQuery"), "{sql}");
    }
}
