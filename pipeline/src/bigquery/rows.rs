//! Conversions between domain values and BigQuery rows: NDJSON objects for load jobs, and the
//! `{"f":[{"v":..}]}` cells of `tabledata.list` back into candles.

use chrono::{DateTime, SecondsFormat, Utc};
use market::{Candle, Exchange, Instrument, InstrumentKind, Symbol, TradingDay};
use serde_json::{Value, json};

use super::BigQueryError;
use super::resources::TableRow;
use super::schema::{CANDLES_1M, INSTRUMENTS};

fn timestamp_text(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .expect("candle times are far inside chrono's range")
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One `candles_1m` row.
pub fn candle_to_json(c: &Candle) -> Value {
    json!({
        "exchange": c.exchange.as_str(),
        "symbol": c.symbol.as_str(),
        "open_time": timestamp_text(c.open_time_us),
        "open": c.open,
        "high": c.high,
        "low": c.low,
        "close": c.close,
        "volume": c.volume,
        "quote_volume": c.quote_volume,
        "trade_count": c.trade_count,
        "vwap": c.vwap,
        "buy_volume": c.buy_volume,
        "sell_volume": c.sell_volume,
    })
}

/// One `instruments` row of the snapshot for `day`.
pub fn instrument_to_json(i: &Instrument, day: TradingDay) -> Value {
    json!({
        "date": day.to_string(),
        "exchange": i.exchange.as_str(),
        "id": i.id,
        "dataset_id": i.dataset_id.as_str(),
        "base_currency": i.base_currency,
        "quote_currency": i.quote_currency,
        "type": i.kind.as_str(),
        "contract_type": i.contract_type,
        "active": i.active,
        "available_since": i.available_since.to_rfc3339_opts(SecondsFormat::Micros, true),
        "available_to": i.available_to.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        "price_increment": i.price_increment,
        "amount_increment": i.amount_increment,
        "min_trade_amount": i.min_trade_amount,
        "inverse": i.inverse,
        "contract_multiplier": i.contract_multiplier,
    })
}

/// A TIMESTAMP cell: float seconds (`"1.7172E9"`, the default encoding) or integer microseconds.
fn parse_timestamp_us(text: &str) -> Option<i64> {
    if let Ok(micros) = text.parse::<i64>() {
        // Integer microseconds (`formatOptions.useInt64Timestamp`); plain seconds would be < 1e11.
        return Some(if micros.abs() < 100_000_000_000 { micros * 1_000_000 } else { micros });
    }
    let seconds: f64 = text.parse().ok()?;
    seconds.is_finite().then(|| (seconds * 1e6).round() as i64)
}

/// Turns `tabledata.list` rows of `candles_1m` into candles. `names` are the table's column names in
/// schema order (from tables.get), which is the order of the cells.
pub fn candles_from_rows(names: &[String], rows: &[TableRow]) -> Result<Vec<Candle>, BigQueryError> {
    let table = CANDLES_1M.name;
    let index = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| BigQueryError::Decode { table: table.to_owned(), reason: format!("no column {name}") })
    };
    let cols = [
        index("exchange")?,
        index("symbol")?,
        index("open_time")?,
        index("open")?,
        index("high")?,
        index("low")?,
        index("close")?,
        index("volume")?,
        index("quote_volume")?,
        index("trade_count")?,
        index("vwap")?,
        index("buy_volume")?,
        index("sell_volume")?,
    ];
    rows.iter()
        .enumerate()
        .map(|(row_index, row)| {
            let bad = |reason: String| BigQueryError::Decode {
                table: table.to_owned(),
                reason: format!("row {row_index}: {reason}"),
            };
            let text = |i: usize| -> Result<&str, BigQueryError> {
                row.f
                    .get(i)
                    .and_then(|c| c.v.as_str())
                    .ok_or_else(|| bad(format!("cell {} ({}) is missing or null", i, names[i])))
            };
            let float = |i: usize| -> Result<f64, BigQueryError> {
                let t = text(i)?;
                t.parse::<f64>().map_err(|_| bad(format!("{} {t:?} is not a FLOAT", names[i])))
            };
            let open_time_text = text(cols[2])?;
            let trade_count_text = text(cols[9])?;
            Ok(Candle {
                exchange: Exchange::parse(text(cols[0])?).map_err(|e| bad(e.to_string()))?,
                symbol: Symbol::parse(text(cols[1])?).map_err(|e| bad(e.to_string()))?,
                open_time_us: parse_timestamp_us(open_time_text)
                    .ok_or_else(|| bad(format!("open_time {open_time_text:?} is not a TIMESTAMP")))?,
                open: float(cols[3])?,
                high: float(cols[4])?,
                low: float(cols[5])?,
                close: float(cols[6])?,
                volume: float(cols[7])?,
                quote_volume: float(cols[8])?,
                trade_count: trade_count_text
                    .parse()
                    .map_err(|_| bad(format!("trade_count {trade_count_text:?} is not an INTEGER")))?,
                vwap: float(cols[10])?,
                buy_volume: float(cols[11])?,
                sell_volume: float(cols[12])?,
            })
        })
        .collect()
}

