//! The table contract judged on what landed: each table's schema, partitioning and clustering against the
//! documented layout (`pipeline::bigquery::schema`, README "Table layout"), every row of a date's partition in
//! that date, and every column of the instruments snapshot against the instruments the mock Tardis served.
//!
//! The expected instrument rows are built here from the generator's instruments by the documented rules, not by
//! the pipeline's own mapping, so a mistake in that mapping cannot hide in the truth.

use chrono::{DateTime, SecondsFormat};
use market::checks::{CheckOutcome, Family, Sample, Threshold};
use market::{Candle, Instrument, TradingDay};
use pipeline::bigquery::schema::{ColumnType, TableDef};
use serde_json::{Map, Value, json};

/// Ids of the contract's checks (also in `scoring::ids`, with the others).
pub mod ids {
    pub const INSTRUMENTS_EQUAL_TRUTH: &str = "consistency.instruments_equal_truth";
    pub const TABLES_MATCH_CONTRACT: &str = "consistency.tables_match_contract";
    pub const ROWS_IN_THEIR_DATE: &str = "consistency.rows_in_their_date";
}

/// A landed or expected row, as the fake BigQuery returns it: INTEGER and TIMESTAMP (microseconds) as JSON
/// integers, FLOAT as numbers, BOOLEAN as bools, STRING and DATE (`YYYY-MM-DD`) as strings, NULL as null.
pub type Row = Map<String, Value>;

