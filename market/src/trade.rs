//! One trade as the pipeline sees it after parsing a Tardis `trades` row.
//!
//! Exchange and symbol are not repeated per trade: a trade always belongs to one file of one
//! (exchange, symbol, day), and the code that reads the file carries them.

use serde::{Deserialize, Serialize};

/// Liquidity taker (aggressor) side, as Tardis reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
    Unknown,
}

impl Side {
    /// Tardis writes `buy`, `sell` or `unknown`; anything else is unknown too.
    pub fn parse(input: &str) -> Side {
        match input {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            _ => Side::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
            Side::Unknown => "unknown",
        }
    }
}

/// A trade: exchange time, arrival time (both µs since the Unix epoch, UTC), side, price and amount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    /// Exchange timestamp; candles are bucketed by this time.
    pub exchange_ts_us: i64,
    /// Arrival time at Tardis; daily files are split by this time.
    pub local_ts_us: i64,
    pub side: Side,
    pub price: f64,
    /// In the exchange's native unit (contracts for inverse contracts, base asset otherwise).
    pub amount: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_read_back_from_tardis_words_and_anything_else_is_unknown() {
        for side in [Side::Buy, Side::Sell, Side::Unknown] {
            assert_eq!(Side::parse(side.as_str()), side);
        }
        assert_eq!([Side::Buy, Side::Sell, Side::Unknown].map(Side::as_str), ["buy", "sell", "unknown"]);
        assert_eq!(Side::parse("BUY"), Side::Unknown);
        assert_eq!(Side::parse(""), Side::Unknown);
    }
}
