//! Streaming reader of a Tardis `trades` CSV (already decompressed or not: it takes any `Read`, or bytes in
//! chunks through [`TradesParser`]).
//!
//! Tardis writes these files one way: eight unquoted comma-separated fields, `\n`-terminated lines (a
//! `\r\n` ending is accepted). The reader is written for exactly that: it splits lines and fields on their
//! bytes, parses the integers and the usual decimals itself (falling back to the standard library for
//! anything else, so every value means what `str::parse` says) and never copies a row. Quotes have no
//! meaning here: a quoted cell is a cell with quotes in it, and fails to parse as a number.
//!
//! Memory is constant: a carried partial line, whatever the file size. A row that does not parse is counted
//! and sampled, never silently dropped and never fatal; a wrong header or an IO/gzip error is fatal for the
//! file. Blank lines are skipped and not counted. This module does not decide what to do with rows outside
//! the day.

use std::io::Read;
use std::sync::mpsc;

use market::{Exchange, Side, Symbol, Trade};

/// The exact header of a Tardis trades file.
pub const TRADES_HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

/// At most this many rejected rows are described per file.
const MAX_REJECT_SAMPLES: usize = 20;

/// Bytes handed from the decompressing thread to the parser at a time.
const CHUNK: usize = 1 << 20;

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
    /// A row torn or garbled in its structure (wrong number of fields): the file is not what Tardis
    /// published.
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
    mut input: impl Read,
    exchange: &Exchange,
    symbol: &Symbol,
    on_trade: impl FnMut(u64, &Trade, &[u8]),
) -> Result<ReadStats, CsvError> {
    let mut parser = TradesParser::new(exchange, symbol, on_trade);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => parser.feed(&buf[..n])?,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(CsvError::Io { line: parser.line + 1, source }),
        }
    }
    parser.finish()
}

/// [`read_trades`] with `input` read (and so decompressed, for a gzip decoder) on a second thread while
/// this one parses: the two overlap, and `on_trade` still runs here, in file order.
pub fn read_trades_in_background(
    input: impl Read + Send,
    exchange: &Exchange,
    symbol: &Symbol,
    on_trade: impl FnMut(u64, &Trade, &[u8]),
) -> Result<ReadStats, CsvError> {
    let mut parser = TradesParser::new(exchange, symbol, on_trade);
    let failed = std::thread::scope(|scope| {
        // Three buffers go round: one filling, one parsed, one waiting.
        let (full_tx, full_rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(2);
        let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(3);
        for _ in 0..3 {
            empty_tx.send(Vec::with_capacity(CHUNK)).expect("the receiver is alive");
        }
        scope.spawn(move || fill_chunks(input, &empty_rx, &full_tx));
        // Dropping both ends on the way out stops the reader, whatever it was waiting for.
        let (full_rx, empty_tx) = (full_rx, empty_tx);
        for chunk in full_rx.iter() {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(source) => return Some(CsvError::Io { line: parser.line + 1, source }),
            };
            if let Err(err) = parser.feed(&chunk) {
                return Some(err);
            }
            // The reader may have stopped (end of input): the buffer is then simply dropped.
            let _ = empty_tx.send(chunk);
        }
        None
    });
    match failed {
        Some(err) => Err(err),
        None => parser.finish(),
    }
}

/// The reading side of [`read_trades_in_background`]: fills each empty buffer from `input` and passes it
/// on, until the input ends, fails, or the parser stops listening.
fn fill_chunks(
    mut input: impl Read,
    empty: &mpsc::Receiver<Vec<u8>>,
    full: &mpsc::SyncSender<std::io::Result<Vec<u8>>>,
) {
    while let Ok(mut buf) = empty.recv() {
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        while filled < CHUNK {
            match input.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let _ = full.send(Err(err));
                    return;
                }
            }
        }
        buf.truncate(filled);
        if filled == 0 || full.send(Ok(buf)).is_err() {
            return;
        }
        if filled < CHUNK {
            return;
        }
    }
}

