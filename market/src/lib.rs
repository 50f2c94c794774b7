//! Pure market-data domain: trading days, exchanges, symbols, trades, instruments, candles and the
//! validation checks over them.
//!
//! Nothing in this crate does IO, spawns tasks or fails on data: parsers reject bad input once at the
//! boundary (`TradingDay::parse`, `Exchange::parse`, ...) and checks return findings, never errors.
//! Wire formats (Tardis CSV and JSON, BigQuery JSON) live in the crates that speak them.

pub mod candle;
pub mod checks;
pub mod day;
pub mod instrument;
pub mod names;
pub mod trade;
pub mod trade_ids;

pub use candle::{Candle, CandleBuilder, CandleKey, Interval, rollup};
pub use day::{DateRange, DayError, TradingDay};
pub use instrument::{Instrument, InstrumentKind};
pub use names::{Exchange, NameError, Symbol};
pub use trade::{Side, Trade};
pub use trade_ids::TradeIds;

/// Microseconds in one minute, the width of the base candle.
pub const MINUTE_US: i64 = 60_000_000;
/// Microseconds in one hour.
pub const HOUR_US: i64 = 60 * MINUTE_US;
/// Microseconds in one UTC day.
pub const DAY_US: i64 = 86_400_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widths_are_a_minute_an_hour_and_a_day_in_microseconds() {
        assert_eq!(MINUTE_US, 60 * 1_000_000);
        assert_eq!(HOUR_US, 3_600 * 1_000_000);
        assert_eq!(DAY_US, 24 * HOUR_US);
    }
}