/// Turns `tabledata.list` rows of `instruments` into instruments (`names` as for [`candles_from_rows`]).
pub fn instruments_from_rows(names: &[String], rows: &[TableRow]) -> Result<Vec<Instrument>, BigQueryError> {
    let table = INSTRUMENTS.name;
    let index = |name: &str| names.iter().position(|n| n == name);
    rows.iter()
        .enumerate()
        .map(|(row_index, row)| {
            let bad = |reason: String| BigQueryError::Decode {
                table: table.to_owned(),
                reason: format!("row {row_index}: {reason}"),
            };
            let cell =
                |name: &str| -> Option<&str> { index(name).and_then(|i| row.f.get(i)).and_then(|c| c.v.as_str()) };
            let text = |name: &str| cell(name).ok_or_else(|| bad(format!("{name} is missing or null")));
            let float = |name: &str| -> Result<f64, BigQueryError> {
                let t = text(name)?;
                t.parse().map_err(|_| bad(format!("{name} {t:?} is not a FLOAT")))
            };
            let time = |t: &str| {
                parse_timestamp_us(t)
                    .and_then(DateTime::<Utc>::from_timestamp_micros)
                    .ok_or_else(|| bad(format!("{t:?} is not a TIMESTAMP")))
            };
            let kind_text = text("type")?;
            Ok(Instrument {
                exchange: Exchange::parse(text("exchange")?).map_err(|e| bad(e.to_string()))?,
                id: text("id")?.to_owned(),
                dataset_id: Symbol::parse(text("dataset_id")?).map_err(|e| bad(e.to_string()))?,
                base_currency: text("base_currency")?.to_owned(),
                quote_currency: text("quote_currency")?.to_owned(),
                kind: InstrumentKind::parse(kind_text).ok_or_else(|| bad(format!("type {kind_text:?}")))?,
                contract_type: cell("contract_type").map(str::to_owned),
                active: text("active")? == "true",
                available_since: time(text("available_since")?)?,
                available_to: cell("available_to").map(time).transpose()?,
                price_increment: float("price_increment")?,
                amount_increment: float("amount_increment")?,
                min_trade_amount: float("min_trade_amount")?,
                inverse: text("inverse")? == "true",
                contract_multiplier: cell("contract_multiplier")
                    .map(|t| t.parse().map_err(|_| bad(format!("contract_multiplier {t:?}"))))
                    .transpose()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_in_both_encodings() {
        assert_eq!(parse_timestamp_us("1.71720006E9"), Some(1_717_200_060_000_000));
        assert_eq!(parse_timestamp_us("1717200060000000"), Some(1_717_200_060_000_000));
        // Whole seconds, as an integer cell: far below any microsecond count of this century.
        assert_eq!(parse_timestamp_us("1717200060"), Some(1_717_200_060_000_000));
        assert_eq!(parse_timestamp_us("-86400"), Some(-86_400_000_000));
        assert_eq!(parse_timestamp_us("1.7172000601234559E9"), Some(1_717_200_060_123_456));
        assert_eq!(parse_timestamp_us("soon"), None);
    }

    /// `tabledata.list` rows: every cell a string (or null), in the order of `names`.
    fn table_rows(names: &[&str], rows: &[Value]) -> (Vec<String>, Vec<TableRow>) {
        use crate::bigquery::resources::TableCell;
        let rows = rows
            .iter()
            .map(|row| TableRow {
                f: names
                    .iter()
                    .map(|name| TableCell {
                        v: match &row[*name] {
                            Value::Null => Value::Null,
                            Value::String(text) => Value::String(text.clone()),
                            other => Value::String(other.to_string()),
                        },
                    })
                    .collect(),
            })
            .collect();
        (names.iter().map(|n| (*n).to_owned()).collect(), rows)
    }

    fn candle() -> Candle {
        Candle {
            exchange: Exchange::parse("bitmex").expect("ok"),
            symbol: Symbol::parse("XBTUSD").expect("ok"),
            open_time_us: 1_717_200_060_000_000,
            open: 1.5,
            high: 2.0,
            low: 1.0,
            close: 1.25,
            volume: 10.0,
            quote_volume: 15.0,
            trade_count: 3,
            vwap: 1.5,
            buy_volume: 4.0,
            sell_volume: 6.0,
        }
    }

    #[test]
    fn candles_read_back_by_column_name_whatever_the_column_order() {
        let mut row = candle_to_json(&candle());
        row["open_time"] = Value::String("1.71720006E9".to_owned());
        let mut names: Vec<&str> = CANDLES_1M.columns.iter().map(|c| c.name).collect();
        names.reverse();
        let (names, rows) = table_rows(&names, &[row.clone(), row]);
        let read = candles_from_rows(&names, &rows).expect("decoded");
        assert_eq!(read, [candle(), candle()]);
        let err = candles_from_rows(&names[1..], &rows).expect_err("a column missing");
        assert!(err.to_string().contains("no column"), "{err}");
    }

    #[test]
    fn a_null_or_garbled_candle_cell_is_an_error_naming_row_and_column() {
        let names: Vec<&str> = CANDLES_1M.columns.iter().map(|c| c.name).collect();
        let mut row = candle_to_json(&candle());
        row["open_time"] = Value::String("1717200060000000".to_owned());
        row["trade_count"] = Value::String("3.5".to_owned());
        let (names, rows) = table_rows(&names, &[row]);
        let err = candles_from_rows(&names, &rows).expect_err("not an integer");
        assert!(err.to_string().contains("row 0: trade_count \"3.5\" is not an INTEGER"), "{err}");
    }

    fn instrument() -> Instrument {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).expect("a time").with_timezone(&Utc);
        Instrument {
            exchange: Exchange::parse("deribit").expect("ok"),
            id: "BTC-28JUN24".to_owned(),
            dataset_id: Symbol::parse("BTC-28JUN24").expect("ok"),
            base_currency: "BTC".to_owned(),
            quote_currency: "USD".to_owned(),
            kind: InstrumentKind::Future,
            contract_type: Some("inverse_future".to_owned()),
            active: false,
            available_since: at("2024-03-01T08:00:00Z"),
            available_to: Some(at("2024-06-28T08:00:00Z")),
            price_increment: 2.5,
            amount_increment: 10.0,
            min_trade_amount: 10.0,
            inverse: true,
            contract_multiplier: Some(10.0),
        }
    }

    #[test]
    fn instruments_round_trip_through_rows_with_their_nulls() {
        let day = TradingDay::parse("2024-06-03").expect("a date");
        let open_ended = Instrument {
            available_to: None,
            contract_type: None,
            contract_multiplier: None,
            active: true,
            inverse: false,
            kind: InstrumentKind::Perpetual,
            ..instrument()
        };
        let rows: Vec<Value> = [instrument(), open_ended.clone()].iter().map(|i| instrument_to_json(i, day)).collect();
        assert_eq!(rows[0]["date"], "2024-06-03");
        assert_eq!(rows[0]["type"], "future");
        assert_eq!(rows[0]["available_to"], "2024-06-28T08:00:00.000000Z");
        assert_eq!(rows[1]["available_to"], Value::Null);
        // BigQuery answers TIMESTAMP cells as float seconds.
        let mut answered = rows.clone();
        for row in &mut answered {
            for column in ["available_since", "available_to"] {
                if let Some(text) = row[column].as_str() {
                    let at = DateTime::parse_from_rfc3339(text).expect("a time");
                    row[column] = Value::String(format!("{}", at.timestamp_micros() as f64 / 1e6));
                }
            }
        }
        let mut names: Vec<&str> = INSTRUMENTS.columns.iter().map(|c| c.name).collect();
        names.rotate_left(5);
        let (names, table) = table_rows(&names, &answered);
        assert_eq!(instruments_from_rows(&names, &table).expect("decoded"), [instrument(), open_ended]);
    }

    #[test]
    fn a_garbled_instrument_cell_is_an_error_naming_the_column() {
        let day = TradingDay::parse("2024-06-03").expect("a date");
        let names: Vec<&str> = INSTRUMENTS.columns.iter().map(|c| c.name).collect();
        for (column, value, says) in [
            ("type", "swap", "type \"swap\""),
            ("price_increment", "tick", "price_increment \"tick\" is not a FLOAT"),
            ("available_since", "yesterday", "\"yesterday\" is not a TIMESTAMP"),
            ("contract_multiplier", "ten", "contract_multiplier \"ten\""),
        ] {
            let mut row = instrument_to_json(&instrument(), day);
            row["available_since"] = Value::String("1709280000".to_owned());
            row["available_to"] = Value::Null;
            row[column] = Value::String(value.to_owned());
            let (names, table) = table_rows(&names, &[row]);
            let err = instruments_from_rows(&names, &table).expect_err(column);
            assert!(err.to_string().contains(says), "{column}: {err}");
        }
    }

    #[test]
    fn candle_rows_use_rfc3339_times_and_plain_numbers() {
        let c = candle();
        let row = candle_to_json(&c);
        assert_eq!(row["open_time"], "2024-06-01T00:01:00.000000Z");
        assert_eq!(row["trade_count"], 3);
        assert_eq!(row["open"], 1.5);
    }
}
