//! Tardis JSON as the real API spells it: exchange details, instruments, error bodies.

use chrono::{DateTime, SecondsFormat, Utc};
use fixtures::{ExchangeSpec, SymbolSpec};
use market::TradingDay;
use serde_json::{Value, json};

/// Tardis' timestamp style: `2019-11-17T00:00:00.000Z`.
pub(super) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn day_start(day: TradingDay) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(day.start_us()).expect("day starts are valid instants")
}

/// `{"code": .., "message": ..}`, the error body of api.tardis.dev.
pub(super) fn error(code: u16, message: &str) -> Value {
    json!({"code": code, "message": message})
}

pub(super) fn instrument(spec: &SymbolSpec) -> Value {
    let i = &spec.instrument;
    json!({
        "id": i.id,
        "datasetId": i.dataset_id.as_str(),
        "exchange": i.exchange.as_str(),
        "baseCurrency": i.base_currency,
        "quoteCurrency": i.quote_currency,
        "type": i.kind.as_str(),
        "contractType": i.contract_type,
        "active": i.active,
        "availableSince": iso(i.available_since),
        "availableTo": i.available_to.map(iso),
        "priceIncrement": i.price_increment,
        "amountIncrement": i.amount_increment,
        "minTradeAmount": i.min_trade_amount,
        "makerFee": 0.0002,
        "takerFee": 0.0005,
        "inverse": i.inverse,
        "contractMultiplier": i.contract_multiplier,
        "changes": [],
    })
}

/// `GET /v1/exchanges/{exchange}`.
pub(super) fn exchange_details(spec: &ExchangeSpec, exported_until: DateTime<Utc>) -> Value {
    let since = iso(day_start(spec.available_since));
    json!({
        "id": spec.exchange.as_str(),
        "name": spec.name,
        "enabled": true,
        "supportsDatasets": true,
        "availableSince": since,
        "availableChannels": ["trade"],
        "availableSymbols": spec.symbols.iter().map(|s| json!({
            "id": s.instrument.id,
            "type": s.instrument.kind.as_str(),
            "availableSince": iso(s.instrument.available_since),
            "availableTo": s.instrument.available_to.map(iso),
        })).collect::<Vec<_>>(),
        "incidentReports": [],
        "datasets": {
            "formats": ["csv"],
            "exportedFrom": since,
            "exportedUntil": iso(exported_until),
            "stats": {"trades": 0, "bookChanges": 0},
            "symbols": spec.symbols.iter().map(|s| json!({
                "id": s.instrument.dataset_id.as_str(),
                "type": s.instrument.kind.as_str(),
                "availableSince": iso(s.instrument.available_since),
                "availableTo": s.instrument.available_to.map(iso),
                "dataTypes": ["trades"],
            })).collect::<Vec<_>>(),
        },
    })
}

/// One entry of `GET /v1/exchanges`.
pub(super) fn exchange_summary(spec: &ExchangeSpec) -> Value {
    json!({
        "id": spec.exchange.as_str(),
        "name": spec.name,
        "enabled": true,
        "supportsDatasets": true,
        "availableSince": iso(day_start(spec.available_since)),
    })
}
