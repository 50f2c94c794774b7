//! The stable id of every check this crate defines, referenced by the checks themselves, by reports, by
//! validation configuration (`check_thresholds`) and by tests. An id is `family.name`; it never changes
//! meaning, since stored validations and scripts key on it.
//!
//! Checks that need ground truth (the harness's) have their ids beside them, in the harness.

pub const CONFIGURED_SYMBOLS_LISTED: &str = "completeness.configured_symbols_listed";
pub const FILES_PRESENT: &str = "completeness.files_present";
pub const CANDLE_PER_TRADED_MINUTE: &str = "completeness.candle_per_traded_minute";
pub const ROWS_INSIDE_DATE: &str = "completeness.rows_inside_date";

pub const OHLC_INVARIANTS: &str = "quality.ohlc_invariants";
pub const ROWS_PARSED: &str = "quality.rows_parsed";
pub const TRADES_ON_GRID: &str = "quality.trades_on_grid";
pub const UNIQUE_TRADE_IDS: &str = "quality.unique_trade_ids";
pub const ARRIVAL_ORDER: &str = "quality.arrival_order";
pub const PRICE_SPIKES: &str = "quality.price_spikes";
pub const STALE_PRICES: &str = "quality.stale_prices";
pub const VOLUME_ANOMALIES: &str = "quality.volume_anomalies";
pub const QUOTES_NOT_CROSSED: &str = "quality.quotes_not_crossed";

pub const CANDLES_MATCH_TRADES: &str = "consistency.candles_match_trades";
pub const ROLLUPS_MATCH_DIRECT: &str = "consistency.rollups_match_direct";
pub const COUNTS_AGREE: &str = "consistency.counts_agree";
pub const CANDLE_SYMBOLS_IN_INSTRUMENTS: &str = "consistency.candle_symbols_in_instruments";
pub const CROSS_EXCHANGE_DIVERGENCE: &str = "consistency.cross_exchange_divergence";

/// Every check of a date's validation from the data alone ([`super::validate_day`]), in report order.
pub const VALIDATE_DAY: [&str; 17] = [
    CONFIGURED_SYMBOLS_LISTED,
    FILES_PRESENT,
    CANDLE_PER_TRADED_MINUTE,
    ROWS_INSIDE_DATE,
    OHLC_INVARIANTS,
    ROWS_PARSED,
    TRADES_ON_GRID,
    UNIQUE_TRADE_IDS,
    ARRIVAL_ORDER,
    PRICE_SPIKES,
    STALE_PRICES,
    VOLUME_ANOMALIES,
    CANDLES_MATCH_TRADES,
    ROLLUPS_MATCH_DIRECT,
    COUNTS_AGREE,
    CANDLE_SYMBOLS_IN_INSTRUMENTS,
    CROSS_EXCHANGE_DIVERGENCE,
];
