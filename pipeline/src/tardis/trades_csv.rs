//! Streaming reader of a Tardis `trades` CSV (already decompressed or not: it takes any `Read`).
//!
//! Memory is constant: one reused record buffer, whatever the file size. A row that does not parse is
//! counted and sampled, never silently dropped and never fatal; a wrong header or an IO/gzip error is
//! fatal for the file. This module does not decide what to do with rows outside the day.

use std::io::Read;

use market::{Exchange, Side, Symbol, Trade};

/// The exact header of a Tardis trades file.
pub const TRADES_HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

/// At most this many rejected rows are described per file.
const MAX_REJECT_SAMPLES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("unexpected header {found:?}, expected {TRADES_HEADER:?}")]
    Header { found: String },
    /// Truncated or corrupt gzip surfaces here as an IO error from the decoder.
    #[error("failed to read line {line}: {source}")]
    Io {
        line: u64,
        #[source]
        source: std::io::Error,
    },
    /// A row torn or garbled in its structure (wrong number of fields, broken quoting): the file is not what
    /// Tardis published.
    #[error("line {line} is malformed: {reason}")]
    Malformed { line: u64, reason: String },
}

/// A row that could not be turned into a trade.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

/// What reading a file found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadStats {
    pub rows: u64,
    pub rejected: u64,
    pub reject_samples: Vec<RejectedRow>,
    /// The first row whose structure is broken (not just a value out of range), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_malformed: Option<RejectedRow>,
}

/// Reads every row of `input`, calling `on_trade(line, trade, id)` for each valid one, in file order
/// (`id` is the raw id cell, empty when the exchange gives none).
pub fn read_trades(
    input: impl Read,
    exchange: &Exchange,
    symbol: &Symbol,
    mut on_trade: impl FnMut(u64, &Trade, &[u8]),
) -> Result<ReadStats, CsvError> {
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).buffer_capacity(1 << 16).from_reader(input);
    let mut record = csv::ByteRecord::new();
    let mut stats = ReadStats::default();
    let mut line: u64 = 0;
    let io_error = |line: u64, err: csv::Error| match err.into_kind() {
        csv::ErrorKind::Io(source) => CsvError::Io { line, source },
        other => CsvError::Io { line, source: std::io::Error::other(format!("{other:?}")) },
    };

    // An empty file (a quiet day: Tardis serves an empty gzip) has no header at all.
    if !reader.read_byte_record(&mut record).map_err(|e| io_error(1, e))? {
        return Ok(stats);
    }
    line += 1;
    let header: Vec<&[u8]> = record.iter().collect();
    if header.join(&b","[..]) != TRADES_HEADER.as_bytes() {
        return Err(CsvError::Header { found: String::from_utf8_lossy(&header.join(&b","[..])).into_owned() });
    }

    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                if matches!(err.kind(), csv::ErrorKind::Io(_)) {
                    return Err(io_error(line + 1, err));
                }
                // A malformed CSV row (e.g. bad UTF-8 in a quoted field): reject it and go on.
                line += 1;
                stats.rows += 1;
                let reason = format!("malformed CSV: {err}");
                stats.first_malformed.get_or_insert_with(|| RejectedRow { line, reason: reason.clone() });
                reject(&mut stats, line, reason);
                continue;
            }
        }
        line += 1;
        stats.rows += 1;
        if record.len() != 8 {
            let reason = format!("expected 8 fields, found {}", record.len());
            stats.first_malformed.get_or_insert_with(|| RejectedRow { line, reason: reason.clone() });
            reject(&mut stats, line, reason);
            continue;
        }
        match parse_row(&record, exchange, symbol) {
            Ok(trade) => on_trade(line, &trade, &record[4]),
            Err(reason) => reject(&mut stats, line, reason),
        }
    }
    Ok(stats)
}

fn reject(stats: &mut ReadStats, line: u64, reason: String) {
    stats.rejected += 1;
    if stats.reject_samples.len() < MAX_REJECT_SAMPLES {
        stats.reject_samples.push(RejectedRow { line, reason });
    }
}

