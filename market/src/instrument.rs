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

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [InstrumentKind; 5] = [
        InstrumentKind::Spot,
        InstrumentKind::Perpetual,
        InstrumentKind::Future,
        InstrumentKind::Option,
        InstrumentKind::Combo,
    ];

    #[test]
    fn every_kind_reads_back_from_tardis_name_and_nothing_else_is_a_kind() {
        let names: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["spot", "perpetual", "future", "option", "combo"]);
        for kind in KINDS {
            assert_eq!(InstrumentKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(InstrumentKind::parse("Perpetual"), None);
        assert_eq!(InstrumentKind::parse("swap"), None);
    }

    fn future(since: &str, to: Option<&str>) -> Instrument {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).expect("a time").with_timezone(&Utc);
        Instrument {
            exchange: Exchange::parse("deribit").expect("ok"),
            id: "BTC-28JUN24".to_owned(),
            dataset_id: Symbol::parse("BTC-28JUN24").expect("ok"),
            base_currency: "BTC".to_owned(),
            quote_currency: "USD".to_owned(),
            kind: InstrumentKind::Future,
            contract_type: None,
            active: to.is_none(),
            available_since: at(since),
            available_to: to.map(at),
            price_increment: 2.5,
            amount_increment: 10.0,
            min_trade_amount: 10.0,
            inverse: true,
            contract_multiplier: Some(10.0),
        }
    }

    #[test]
    fn an_instrument_is_listed_on_the_days_it_traded_any_part_of() {
        let day = TradingDay::parse("2024-06-28").expect("valid");
        // Listed at the last microsecond of the day, or expiring at its first: listed.
        assert!(future("2024-06-28T23:59:59.999999Z", None).listed_on(day));
        assert!(future("2024-01-01T00:00:00Z", Some("2024-06-28T00:00:00.000001Z")).listed_on(day));
        // Listed at the next midnight, or expired at this one: not.
        assert!(!future("2024-06-29T00:00:00Z", None).listed_on(day));
        assert!(!future("2024-01-01T00:00:00Z", Some("2024-06-28T00:00:00Z")).listed_on(day));
        assert!(future("2024-01-01T00:00:00Z", Some("2024-06-28T08:00:00Z")).listed_on(day));
    }
}
