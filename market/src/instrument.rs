//! Instrument definitions (tick and lot sizes, lifetime), as the pipeline keeps them.
//!
//! The Tardis JSON shape (`priceIncrement`, `changes[]`, ...) is converted into this type by the
//! Tardis client; this type does not know that shape.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Exchange, Symbol, TradingDay};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstrumentKind {
    Spot,
    Perpetual,
    Future,
    Option,
    Combo,
}

impl InstrumentKind {
    pub fn parse(input: &str) -> Option<Self> {
        Some(match input {
            "spot" => InstrumentKind::Spot,
            "perpetual" => InstrumentKind::Perpetual,
            "future" => InstrumentKind::Future,
            "option" => InstrumentKind::Option,
            "combo" => InstrumentKind::Combo,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstrumentKind::Spot => "spot",
            InstrumentKind::Perpetual => "perpetual",
            InstrumentKind::Future => "future",
            InstrumentKind::Option => "option",
            InstrumentKind::Combo => "combo",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instrument {
    pub exchange: Exchange,
    /// The exchange-native id (`btcusdt`, `XBTUSD`).
    pub id: String,
    /// The dataset symbol used in download URLs and CSV rows (`BTCUSDT`).
    pub dataset_id: Symbol,
    pub base_currency: String,
    pub quote_currency: String,
    pub kind: InstrumentKind,
    pub contract_type: Option<String>,
    pub active: bool,
    pub available_since: DateTime<Utc>,
    pub available_to: Option<DateTime<Utc>>,
    pub price_increment: f64,
    pub amount_increment: f64,
    pub min_trade_amount: f64,
    pub inverse: bool,
    pub contract_multiplier: Option<f64>,
}

impl Instrument {
    /// Whether the instrument traded at any point of `day`.
    pub fn listed_on(&self, day: TradingDay) -> bool {
        let start = day.start_us();
        let end = day.end_us();
        self.available_since.timestamp_micros() < end
            && self.available_to.is_none_or(|to| to.timestamp_micros() > start)
    }
}