/// The `instruments` row of `day` for an instrument the Tardis API lists: every column, with the table layout's
/// null rules (`contract_type`, `available_to` and `contract_multiplier` are NULL when Tardis omits them).
pub fn expected_instrument_row(instrument: &Instrument, day: TradingDay) -> Row {
    let row = json!({
        "date": day.to_string(),
        "exchange": instrument.exchange.as_str(),
        "id": instrument.id,
        "dataset_id": instrument.dataset_id.as_str(),
        "base_currency": instrument.base_currency,
        "quote_currency": instrument.quote_currency,
        "type": instrument.kind.as_str(),
        "contract_type": instrument.contract_type,
        "active": instrument.active,
        "available_since": instrument.available_since.timestamp_micros(),
        "available_to": instrument.available_to.map(|at| at.timestamp_micros()),
        "price_increment": instrument.price_increment,
        "amount_increment": instrument.amount_increment,
        "min_trade_amount": instrument.min_trade_amount,
        "inverse": instrument.inverse,
        "contract_multiplier": instrument.contract_multiplier,
    });
    match row {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn key(row: &Row) -> (String, String) {
    let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    (text("exchange"), text("id"))
}

/// A value as a finding shows it: text bare, TIMESTAMP as RFC 3339, NULL as `NULL`.
fn shown(value: Option<&Value>, kind: ColumnType) -> String {
    match value {
        None => "absent".to_owned(),
        Some(Value::Null) => "NULL".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) if kind == ColumnType::Timestamp => number
            .as_i64()
            .and_then(DateTime::from_timestamp_micros)
            .map_or_else(|| number.to_string(), |at| at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        Some(other) => other.to_string(),
    }
}

fn same(want: Option<&Value>, got: Option<&Value>) -> bool {
    match (want, got) {
        (Some(Value::Number(w)), Some(Value::Number(g))) => match (w.as_i64(), g.as_i64()) {
            (Some(w), Some(g)) => w == g,
            _ => w.as_f64() == g.as_f64(),
        },
        _ => want == got,
    }
}

/// Every column of `want` that `got` has otherwise, as `column is X, expected Y`.
pub fn row_differences(table: &TableDef, want: &Row, got: &Row) -> Vec<String> {
    table
        .columns
        .iter()
        .filter(|column| !same(want.get(column.name), got.get(column.name)))
        .map(|column| {
            format!(
                "{} is {}, expected {}",
                column.name,
                shown(got.get(column.name), column.kind),
                shown(want.get(column.name), column.kind)
            )
        })
        .collect()
}

/// Consistency: the date's instruments partition holds every listed instrument once, every column equal to
/// what the Tardis API served under the table layout's rules.
pub fn instruments_equal_truth(table: &TableDef, expected: &[Row], landed: &[Row]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::INSTRUMENTS_EQUAL_TRUTH,
        Family::Consistency,
        "the date's instruments partition holds every listed instrument once, every column as Tardis lists it",
        Threshold::ZERO_TOLERANCE,
    );
    for want in expected {
        let (exchange, id) = key(want);
        let found: Vec<&Row> = landed.iter().filter(|row| key(row) == (exchange.clone(), id.clone())).collect();
        match found.as_slice() {
            [got] => {
                let differences = row_differences(table, want, got);
                if differences.is_empty() {
                    out.pass_one();
                } else {
                    out.fail_one(|| Sample::general(format!("{exchange} {id}: {}", differences.join("; "))));
                }
            }
            [] => out
                .fail_one(|| Sample::general(format!("{exchange} {id} missing from the date's instruments partition"))),
            many => out.fail_one(|| Sample::general(format!("{exchange} {id} landed {} times", many.len()))),
        }
    }
    for extra in landed.iter().filter(|row| !expected.iter().any(|want| key(want) == key(row))) {
        let (exchange, id) = key(extra);
        out.fail_one(|| Sample::general(format!("{exchange} {id} is not an instrument Tardis lists")));
    }
    out
}

/// BigQuery spells a type two ways; the legacy spelling is the one `tables.get` answers with.
fn legacy(name: &str) -> String {
    match name.to_ascii_uppercase().as_str() {
        "INT64" => "INTEGER".to_owned(),
        "FLOAT64" => "FLOAT".to_owned(),
        "BOOL" => "BOOLEAN".to_owned(),
        other => other.to_owned(),
    }
}

/// How a landed table differs from its definition: columns (names, types, modes), DAY partitioning on the
/// contract's column, clustering. `resource` is the table as `tables.get` answers it; `None` when missing.
pub fn layout_differences(table: &TableDef, resource: Option<&Value>) -> Vec<String> {
    let Some(resource) = resource else {
        return vec![format!("table {} does not exist", table.name)];
    };
    let mut differences = Vec::new();
    let fields = resource["schema"]["fields"].as_array().cloned().unwrap_or_default();
    let field = |name: &str| fields.iter().find(|f| f["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)));
    for column in table.columns {
        let Some(found) = field(column.name) else {
            differences.push(format!("column {} is missing", column.name));
            continue;
        };
        let kind = legacy(found["type"].as_str().unwrap_or_default());
        if kind != column.kind.legacy_name() {
            differences.push(format!("column {} is {kind}, expected {}", column.name, column.kind.legacy_name()));
        }
        let mode = found["mode"].as_str().unwrap_or("NULLABLE").to_ascii_uppercase();
        let wanted = if column.required { "REQUIRED" } else { "NULLABLE" };
        if mode != wanted {
            differences.push(format!("column {} is {mode}, expected {wanted}", column.name));
        }
    }
    for extra in &fields {
        let name = extra["name"].as_str().unwrap_or_default();
        if !table.columns.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
            differences.push(format!("column {name} is not in the contract"));
        }
    }
    let partitioning = &resource["timePartitioning"];
    let wanted = format!("DAY on {}", table.partition_field);
    if partitioning.is_null() {
        differences.push(format!("not partitioned, expected {wanted}"));
    } else {
        let unit = partitioning["type"].as_str().unwrap_or("DAY");
        let on = partitioning["field"].as_str().unwrap_or("_PARTITIONTIME (ingestion time)");
        let found = format!("{unit} on {on}");
        if found != wanted {
            differences.push(format!("partitioned by {found}, expected {wanted}"));
        }
    }
    let clustering: Vec<String> = resource["clustering"]["fields"]
        .as_array()
        .map(|fields| fields.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if clustering != table.clustering {
        differences.push(format!(
            "clustered by [{}], expected [{}]",
            clustering.join(", "),
            table.clustering.join(", ")
        ));
    }
    differences
}

/// Consistency: each table has the contract's columns, types, modes, partitioning and clustering.
pub fn tables_match_contract(tables: &[(TableDef, Option<Value>)]) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::TABLES_MATCH_CONTRACT,
        Family::Consistency,
        "each landed table has the documented columns, types, modes, DAY partitioning and clustering",
        Threshold::ZERO_TOLERANCE,
    );
    for (table, resource) in tables {
        let differences = layout_differences(table, resource.as_ref());
        if differences.is_empty() {
            out.pass_one();
        } else {
            out.fail_one(|| Sample::general(format!("{}: {}", table.name, differences.join("; "))));
        }
    }
    out
}

/// Rows a run left in a partition of a date it did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsElsewhere {
    pub table: String,
    /// The partition id (`YYYYMMDD`, or `__NULL__` for a NULL partitioning value).
    pub partition: String,
    pub rows: usize,
}