fn parse_row(record: &csv::ByteRecord, exchange: &Exchange, symbol: &Symbol) -> Result<Trade, String> {
    if record.len() != 8 {
        return Err(format!("expected 8 fields, found {}", record.len()));
    }
    let field = |i: usize| std::str::from_utf8(&record[i]).map_err(|_| format!("field {} is not UTF-8", i + 1));
    if field(0)? != exchange.as_str() {
        return Err(format!("exchange {:?} does not match the file's {exchange}", field(0)?));
    }
    if field(1)? != symbol.as_str() {
        return Err(format!("symbol {:?} does not match the file's {symbol}", field(1)?));
    }
    let timestamp: i64 =
        field(2)?.parse().map_err(|_| format!("timestamp {:?} is not an integer", field(2).unwrap_or("")))?;
    let local: i64 =
        field(3)?.parse().map_err(|_| format!("local_timestamp {:?} is not an integer", field(3).unwrap_or("")))?;
    let side = Side::parse(field(5)?);
    let price: f64 = field(6)?.parse().map_err(|_| format!("price {:?} is not a number", field(6).unwrap_or("")))?;
    let amount: f64 = field(7)?.parse().map_err(|_| format!("amount {:?} is not a number", field(7).unwrap_or("")))?;
    if !(price.is_finite() && price > 0.0) {
        return Err(format!("price {price} is not positive"));
    }
    if !(amount.is_finite() && amount > 0.0) {
        return Err(format!("amount {amount} is not positive"));
    }
    Ok(Trade { exchange_ts_us: timestamp, local_ts_us: local, side, price, amount })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Exchange, Symbol) {
        (Exchange::parse("binance-futures").expect("ok"), Symbol::parse("BTCUSDT").expect("ok"))
    }

    #[test]
    fn reads_rows_in_order_and_counts_rejects_with_line_numbers() {
        let csv = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n\
binance-futures,BTCUSDT,1717200000000000,1717200000001000,1,buy,67000.1,0.01\n\
binance-futures,BTCUSDT,1717200000500000,1717200000501000,,sell,67000.2,0.02\n\
binance-futures,BTCUSDT,oops,1717200000601000,3,buy,67000.3,0.03\n\
binance-futures,ETHUSDT,1717200000700000,1717200000701000,4,buy,3500,1\n\
binance-futures,BTCUSDT,1717200000800000,1717200000801000,5,weird,67000.4,-1\n\
binance-futures,BTCUSDT,1717200000900000,1717200000901000,6,unknown,67000.5,0.05\n";
        let (exchange, symbol) = ids();
        let mut trades = Vec::new();
        let stats = read_trades(csv.as_bytes(), &exchange, &symbol, |_, t, _| trades.push(*t)).expect("readable");
        assert_eq!(stats.rows, 6);
        assert_eq!(stats.rejected, 3);
        let lines: Vec<u64> = stats.reject_samples.iter().map(|r| r.line).collect();
        assert_eq!(lines, [4, 5, 6]);
        assert!(stats.reject_samples[0].reason.contains("timestamp"));
        assert!(stats.reject_samples[1].reason.contains("ETHUSDT"));
        assert_eq!(trades.len(), 3);
        assert_eq!(trades[1].side, Side::Sell);
        assert_eq!(trades[2].side, Side::Unknown);
        assert_eq!(trades[0].price, 67000.1);
        assert_eq!(stats.first_malformed, None, "values out of range are not a broken structure");
    }

    #[test]
    fn a_torn_row_is_malformed_and_named_by_its_line() {
        let csv = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n\
binance-futures,BTCUSDT,1717200000000000,1717200000001000,1,buy,67000.1,0.01\n\
binance-futures,BTCUSDT,17172000005\n\
binance-futures,BTCUSDT,1717200000900000,1717200000901000,6,buy,67000.5,0.05\n";
        let (exchange, symbol) = ids();
        let stats = read_trades(csv.as_bytes(), &exchange, &symbol, |_, _, _| {}).expect("readable");
        let torn = stats.first_malformed.expect("a torn row");
        assert_eq!((torn.line, torn.reason.as_str()), (3, "expected 8 fields, found 3"));
    }

    #[test]
    fn every_bad_row_is_counted_but_only_the_first_few_are_kept_as_samples() {
        let mut csv = String::from("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n");
        for n in 0..(MAX_REJECT_SAMPLES + 5) {
            csv.push_str(&format!("binance-futures,BTCUSDT,1717200000000000,1717200000001000,{n},buy,-1,0.01\n"));
        }
        let (exchange, symbol) = ids();
        let stats = read_trades(csv.as_bytes(), &exchange, &symbol, |_, _, _| {}).expect("readable");
        assert_eq!((stats.rows, stats.rejected), (MAX_REJECT_SAMPLES as u64 + 5, MAX_REJECT_SAMPLES as u64 + 5));
        assert_eq!(stats.reject_samples.len(), MAX_REJECT_SAMPLES);
        assert_eq!(stats.reject_samples.last().map(|r| r.line), Some(MAX_REJECT_SAMPLES as u64 + 1));
    }

    #[test]
    fn a_zero_price_or_amount_is_rejected_like_a_negative_one() {
        let csv = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n\
binance-futures,BTCUSDT,1717200000000000,1717200000001000,1,buy,0,0.01\n\
binance-futures,BTCUSDT,1717200000000000,1717200000001000,2,buy,67000.1,0\n\
binance-futures,BTCUSDT,1717200000000000,1717200000001000,3,buy,67000.1,0.01\n";
        let (exchange, symbol) = ids();
        let stats = read_trades(csv.as_bytes(), &exchange, &symbol, |_, _, _| {}).expect("readable");
        let reasons: Vec<&str> = stats.reject_samples.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons, ["price 0 is not positive", "amount 0 is not positive"]);
    }

    #[test]
    fn a_wrong_header_is_fatal() {
        let (exchange, symbol) = ids();
        let err = read_trades("a,b,c\n1,2,3\n".as_bytes(), &exchange, &symbol, |_, _, _| {}).expect_err("bad header");
        assert!(err.to_string().contains("unexpected header"), "{err}");
    }

    #[test]
    fn an_empty_file_is_a_quiet_day() {
        let (exchange, symbol) = ids();
        let stats = read_trades(&b""[..], &exchange, &symbol, |_, _, _| {}).expect("empty is fine");
        assert_eq!(stats.rows, 0);
    }
}