/// A push parser of a trades file: feed it the bytes in any chunks, then [`TradesParser::finish`].
pub struct TradesParser<'a, F> {
    exchange: &'a Exchange,
    symbol: &'a Symbol,
    /// `exchange,symbol,`: how every row of the file starts.
    prefix: Vec<u8>,
    on_trade: F,
    stats: ReadStats,
    /// Lines read so far (blank lines are not lines).
    line: u64,
    header_seen: bool,
    /// The start of a line the previous chunk ended in.
    carry: Vec<u8>,
}

impl<'a, F: FnMut(u64, &Trade, &[u8])> TradesParser<'a, F> {
    pub fn new(exchange: &'a Exchange, symbol: &'a Symbol, on_trade: F) -> Self {
        TradesParser {
            exchange,
            symbol,
            prefix: format!("{exchange},{symbol},").into_bytes(),
            on_trade,
            stats: ReadStats::default(),
            line: 0,
            header_seen: false,
            carry: Vec::new(),
        }
    }

    /// The next bytes of the file. Fails only on a wrong header.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), CsvError> {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            let Some(end) = memchr::memchr(b'\n', rest) else {
                self.carry.extend_from_slice(rest);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&rest[..end]);
            self.line_of(&line)?;
            line.clear();
            self.carry = line;
            rest = &rest[end + 1..];
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', rest) {
            self.line_of(&rest[start..end])?;
            start = end + 1;
        }
        self.carry.extend_from_slice(&rest[start..]);
        Ok(())
    }

    /// The end of the file: the last line may lack its newline.
    pub fn finish(mut self) -> Result<ReadStats, CsvError> {
        let last = std::mem::take(&mut self.carry);
        self.line_of(&last)?;
        Ok(self.stats)
    }

    fn line_of(&mut self, bytes: &[u8]) -> Result<(), CsvError> {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.is_empty() {
            return Ok(());
        }
        self.line += 1;
        if !self.header_seen {
            self.header_seen = true;
            if bytes != TRADES_HEADER.as_bytes() {
                return Err(CsvError::Header { found: String::from_utf8_lossy(bytes).into_owned() });
            }
            return Ok(());
        }
        let line = self.line;
        self.stats.rows += 1;
        if let Some((trade, id)) = bytes.strip_prefix(self.prefix.as_slice()).and_then(common_row) {
            (self.on_trade)(line, &trade, id);
            return Ok(());
        }
        let Some(fields) = split8(bytes) else {
            let found = memchr::memchr_iter(b',', bytes).count() + 1;
            let reason = format!("expected 8 fields, found {found}");
            self.stats.first_malformed.get_or_insert_with(|| RejectedRow { line, reason: reason.clone() });
            reject(&mut self.stats, line, reason);
            return Ok(());
        };
        match parse_row(&fields, self.exchange, self.symbol) {
            Ok(trade) => (self.on_trade)(line, &trade, fields[4]),
            Err(reason) => reject(&mut self.stats, line, reason),
        }
        Ok(())
    }
}

/// The rest of a row after `exchange,symbol,` in one forward pass, when it is written the common way: plain
/// integer timestamps, `buy` or `sell`, plain positive decimals. Anything else is `None` and goes the
/// general way ([`split8`], [`parse_row`]), which gives the same trade for every row this accepts.
fn common_row(rest: &[u8]) -> Option<(Trade, &[u8])> {
    let (timestamp, rest) = integer_until_comma(rest)?;
    let (local, rest) = integer_until_comma(rest)?;
    let comma = rest.iter().position(|&b| b == b',')?;
    let (id, rest) = (&rest[..comma], &rest[comma + 1..]);
    let (side, rest) = if let Some(rest) = rest.strip_prefix(b"buy,") {
        (Side::Buy, rest)
    } else {
        (Side::Sell, rest.strip_prefix(b"sell,")?)
    };
    let comma = rest.iter().position(|&b| b == b',')?;
    let price = decimal(&rest[..comma])?;
    let amount = decimal(&rest[comma + 1..])?;
    (price > 0.0 && amount > 0.0)
        .then_some((Trade { exchange_ts_us: timestamp, local_ts_us: local, side, price, amount }, id))
}

