//! The tables this pipeline owns: columns, partitioning and clustering, declared once as data.
//!
//! Both tables are DAY-partitioned so that one date is one partition, replaced as a whole by each run
//! (`WRITE_TRUNCATE` into `table$YYYYMMDD`). The schema is the contract for external pipelines too
//! (see README "Table layout").

use super::resources::{Clustering, Table, TableFieldSchema, TableReference, TableSchema, TimePartitioning};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Integer,
    Float,
    Boolean,
    Timestamp,
    Date,
}

impl ColumnType {
    /// BigQuery's legacy spelling, as tables.get returns it (and as this pipeline sends it).
    pub fn legacy_name(self) -> &'static str {
        match self {
            ColumnType::String => "STRING",
            ColumnType::Integer => "INTEGER",
            ColumnType::Float => "FLOAT",
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Date => "DATE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnType,
    pub required: bool,
    pub description: &'static str,
}

const fn col(name: &'static str, kind: ColumnType, required: bool, description: &'static str) -> Column {
    Column { name, kind, required, description }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: &'static [Column],
    /// DAY partitioning on this DATE or TIMESTAMP column.
    pub partition_field: &'static str,
    pub clustering: &'static [&'static str],
}

use ColumnType::{Boolean, Date, Float, Integer, String as Str, Timestamp};

pub const CANDLES_1M: TableDef = TableDef {
    name: "candles_1m",
    description: "1-minute OHLCV candles built from Tardis trades, bucketed by exchange timestamp",
    columns: &[
        col("exchange", Str, true, "Tardis exchange id"),
        col("symbol", Str, true, "Tardis dataset symbol"),
        col("open_time", Timestamp, true, "bucket start (UTC)"),
        col("open", Float, true, "price of the first trade by exchange time"),
        col("high", Float, true, "highest price"),
        col("low", Float, true, "lowest price"),
        col("close", Float, true, "price of the last trade by exchange time"),
        col("volume", Float, true, "sum of amounts, in the exchange's native unit"),
        col("quote_volume", Float, true, "sum of price × amount"),
        col("trade_count", Integer, true, "number of trades"),
        col("vwap", Float, true, "quote_volume / volume"),
        col("buy_volume", Float, true, "sum of amounts of buyer-initiated trades"),
        col("sell_volume", Float, true, "sum of amounts of seller-initiated trades"),
    ],
    partition_field: "open_time",
    clustering: &["exchange", "symbol"],
};

pub const INSTRUMENTS: TableDef = TableDef {
    name: "instruments",
    description: "Tardis instrument definitions, one snapshot per processed date",
    columns: &[
        col("date", Date, true, "the processed date this snapshot belongs to"),
        col("exchange", Str, true, "Tardis exchange id"),
        col("id", Str, true, "exchange-native instrument id"),
        col("dataset_id", Str, true, "Tardis dataset symbol"),
        col("base_currency", Str, true, ""),
        col("quote_currency", Str, true, ""),
        col("type", Str, true, "spot, perpetual, future, option or combo"),
        col("contract_type", Str, false, ""),
        col("active", Boolean, true, ""),
        col("available_since", Timestamp, true, ""),
        col("available_to", Timestamp, false, ""),
        col("price_increment", Float, true, "tick size"),
        col("amount_increment", Float, true, "lot size"),
        col("min_trade_amount", Float, true, ""),
        col("inverse", Boolean, true, ""),
        col("contract_multiplier", Float, false, ""),
    ],
    partition_field: "date",
    clustering: &["exchange"],
};

/// Every table the pipeline writes.
pub const TABLES: [TableDef; 2] = [CANDLES_1M, INSTRUMENTS];

impl TableDef {
    pub fn schema(&self) -> TableSchema {
        let fields = self
            .columns
            .iter()
            .map(|c| TableFieldSchema {
                name: c.name.to_owned(),
                field_type: c.kind.legacy_name().to_owned(),
                mode: Some(if c.required { "REQUIRED" } else { "NULLABLE" }.to_owned()),
                description: (!c.description.is_empty()).then(|| c.description.to_owned()),
            })
            .collect();
        TableSchema { fields }
    }