/// Consistency: every row of the date's partitions belongs to the date (candles open in it, the instruments
/// snapshot is dated with it), and the run wrote no other date's partition (`elsewhere`: the rows found in
/// partitions of dates that were not run).
pub fn rows_in_their_date(
    day: TradingDay,
    candles: &[Candle],
    instruments: &[Row],
    elsewhere: &[RowsElsewhere],
) -> CheckOutcome {
    let mut out = CheckOutcome::new(
        ids::ROWS_IN_THEIR_DATE,
        Family::Consistency,
        "every row of the date's partitions belongs to the date, and no other date's partition was written",
        Threshold::ZERO_TOLERANCE,
    );
    for found in elsewhere.iter().filter(|f| f.rows > 0) {
        // Each stray row counts as a failed row; one sample names the partition.
        out.evaluated += found.rows as u64;
        out.failed += found.rows as u64;
        out.sample(Sample::general(format!(
            "{} row(s) written into {}${} by a run of {day} (no run writes another date's partition)",
            found.rows, found.table, found.partition
        )));
    }
    let (start, end) = (day.start_us(), day.end_us());
    for candle in candles {
        if (start..end).contains(&candle.open_time_us) {
            out.pass_one();
        } else {
            out.fail_one(|| Sample {
                exchange: Some(candle.exchange.clone()),
                symbol: Some(candle.symbol.clone()),
                open_time_us: Some(candle.open_time_us),
                detail: format!("a candle of another date in the {day} partition of candles_1m"),
            });
        }
    }
    let date = day.to_string();
    for row in instruments {
        match row.get("date").and_then(Value::as_str) {
            Some(found) if found == date => out.pass_one(),
            found => {
                let (exchange, id) = key(row);
                let found = found.unwrap_or("NULL").to_owned();
                out.fail_one(|| {
                    Sample::general(format!("{exchange} {id}: date is {found} in the {date} partition of instruments"))
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use pipeline::bigquery::schema::{CANDLES_1M, INSTRUMENTS};

    use super::*;

    fn instrument_row() -> Row {
        let value = json!({
            "date": "2024-06-03", "exchange": "bitmex", "id": "XBTUSD", "dataset_id": "XBTUSD",
            "base_currency": "BTC", "quote_currency": "USD", "type": "perpetual", "contract_type": "inverse_perpetual",
            "active": true, "available_since": 1_420_070_400_000_000_i64, "available_to": null,
            "price_increment": 0.5, "amount_increment": 1.0, "min_trade_amount": 1.0, "inverse": true,
            "contract_multiplier": null,
        });
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn swapped_currencies_and_a_wrong_inverse_are_named_by_column() {
        let want = instrument_row();
        let mut got = want.clone();
        got.insert("base_currency".into(), json!("USD"));
        got.insert("quote_currency".into(), json!("BTC"));
        got.insert("inverse".into(), json!(false));
        let check = instruments_equal_truth(&INSTRUMENTS, std::slice::from_ref(&want), &[got]);
        assert_eq!((check.evaluated, check.failed), (1, 1));
        assert_eq!(
            check.samples[0].detail,
            "bitmex XBTUSD: base_currency is USD, expected BTC; quote_currency is BTC, expected USD; \
             inverse is false, expected true"
        );
        let check = instruments_equal_truth(&INSTRUMENTS, std::slice::from_ref(&want), std::slice::from_ref(&want));
        assert_eq!((check.evaluated, check.failed), (1, 0));
    }

    #[test]
    fn a_null_where_the_layout_has_a_value_and_a_timestamp_are_shown_readably() {
        let want = instrument_row();
        let mut got = want.clone();
        got.insert("contract_type".into(), Value::Null);
        got.insert("available_since".into(), json!(1_420_070_401_000_000_i64));
        let differences = row_differences(&INSTRUMENTS, &want, &got);
        assert_eq!(
            differences,
            [
                "contract_type is NULL, expected inverse_perpetual",
                "available_since is 2015-01-01T00:00:01Z, expected 2015-01-01T00:00:00Z"
            ]
        );
    }

    fn resource(table: &TableDef) -> Value {
        let fields: Vec<Value> = table
            .columns
            .iter()
            .map(|c| json!({"name": c.name, "type": c.kind.legacy_name(), "mode": if c.required { "REQUIRED" } else { "NULLABLE" }}))
            .collect();
        json!({
            "schema": {"fields": fields},
            "timePartitioning": {"type": "DAY", "field": table.partition_field},
            "clustering": {"fields": table.clustering},
        })
    }

    #[test]
    fn the_contract_layout_passes_and_each_difference_is_named() {
        assert!(layout_differences(&CANDLES_1M, Some(&resource(&CANDLES_1M))).is_empty());
        let mut changed = resource(&CANDLES_1M);
        changed["schema"]["fields"][9]["type"] = json!("FLOAT");
        changed["schema"]["fields"][3]["mode"] = json!("NULLABLE");
        if let Some(fields) = changed["schema"]["fields"].as_array_mut() {
            fields.push(json!({"name": "loaded_at", "type": "TIMESTAMP"}));
        }
        changed["timePartitioning"] = json!({"type": "DAY"});
        changed["clustering"] = Value::Null;
        assert_eq!(
            layout_differences(&CANDLES_1M, Some(&changed)),
            [
                "column open is NULLABLE, expected REQUIRED",
                "column trade_count is FLOAT, expected INTEGER",
                "column loaded_at is not in the contract",
                "partitioned by DAY on _PARTITIONTIME (ingestion time), expected DAY on open_time",
                "clustered by [], expected [exchange, symbol]",
            ]
        );
        let check = tables_match_contract(&[(CANDLES_1M, Some(changed)), (INSTRUMENTS, None)]);
        assert_eq!((check.evaluated, check.failed), (2, 2));
        assert_eq!(check.samples[1].detail, "instruments: table instruments does not exist");
        // Standard type names are the same types.
        let mut standard = resource(&INSTRUMENTS);
        standard["schema"]["fields"][8]["type"] = json!("BOOL");
        assert!(layout_differences(&INSTRUMENTS, Some(&standard)).is_empty());
    }

    #[test]
    fn a_row_of_another_date_in_the_partition_is_a_finding() {
        let day = TradingDay::parse("2024-06-03").expect("a date");
        let mut stale = instrument_row();
        stale.insert("date".into(), json!("2024-06-02"));
        let check = rows_in_their_date(day, &[], &[instrument_row(), stale], &[]);
        assert_eq!((check.evaluated, check.failed), (2, 1));
        assert_eq!(
            check.samples[0].detail,
            "bitmex XBTUSD: date is 2024-06-02 in the 2024-06-03 partition of instruments"
        );
    }

    #[test]
    fn rows_in_another_date_s_partition_fail_the_run_that_wrote_them() {
        let day = TradingDay::parse("2024-06-03").expect("a date");
        let elsewhere = [
            RowsElsewhere { table: "candles_1m".into(), partition: "20240602".into(), rows: 37 },
            RowsElsewhere { table: "instruments".into(), partition: "20240601".into(), rows: 0 },
        ];
        let check = rows_in_their_date(day, &[], &[instrument_row()], &elsewhere);
        assert_eq!((check.evaluated, check.failed), (38, 37));
        assert_eq!(check.samples.len(), 1);
        assert_eq!(
            check.samples[0].detail,
            "37 row(s) written into candles_1m$20240602 by a run of 2024-06-03 (no run writes another date's partition)"
        );
        assert_eq!(rows_in_their_date(day, &[], &[instrument_row()], &elsewhere[1..]).failed, 0);
    }
}