/// Plain digits up to a comma: the integer and what follows the comma.
fn integer_until_comma(bytes: &[u8]) -> Option<(i64, &[u8])> {
    // Microsecond timestamps of these years have sixteen digits: two eight-digit steps, no search.
    if let Some((sixteen, rest)) = bytes.split_first_chunk::<16>()
        && rest.first() == Some(&b',')
    {
        let (high, low) = sixteen.split_at(8);
        let value = eight_digits(high.try_into().expect("eight"))? * 100_000_000
            + eight_digits(low.try_into().expect("eight"))?;
        return Some((i64::try_from(value).ok()?, &rest[1..]));
    }
    let comma = bytes.iter().take(19).position(|&b| b == b',')?;
    Some((small_integer(&bytes[..comma])?, &bytes[comma + 1..]))
}

/// The eight fields of a row, or `None` when it has another number of them.
fn split8(bytes: &[u8]) -> Option<[&[u8]; 8]> {
    let mut fields: [&[u8]; 8] = [&[]; 8];
    let mut rest = bytes;
    for field in fields.iter_mut().take(7) {
        let comma = memchr::memchr(b',', rest)?;
        *field = &rest[..comma];
        rest = &rest[comma + 1..];
    }
    if memchr::memchr(b',', rest).is_some() {
        return None;
    }
    fields[7] = rest;
    Some(fields)
}

fn reject(stats: &mut ReadStats, line: u64, reason: String) {
    stats.rejected += 1;
    if stats.reject_samples.len() < MAX_REJECT_SAMPLES {
        stats.reject_samples.push(RejectedRow { line, reason });
    }
}

fn parse_row(fields: &[&[u8]; 8], exchange: &Exchange, symbol: &Symbol) -> Result<Trade, String> {
    let text = |i: usize| std::str::from_utf8(fields[i]).map_err(|_| format!("field {} is not UTF-8", i + 1));
    if fields[0] != exchange.as_str().as_bytes() {
        return Err(format!("exchange {:?} does not match the file's {exchange}", text(0)?));
    }
    if fields[1] != symbol.as_str().as_bytes() {
        return Err(format!("symbol {:?} does not match the file's {symbol}", text(1)?));
    }
    let integer = |i: usize, name: &str| match small_integer(fields[i]) {
        Some(value) => Ok(value),
        None => text(i)?.parse::<i64>().map_err(|_| format!("{name} {:?} is not an integer", text(i).unwrap_or(""))),
    };
    let timestamp = integer(2, "timestamp")?;
    let local = integer(3, "local_timestamp")?;
    let side = match fields[5] {
        b"buy" => Side::Buy,
        b"sell" => Side::Sell,
        _ => Side::parse(text(5)?),
    };
    let number = |i: usize, name: &str| match decimal(fields[i]) {
        Some(value) => Ok(value),
        None => text(i)?.parse::<f64>().map_err(|_| format!("{name} {:?} is not a number", text(i).unwrap_or(""))),
    };
    let price = number(6, "price")?;
    let amount = number(7, "amount")?;
    if !(price.is_finite() && price > 0.0) {
        return Err(format!("price {price} is not positive"));
    }
    if !(amount.is_finite() && amount > 0.0) {
        return Err(format!("amount {amount} is not positive"));
    }
    Ok(Trade { exchange_ts_us: timestamp, local_ts_us: local, side, price, amount })
}

/// Plain digits, at most 18 of them (no sign, no overflow possible); anything else is left to `str::parse`.
fn small_integer(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 18 {
        return None;
    }
    i64::try_from(digits(bytes)?).ok()
}

/// The value of 1 to 19 ASCII digits (below 10^19 < 2^64: no overflow), or `None` if one byte is not a digit.
/// Eight digits at a time while there are eight: a timestamp's sixteen digits are two steps.
fn digits(bytes: &[u8]) -> Option<u64> {
    debug_assert!(bytes.len() <= 19);
    let mut value: u64 = 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        value = value * 100_000_000 + eight_digits(chunk.try_into().expect("eight bytes"))?;
    }
    for &b in chunks.remainder() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + u64::from(digit);
    }
    Some(value)
}

