//! Tardis JSON as the real API spells it: exchange details, instruments, error bodies. Optional fields are
//! left out when they have no value (`availableTo` of a listed instrument), as the API does.

use chrono::{DateTime, SecondsFormat, Utc};
use fixtures::{InstrumentChange, SymbolSpec};
use serde_json::{Map, Value, json};

use super::options::IncidentReport;

/// Tardis' timestamp style: `2019-11-17T00:00:00.000Z`.
pub(super) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `{"code": .., "message": ..}`, the error body of api.tardis.dev.
pub(super) fn error(code: u16, message: &str) -> Value {
    json!({"code": code, "message": message})
}

/// Adds `key: value` when there is a value.
fn insert_some(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

/// One instrument of `/v1/instruments/{exchange}`.
pub(super) fn instrument(spec: &SymbolSpec) -> Value {
    let i = &spec.instrument;
    let mut object = json!({
        "id": i.id,
        "datasetId": i.dataset_id.as_str(),
        "exchange": i.exchange.as_str(),
        "baseCurrency": i.base_currency,
        "quoteCurrency": i.quote_currency,
        "type": i.kind.as_str(),
        "active": i.active,
        "availableSince": iso(i.available_since),
        "priceIncrement": i.price_increment,
        "amountIncrement": i.amount_increment,
        "minTradeAmount": i.min_trade_amount,
        "makerFee": spec.maker_fee,
        "takerFee": spec.taker_fee,
        "inverse": i.inverse,
        "settlementCurrency": spec.settlement_currency,
        "underlyingType": "native",
        "changes": spec.changes.iter().map(change).collect::<Vec<_>>(),
    });
    if let Value::Object(object) = &mut object {
        insert_some(object, "contractType", i.contract_type.as_ref().map(|t| json!(t)));
        insert_some(object, "availableTo", i.available_to.map(|t| json!(iso(t))));
        insert_some(object, "contractMultiplier", i.contract_multiplier.map(|m| json!(m)));
    }
    object
}

fn change(change: &InstrumentChange) -> Value {
    let mut object = Map::new();
    object.insert("until".to_owned(), json!(iso(change.until)));
    insert_some(&mut object, "priceIncrement", change.price_increment.map(|v| json!(v)));
    insert_some(&mut object, "amountIncrement", change.amount_increment.map(|v| json!(v)));
    insert_some(&mut object, "minTradeAmount", change.min_trade_amount.map(|v| json!(v)));
    insert_some(&mut object, "makerFee", change.maker_fee.map(|v| json!(v)));
    insert_some(&mut object, "takerFee", change.taker_fee.map(|v| json!(v)));
    Value::Object(object)
}

/// A symbol of `availableSymbols` (exchange-native id) or of `datasets.symbols` (dataset id).
#[derive(Debug, Clone)]
pub(super) struct SymbolEntry {
    pub(super) id: String,
    /// `spot`, `perpetual`, ...; unknown in replays without instruments.
    pub(super) kind: Option<String>,
    pub(super) available_since: DateTime<Utc>,
    pub(super) available_to: Option<DateTime<Utc>>,
    /// Only for `datasets.symbols`.
    pub(super) data_types: Option<Vec<String>>,
}

impl SymbolEntry {
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("id".to_owned(), json!(self.id));
        insert_some(&mut object, "type", self.kind.as_ref().map(|k| json!(k)));
        object.insert("availableSince".to_owned(), json!(iso(self.available_since)));
        insert_some(&mut object, "availableTo", self.available_to.map(|t| json!(iso(t))));
        insert_some(&mut object, "dataTypes", self.data_types.as_ref().map(|t| json!(t)));
        Value::Object(object)
    }
}

/// Everything `/v1/exchanges/{exchange}` says about one exchange.
#[derive(Debug, Clone)]
pub(super) struct ExchangeEntry {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) available_since: DateTime<Utc>,
    pub(super) exported_until: DateTime<Utc>,
    pub(super) available_symbols: Vec<SymbolEntry>,
    pub(super) dataset_symbols: Vec<SymbolEntry>,
}

/// `GET /v1/exchanges/{exchange}`.
pub(super) fn exchange_details(entry: &ExchangeEntry, incidents: &[IncidentReport]) -> Value {
    let since = iso(entry.available_since);
    json!({
        "id": entry.id,
        "name": entry.name,
        "enabled": true,
        "supportsDatasets": true,
        "availableSince": since,
        "availableChannels": channels(&entry.id),
        "availableSymbols": entry.available_symbols.iter().map(SymbolEntry::to_json).collect::<Vec<_>>(),
        "incidentReports": incidents.iter().map(|report| json!({
            "from": iso(report.from),
            "to": iso(report.to),
            "status": report.status.as_str(),
            "details": report.details,
        })).collect::<Vec<_>>(),
        "datasets": {
            "formats": ["csv"],
            "exportedFrom": since,
            "exportedUntil": iso(entry.exported_until),
            "stats": {"trades": 0, "bookChanges": 0},
            "symbols": entry.dataset_symbols.iter().map(SymbolEntry::to_json).collect::<Vec<_>>(),
        },
    })
}

/// One entry of `GET /v1/exchanges`.
pub(super) fn exchange_summary(entry: &ExchangeEntry) -> Value {
    json!({
        "id": entry.id,
        "name": entry.name,
        "enabled": true,
        "supportsDatasets": true,
        "availableSince": iso(entry.available_since),
    })
}

/// Tardis' display name of a known exchange id.
pub(super) fn known_name(id: &str) -> Option<&'static str> {
    Some(match id {
        "binance-futures" => "Binance USDT Futures",
        "bitmex" => "BitMEX",
        "deribit" => "Deribit",
        "binance" => "Binance Spot",
        "bybit" => "Bybit Derivatives",
        "okex-swap" => "OKX Swap",
        _ => return None,
    })
}

/// The exchange's own channel names Tardis records (a representative subset for the known exchanges).
fn channels(id: &str) -> Vec<&'static str> {
    match id {
        "binance-futures" => vec!["trade", "aggTrade", "bookTicker", "depth", "markPrice", "openInterest", "ticker"],
        "bitmex" => vec!["trade", "quote", "orderBookL2", "instrument", "liquidation", "funding"],
        "deribit" => vec!["trades", "book", "ticker", "quote", "perpetual"],
        _ => vec!["trades"],
    }
}
