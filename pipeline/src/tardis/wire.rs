//! Tardis JSON shapes (exchange details, instruments, error bodies) and their conversion into domain
//! types. Field names follow the Tardis API exactly; nothing outside this module sees them.

use chrono::{DateTime, Utc};
use market::{Exchange, Instrument, InstrumentKind, Symbol};
use serde::Deserialize;

/// `GET /v1/exchanges/{exchange}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeDetails {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub enabled: bool,
    pub datasets: Option<Datasets>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Datasets {
    pub exported_from: Option<DateTime<Utc>>,
    pub exported_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub symbols: Vec<DatasetSymbol>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSymbol {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    pub available_since: Option<DateTime<Utc>>,
    pub available_to: Option<DateTime<Utc>>,
    #[serde(default)]
    pub data_types: Vec<String>,
}

/// `GET /v1/instruments/{exchange}` (array) and `/v1/instruments/{exchange}/{symbol}` (one).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireInstrument {
    pub id: String,
    pub dataset_id: Option<String>,
    pub exchange: String,
    pub base_currency: String,
    pub quote_currency: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub contract_type: Option<String>,
    pub active: bool,
    pub available_since: DateTime<Utc>,
    pub available_to: Option<DateTime<Utc>>,
    pub price_increment: f64,
    pub amount_increment: f64,
    #[serde(default)]
    pub min_trade_amount: f64,
    #[serde(default)]
    pub inverse: Option<bool>,
    pub contract_multiplier: Option<f64>,
}

/// Tardis error body: `{"code": 401, "message": "..."}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub code: Option<i64>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("instrument {id:?} of {exchange} has an invalid field: {reason}")]
    Instrument { exchange: String, id: String, reason: String },
}

impl WireInstrument {
    pub fn into_domain(self) -> Result<Instrument, WireError> {
        let invalid =
            |reason: String| WireError::Instrument { exchange: self.exchange.clone(), id: self.id.clone(), reason };
        let exchange = Exchange::parse(&self.exchange).map_err(|e| invalid(e.to_string()))?;
        let dataset_id =
            Symbol::parse(self.dataset_id.as_deref().unwrap_or(&self.id)).map_err(|e| invalid(e.to_string()))?;
        let kind = InstrumentKind::parse(&self.kind).ok_or_else(|| invalid(format!("unknown type {:?}", self.kind)))?;
        if !(self.price_increment > 0.0 && self.amount_increment > 0.0) {
            return Err(invalid(format!(
                "increments must be positive (priceIncrement {}, amountIncrement {})",
                self.price_increment, self.amount_increment
            )));
        }
        Ok(Instrument {
            exchange,
            id: self.id,
            dataset_id,
            base_currency: self.base_currency,
            quote_currency: self.quote_currency,
            kind,
            contract_type: self.contract_type,
            active: self.active,
            available_since: self.available_since,
            available_to: self.available_to,
            price_increment: self.price_increment,
            amount_increment: self.amount_increment,
            min_trade_amount: self.min_trade_amount,
            inverse: self.inverse.unwrap_or(false),
            contract_multiplier: self.contract_multiplier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_instrument_example_converts() {
        // The example from the Tardis instruments documentation.
        let json = r#"{"id":"XBTUSD","datasetId":"XBTUSD","exchange":"bitmex","baseCurrency":"BTC","quoteCurrency":"USD",
 "settlementCurrency":"BTC","type":"perpetual","active":true,"availableSince":"2019-03-30T00:00:00.000Z",
 "priceIncrement":0.1,"amountIncrement":100,"minTradeAmount":100,"makerFee":0.0005,"takerFee":0.0005,
 "inverse":true,"contractType":"inverse_perpetual","contractMultiplier":1,"underlyingIndex":".BXBT",
 "changes":[{"until":"2021-06-08T04:30:00.000Z","amountIncrement":1,"minTradeAmount":1}]}"#;
        let wire: WireInstrument = serde_json::from_str(json).expect("documented shape parses");
        let inst = wire.into_domain().expect("valid instrument");
        assert_eq!(inst.dataset_id.as_str(), "XBTUSD");
        assert_eq!(inst.kind, InstrumentKind::Perpetual);
        assert!(inst.inverse);
        assert_eq!(inst.amount_increment, 100.0);
    }

    #[test]
    fn exchange_details_carry_exported_until() {
        let json = r#"{"id":"binance-futures","name":"Binance USDT Futures","enabled":true,
 "datasets":{"formats":["csv"],"exportedFrom":"2019-11-17T00:00:00.000Z","exportedUntil":"2024-01-03T00:00:00.000Z",
   "symbols":[{"id":"BTCUSDT","type":"perpetual","availableSince":"2019-11-17T00:00:00.000Z","dataTypes":["trades","quotes"]}]}}"#;
        let details: ExchangeDetails = serde_json::from_str(json).expect("documented shape parses");
        let datasets = details.datasets.expect("datasets present");
        assert_eq!(datasets.exported_until.map(|t| t.to_rfc3339()), Some("2024-01-03T00:00:00+00:00".to_owned()));
        assert_eq!(datasets.symbols[0].data_types, ["trades", "quotes"]);
    }
}