/// Eight ASCII digits as a number, by the usual SWAR steps (pairs, then fours, then the eight), or `None`
/// when one byte is not a digit.
fn eight_digits(bytes: [u8; 8]) -> Option<u64> {
    let v = u64::from_le_bytes(bytes);
    // Every byte 0x30..=0x39: its high nibble is 3, and adding 6 leaves it 3.
    let high = v & 0xF0F0_F0F0_F0F0_F0F0;
    let carried = v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0;
    if high | (carried >> 4) != 0x3333_3333_3333_3333 {
        return None;
    }
    let v = v & 0x0F0F_0F0F_0F0F_0F0F;
    let v = (v.wrapping_mul(10 << 8 | 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    Some(v.wrapping_mul(10_000 << 32 | 1) >> 32)
}

/// Powers of ten a double holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// Powers of ten as integers, for joining a decimal's two parts.
const POWERS_OF_TEN: [u64; 20] = {
    let mut table = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// `digits[.digits]` whose digits, without the point, form an integer below 2^53, with at most 22 of them
/// after the point: both that integer and the power of ten are exact doubles, so one division is the
/// correctly rounded value, the very double `str::parse` gives. Anything else (signs, exponents, longer
/// mantissas, `5.` and `.5`) is left to `str::parse`.
fn decimal(bytes: &[u8]) -> Option<f64> {
    let (whole, fraction) = match bytes.iter().position(|&b| b == b'.') {
        Some(point) => (&bytes[..point], &bytes[point + 1..]),
        None => (bytes, &bytes[..0]),
    };
    let total = whole.len() + fraction.len();
    if whole.is_empty() || (fraction.is_empty() && whole.len() < bytes.len()) || total > 16 {
        return None;
    }
    let mantissa =
        digits(whole)? * POWERS_OF_TEN[fraction.len()] + if fraction.is_empty() { 0 } else { digits(fraction)? };
    if mantissa >= 1 << 53 {
        return None;
    }
    let value = mantissa as f64 / EXACT_POWERS_OF_TEN[fraction.len()];
    Some(value)
}

/// The reader the byte reader replaced, on the general `csv` crate, kept as the reference it must equal
/// (here and in the candles stage's tests).
#[cfg(test)]
pub(crate) fn read_trades_reference(
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
    if !reader.read_byte_record(&mut record).map_err(|e| io_error(1, e))? {
        return Ok(stats);
    }
    line += 1;
    let header: Vec<&[u8]> = record.iter().collect();
    if header.join(&b","[..]) != TRADES_HEADER.as_bytes() {
        return Err(CsvError::Header { found: String::from_utf8_lossy(&header.join(&b","[..])).into_owned() });
    }
    while reader.read_byte_record(&mut record).map_err(|e| io_error(line + 1, e))? {
        line += 1;
        stats.rows += 1;
        if record.len() != 8 {
            let reason = format!("expected 8 fields, found {}", record.len());
            stats.first_malformed.get_or_insert_with(|| RejectedRow { line, reason: reason.clone() });
            reject(&mut stats, line, reason);
            continue;
        }
        let fields: Vec<&[u8]> = record.iter().collect();
        let fields: [&[u8]; 8] = fields.try_into().expect("eight fields");
        match parse_row_reference(&fields, exchange, symbol) {
            Ok(trade) => on_trade(line, &trade, &record[4]),
            Err(reason) => reject(&mut stats, line, reason),
        }
    }
    Ok(stats)
}

/// The row parser the byte reader replaced: `str::parse` for every value.
#[cfg(test)]
fn parse_row_reference(fields: &[&[u8]; 8], exchange: &Exchange, symbol: &Symbol) -> Result<Trade, String> {
    let field = |i: usize| std::str::from_utf8(fields[i]).map_err(|_| format!("field {} is not UTF-8", i + 1));
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

    /// [`read_trades_reference`] collecting its rows.
    fn reference(input: &[u8], exchange: &Exchange, symbol: &Symbol) -> (Result<ReadStats, String>, Vec<Row>) {
        let mut rows = Vec::new();
        let stats = read_trades_reference(input, exchange, symbol, |line, t, id| rows.push((line, *t, id.to_vec())));
        (stats.map_err(|e| e.to_string()), rows)
    }

    type Row = (u64, Trade, Vec<u8>);

    /// This reader over `input` fed in chunks of `chunk` bytes.
    fn ours(input: &[u8], chunk: usize, exchange: &Exchange, symbol: &Symbol) -> (Result<ReadStats, String>, Vec<Row>) {
        let mut rows = Vec::new();
        let mut parser =
            TradesParser::new(exchange, symbol, |line, t: &Trade, id: &[u8]| rows.push((line, *t, id.to_vec())));
        for piece in input.chunks(chunk.max(1)) {
            if let Err(err) = parser.feed(piece) {
                drop(parser);
                return (Err(err.to_string()), rows);
            }
        }
        let stats = parser.finish().map_err(|e| e.to_string());
        (stats, rows)
    }

    /// Rows that stress the byte reader where it leaves the common case: signs, exponents, long mantissas,
    /// leading zeros, blank lines, CRLF, torn and overlong rows, bytes that are not UTF-8.
    const ODD_ROWS: &[&[u8]] = &[
        b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,1,buy,67000.1,0.01",
        b"",
        b"binance-futures,BTCUSDT,+1717200000000000,01717200000001000,2,sell,1e5,.5",
        b"binance-futures,BTCUSDT,-1,99999999999999999999,3,buy,5.,0.1234567890123456789",
        b"binance-futures,BTCUSDT,9223372036854775807,9223372036854775808,4,buy,inf,NaN",
        b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,5,buy,-0,1E-3",
        b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,6,Buy,9007199254740993,0.30000000000000004",
        b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,7,buy,12345678901234567890.5,1.0000000000000000000000001",
        b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,8,buy,1..2,0.1\r",
        b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,9,\xff\xfe,67000,1",
        b"binance-futures,BTCUSDT,\xff,1717200000001000,10,buy,67000,1",
        b"binance-\xff,BTCUSDT,1717200000000000,1717200000001000,11,buy,67000,1",
        b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,,buy,67000,1,extra",
        b"binance-futures,BTCUSDT,17172",
        b",,,,,,,",
        b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,12,sell,0.000000000000000000000001,3",
        b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,13,sell,67000.10,3.000",
        b"   ",
    ];

    #[test]
    fn the_byte_reader_equals_the_general_csv_reader_on_odd_rows_in_any_chunking() {
        let (exchange, symbol) = ids();
        let mut file = Vec::from(format!("{TRADES_HEADER}\r\n").as_bytes());
        for row in ODD_ROWS {
            file.extend_from_slice(row);
            file.push(b'\n');
        }
        file.extend_from_slice(b"binance-futures,BTCUSDT,1717200000000000,1717200000001000,99,buy,1,1");
        let expected = reference(&file, &exchange, &symbol);
        assert!(expected.0.as_ref().is_ok_and(|s| s.rejected > 5), "{expected:?}");
        for chunk in [1, 2, 3, 7, 64, 1 << 20] {
            assert_eq!(ours(&file, chunk, &exchange, &symbol), expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_wrong_header_or_a_headerless_file_fails_like_the_general_reader() {
        let (exchange, symbol) = ids();
        for input in [&b"\n\nexchange,symbol\n1,2\n"[..], b"binance-futures,BTCUSDT,1,1,1,buy,1,1\n", b"\n\n"] {
            assert_eq!(ours(input, 3, &exchange, &symbol), reference(input, &exchange, &symbol), "{input:?}");
        }
    }

    proptest::proptest! {
        /// Random files over the bytes that matter to the structure (separators, digits, points, signs,
        /// letters), without quotes (which Tardis never writes): the two readers agree row for row.
        #[test]
        fn the_byte_reader_equals_the_general_csv_reader_on_random_rows(
            rows in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(&b"0123456789.,-+eEbuysl\n "[..]), 0..40),
                0..30,
            ),
            chunk in 1usize..50,
        ) {
            let (exchange, symbol) = ids();
            let mut file = Vec::from(format!("{TRADES_HEADER}\n").as_bytes());
            for row in &rows {
                file.extend_from_slice(b"binance-futures,BTCUSDT,");
                file.extend_from_slice(row);
                file.push(b'\n');
            }
            proptest::prop_assert_eq!(ours(&file, chunk, &exchange, &symbol), reference(&file, &exchange, &symbol));
        }
    }

    proptest::proptest! {
        /// The hand-made number parsers against `str::parse`, on digits of every length they take, with and
        /// without a point, and with a non-digit anywhere.
        #[test]
        fn numbers_parse_to_what_str_parse_gives(
            whole in "[0-9]{1,19}",
            fraction in "[0-9]{0,12}",
            spoiler in proptest::option::of((0usize..20, proptest::sample::select(&b"/:.a-+ "[..]))),
        ) {
            let mut text = whole.clone().into_bytes();
            if let Some((at, byte)) = spoiler {
                let at = at.min(text.len() - 1);
                text[at] = byte;
            }
            let as_str = std::str::from_utf8(&text).expect("ascii");
            proptest::prop_assert_eq!(digits(&text), as_str.parse::<u64>().ok().filter(|_| !as_str.starts_with('+')));
            let number = format!("{whole}.{fraction}");
            if let Some(fast) = decimal(number.as_bytes()) {
                proptest::prop_assert_eq!(fast.to_bits(), number.parse::<f64>().expect("a number").to_bits());
            }
            if let Some(fast) = decimal(&text) {
                proptest::prop_assert_eq!(Some(fast.to_bits()), as_str.parse::<f64>().ok().map(f64::to_bits));
            }
        }
    }

    #[test]
    fn the_common_decimals_take_the_fast_way() {
        for text in ["53382.5", "0.039", "1", "67000.10", "0.000001", "1234567890.123456"] {
            assert_eq!(decimal(text.as_bytes()), Some(text.parse::<f64>().expect("a number")), "{text}");
        }
        for text in ["5.", ".5", "1e5", "+1", "12345678901234567", "9007199254740993"] {
            assert_eq!(decimal(text.as_bytes()), None, "{text} is left to str::parse");
        }
    }

    #[test]
    fn a_quoted_cell_is_a_cell_with_quotes_in_it() {
        let csv = format!(
            "{TRADES_HEADER}\nbinance-futures,BTCUSDT,1717200000000000,1717200000001000,1,buy,\"67000.1\",0.01\n"
        );
        let (exchange, symbol) = ids();
        let stats = read_trades(csv.as_bytes(), &exchange, &symbol, |_, _, _| {}).expect("readable");
        assert_eq!(stats.reject_samples[0].reason, "price \"\\\"67000.1\\\"\" is not a number");
    }

    #[test]
    fn reading_in_the_background_gives_the_same_rows_and_fails_on_a_broken_input() {
        let (exchange, symbol) = ids();
        let mut csv = format!("{TRADES_HEADER}\n");
        for n in 0..50_000u64 {
            csv.push_str(&format!(
                "binance-futures,BTCUSDT,{},{},{n},buy,{}.5,0.01\n",
                1_717_200_000_000_000 + n,
                1_717_200_000_000_000 + n,
                60_000 + n % 7
            ));
        }
        let mut inline = Vec::new();
        let a =
            read_trades(csv.as_bytes(), &exchange, &symbol, |l, t, id| inline.push((l, *t, id.to_vec()))).expect("ok");
        let mut background = Vec::new();
        let b = read_trades_in_background(csv.as_bytes(), &exchange, &symbol, |l, t, id| {
            background.push((l, *t, id.to_vec()))
        })
        .expect("ok");
        assert_eq!((a, inline.len()), (b, 50_000));
        assert_eq!(inline, background);

        // A gzip stream cut in the middle: the error names the line reached, and the reader thread ends.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, csv.as_bytes()).expect("in memory");
        let gz = gz.finish().expect("in memory");
        let cut = &gz[..gz.len() / 2];
        let err = read_trades_in_background(flate2::read::GzDecoder::new(cut), &exchange, &symbol, |_, _, _| {})
            .expect_err("truncated");
        assert!(matches!(err, CsvError::Io { line, .. } if line > 1000), "{err}");
        // A wrong header stops the parser early; the reader thread must not hang on a full channel.
        let wrong = format!("a,b\n{csv}");
        let err = read_trades_in_background(wrong.as_bytes(), &exchange, &symbol, |_, _, _| {}).expect_err("header");
        assert!(matches!(err, CsvError::Header { .. }), "{err}");
    }

    #[test]
    fn an_empty_file_is_a_quiet_day() {
        let (exchange, symbol) = ids();
        let stats = read_trades(&b""[..], &exchange, &symbol, |_, _, _| {}).expect("empty is fine");
        assert_eq!(stats.rows, 0);
    }
}
