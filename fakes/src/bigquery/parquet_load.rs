//! Parquet load data: a Parquet file (any compression the `parquet` crate reads with its `snap` feature: none and
//! Snappy, pandas' and pyarrow's default) turned into one JSON object per row, by column name, in BigQuery's JSON
//! spellings: DATE as `YYYY-MM-DD`, TIMESTAMP as RFC 3339 with microseconds, NUMERIC as a decimal string, lists as
//! arrays, groups as records. The load then reads those objects as it reads NDJSON rows.

use bytes::Bytes;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Map, Value as Json};

/// Every row of `data`, or what is wrong with the file.
pub(crate) fn read(data: &[u8]) -> Result<Vec<Map<String, Json>>, String> {
    let reader =
        SerializedFileReader::new(Bytes::copy_from_slice(data)).map_err(|e| format!("not a Parquet file: {e}"))?;
    let rows = reader.get_row_iter(None).map_err(|e| format!("cannot read the Parquet rows: {e}"))?;
    let mut out = Vec::new();
    for (index, row) in rows.enumerate() {
        let row = row.map_err(|e| format!("Parquet row {index}: {e}"))?;
        let mut object = Map::new();
        for (name, field) in row.get_column_iter() {
            object.insert(name.clone(), json(field).map_err(|e| format!("Parquet row {index}, column {name}: {e}"))?);
        }
        out.push(object);
    }
    Ok(out)
}

fn number(value: f64) -> Json {
    serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number)
}

fn timestamp(micros: i64) -> Result<Json, String> {
    let at = chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| format!("timestamp {micros} µs is out of range"))?;
    Ok(Json::String(at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()))
}

fn json(field: &Field) -> Result<Json, String> {
    Ok(match field {
        Field::Null => Json::Null,
        Field::Bool(b) => Json::Bool(*b),
        Field::Byte(n) => Json::from(*n),
        Field::Short(n) => Json::from(*n),
        Field::Int(n) => Json::from(*n),
        Field::Long(n) => Json::from(*n),
        Field::UByte(n) => Json::from(*n),
        Field::UShort(n) => Json::from(*n),
        Field::UInt(n) => Json::from(*n),
        Field::ULong(n) => Json::from(*n),
        Field::Float16(n) => number(f64::from(*n)),
        Field::Float(n) => number(f64::from(*n)),
        Field::Double(n) => number(*n),
        Field::Decimal(_) => Json::String(field.to_string()),
        Field::Str(text) => Json::String(text.clone()),
        Field::Bytes(bytes) => match bytes.as_utf8() {
            Ok(text) => Json::String(text.to_owned()),
            Err(_) => return Err("binary (BYTES) columns are not loaded by the fake BigQuery".to_owned()),
        },
        Field::Date(days) => {
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date");
            let date = epoch
                .checked_add_signed(chrono::Duration::days(i64::from(*days)))
                .ok_or_else(|| format!("date {days} days after 1970-01-01 is out of range"))?;
            Json::String(date.format("%Y-%m-%d").to_string())
        }
        Field::TimeMillis(ms) => Json::String(time_of_day(i64::from(*ms) * 1000)),
        Field::TimeMicros(us) => Json::String(time_of_day(*us)),
        Field::TimestampMillis(ms) => timestamp(ms.saturating_mul(1000))?,
        Field::TimestampMicros(us) => timestamp(*us)?,
        Field::Group(row) => {
            let mut object = Map::new();
            for (name, inner) in row.get_column_iter() {
                object.insert(name.clone(), json(inner)?);
            }
            Json::Object(object)
        }
        Field::ListInternal(list) => Json::Array(list.elements().iter().map(json).collect::<Result<_, _>>()?),
        Field::MapInternal(_) => return Err("MAP columns are not loaded by the fake BigQuery".to_owned()),
    })
}

fn time_of_day(micros: i64) -> String {
    let (seconds, micros) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    format!("{:02}:{:02}:{:02}.{micros:06}", seconds / 3600, seconds % 3600 / 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use super::*;

    /// A file as pyarrow writes a pandas frame of (symbol, day, open_time, close, trades), Snappy-compressed.
    fn file() -> Vec<u8> {
        let schema = parse_message_type(
            "message schema {
                REQUIRED BYTE_ARRAY symbol (UTF8);
                OPTIONAL INT32 day (DATE);
                OPTIONAL INT64 open_time (TIMESTAMP(MICROS,true));
                OPTIONAL DOUBLE close;
                OPTIONAL INT64 trades;
            }",
        )
        .expect("schema");
        let properties = WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
        let mut out = Vec::new();
        let mut writer = SerializedFileWriter::new(&mut out, Arc::new(schema), Arc::new(properties)).expect("writer");
        let mut group = writer.next_row_group().expect("row group");
        let mut column = group.next_column().expect("ok").expect("symbol");
        column
            .typed::<ByteArrayType>()
            .write_batch(&[ByteArray::from("BTCUSDT"), ByteArray::from("ETHUSDT")], None, None)
            .expect("written");
        column.close().expect("closed");
        let mut column = group.next_column().expect("ok").expect("day");
        column.typed::<Int32Type>().write_batch(&[19877], Some(&[1, 0]), None).expect("written");
        column.close().expect("closed");
        let mut column = group.next_column().expect("ok").expect("open_time");
        column
            .typed::<Int64Type>()
            .write_batch(&[1_717_372_800_000_000, 1_717_372_860_500_000], Some(&[1, 1]), None)
            .expect("written");
        column.close().expect("closed");
        let mut column = group.next_column().expect("ok").expect("close");
        column.typed::<DoubleType>().write_batch(&[67000.5], Some(&[1, 0]), None).expect("written");
        column.close().expect("closed");
        let mut column = group.next_column().expect("ok").expect("trades");
        column.typed::<Int64Type>().write_batch(&[12, 3], Some(&[1, 1]), None).expect("written");
        column.close().expect("closed");
        group.close().expect("closed");
        writer.close().expect("closed");
        out
    }

    #[test]
    fn rows_come_out_in_bigquerys_json_spellings() {
        let rows = read(&file()).expect("a Parquet file");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            Json::Object(rows[0].clone()),
            serde_json::json!({"symbol": "BTCUSDT", "day": "2024-06-03", "open_time": "2024-06-03T00:00:00.000000Z",
                "close": 67000.5, "trades": 12})
        );
        assert_eq!(rows[1]["day"], Json::Null);
        assert_eq!(rows[1]["open_time"], "2024-06-03T00:01:00.500000Z");
    }

    #[test]
    fn something_else_is_not_a_parquet_file() {
        assert!(read(b"symbol,close\nBTCUSDT,1\n").expect_err("CSV").starts_with("not a Parquet file"));
    }
}
