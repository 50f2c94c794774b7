//! The tables this pipeline owns: columns, partitioning and clustering, declared once as data.
//!
//! Both tables are DAY-partitioned so that one date is one partition, replaced as a whole by each run
//! (`WRITE_TRUNCATE` into `table$YYYYMMDD`). The schema is the contract for external pipelines too
//! (see README "Table layout").

use gcp_bigquery_client::model::clustering::Clustering;
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;
use gcp_bigquery_client::model::time_partitioning::TimePartitioning;

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
    fn field_type(self) -> FieldType {
        match self {
            ColumnType::String => FieldType::String,
            ColumnType::Integer => FieldType::Integer,
            ColumnType::Float => FieldType::Float,
            ColumnType::Boolean => FieldType::Boolean,
            ColumnType::Timestamp => FieldType::Timestamp,
            ColumnType::Date => FieldType::Date,
        }
    }

    /// BigQuery's legacy spelling, as tables.get returns it.
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
            .map(|c| {
                let mut field = TableFieldSchema::new(c.name, c.kind.field_type());
                field.mode = Some(if c.required { "REQUIRED" } else { "NULLABLE" }.to_owned());
                if !c.description.is_empty() {
                    field.description = Some(c.description.to_owned());
                }
                field
            })
            .collect();
        TableSchema::new(fields)
    }

    /// The table resource to create, named `name` (the definition's name plus any version suffix).
    pub fn table(&self, project: &str, dataset: &str, name: &str) -> Table {
        Table::new(project, dataset, name, self.schema())
            .description(self.description)
            .time_partitioning(TimePartitioning::per_day().field(self.partition_field))
            .clustering(Clustering { fields: Some(self.clustering.iter().map(|s| (*s).to_owned()).collect()) })
    }

    /// Checks an existing table's schema: every column present with the same type.
    pub fn check_schema(&self, existing: &TableSchema) -> Result<(), String> {
        let fields = existing.fields.as_deref().unwrap_or(&[]);
        for column in self.columns {
            let Some(field) = fields.iter().find(|f| f.name == column.name) else {
                return Err(format!("column {} is missing", column.name));
            };
            let found = serde_json::to_value(&field.r#type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let same = found == column.kind.legacy_name()
                || matches!((found.as_str(), column.kind), ("INT64", Integer) | ("FLOAT64", Float) | ("BOOL", Boolean));
            if !same {
                return Err(format!("column {} is {found}, expected {}", column.name, column.kind.legacy_name()));
            }
        }
        Ok(())
    }
}