    /// The table resource to create, named `name` (the definition's name plus any version suffix).
    pub fn table(&self, project: &str, dataset: &str, name: &str) -> Table {
        Table {
            table_reference: TableReference {
                project_id: project.to_owned(),
                dataset_id: dataset.to_owned(),
                table_id: name.to_owned(),
            },
            description: Some(self.description.to_owned()),
            schema: self.schema(),
            time_partitioning: Some(TimePartitioning {
                kind: "DAY".to_owned(),
                field: Some(self.partition_field.to_owned()),
            }),
            // No clustering at all rather than an empty list of columns, which is not a clustering.
            clustering: (!self.clustering.is_empty())
                .then(|| Clustering { fields: self.clustering.iter().map(|s| (*s).to_owned()).collect() }),
        }
    }

    /// Checks an existing table's schema: every column present with the same type.
    pub fn check_schema(&self, existing: &TableSchema) -> Result<(), String> {
        for column in self.columns {
            let Some(field) = existing.fields.iter().find(|f| f.name == column.name) else {
                return Err(format!("column {} is missing", column.name));
            };
            let found = field.field_type.as_str();
            let same = found == column.kind.legacy_name()
                || matches!((found, column.kind), ("INT64", Integer) | ("FLOAT64", Float) | ("BOOL", Boolean));
            if !same {
                return Err(format!("column {} is {found}, expected {}", column.name, column.kind.legacy_name()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_table_resource_has_the_columns_day_partitioning_and_clustering_of_its_definition() {
        let resource = serde_json::to_value(INSTRUMENTS.table("p", "d", "instruments_v2")).expect("json");
        assert_eq!(
            resource["tableReference"],
            json!({"projectId": "p", "datasetId": "d", "tableId": "instruments_v2"})
        );
        assert_eq!(resource["timePartitioning"], json!({"type": "DAY", "field": "date"}));
        assert_eq!(resource["clustering"], json!({"fields": ["exchange"]}));
        assert_eq!(
            resource["schema"]["fields"][0],
            json!({"name": "date", "type": "DATE", "mode": "REQUIRED",
            "description": "the processed date this snapshot belongs to"})
        );
        // An optional column without a description: NULLABLE, and no empty description sent.
        assert_eq!(
            resource["schema"]["fields"][7],
            json!({"name": "contract_type", "type": "STRING", "mode": "NULLABLE"})
        );
        assert_eq!(resource["schema"]["fields"].as_array().map(Vec::len), Some(INSTRUMENTS.columns.len()));

        let unclustered = serde_json::to_value(TableDef { clustering: &[], ..CANDLES_1M }.table("p", "d", "t"));
        assert!(unclustered.expect("json").get("clustering").is_none(), "no clustering rather than an empty one");
    }

    #[track_caller]
    fn check(fields: &[(&str, &str)], expected: Result<(), &str>) {
        let existing = TableSchema {
            fields: fields
                .iter()
                .map(|(name, kind)| TableFieldSchema {
                    name: (*name).to_owned(),
                    field_type: (*kind).to_owned(),
                    mode: None,
                    description: None,
                })
                .collect(),
        };
        let definition = TableDef { columns: &CANDLES_1M.columns[..3], ..CANDLES_1M };
        assert_eq!(definition.check_schema(&existing), expected.map_err(str::to_owned));
    }

    #[test]
    fn an_existing_schema_is_accepted_in_either_spelling_and_refused_naming_the_column() {
        let mut standard = INSTRUMENTS.schema();
        for field in &mut standard.fields {
            field.field_type = match field.field_type.as_str() {
                "INTEGER" => "INT64",
                "FLOAT" => "FLOAT64",
                "BOOLEAN" => "BOOL",
                other => other,
            }
            .to_owned();
        }
        assert!(standard.fields.iter().any(|f| f.field_type == "FLOAT64"));
        assert_eq!(INSTRUMENTS.check_schema(&standard), Ok(()));

        check(&[("exchange", "STRING"), ("symbol", "STRING"), ("open_time", "TIMESTAMP"), ("extra", "JSON")], Ok(()));
        check(&[("exchange", "STRING"), ("open_time", "TIMESTAMP")], Err("column symbol is missing"));
        check(
            &[("exchange", "STRING"), ("symbol", "STRING"), ("open_time", "DATETIME")],
            Err("column open_time is DATETIME, expected TIMESTAMP"),
        );
        check(&[], Err("column exchange is missing"));
    }
}
