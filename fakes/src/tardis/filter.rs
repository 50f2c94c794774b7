//! The `?filter=` of `/v1/instruments/{exchange}`: a JSON object with `baseCurrency`, `quoteCurrency`, `type`,
//! `contractType`, `underlyingType` (each a string or an array of strings), `active` (a boolean),
//! `availableSince` and `availableTo` (ISO 8601 instants: instruments available at some point of that
//! window), applied to instruments in their JSON shape so that generated and replayed instruments filter
//! alike.
//!
//! Lenient where Tardis' behaviour is unknown: keys it does not know are ignored, and string values are
//! compared exactly (case-sensitive). Malformed JSON or a known key of the wrong type is an error.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

/// A parsed filter; `None` fields accept everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct InstrumentFilter {
    lists: Vec<(&'static str, Vec<String>)>,
    active: Option<bool>,
    available_since: Option<DateTime<Utc>>,
    available_to: Option<DateTime<Utc>>,
}

/// Keys whose value is a string or an array of strings, matched against the same instrument field.
const LIST_KEYS: [&str; 5] = ["baseCurrency", "quoteCurrency", "type", "contractType", "underlyingType"];

impl InstrumentFilter {
    /// Parses the decoded query value; the error says what is wrong, for the 400 body.
    pub(super) fn parse(text: &str) -> Result<InstrumentFilter, String> {
        let value: Value = serde_json::from_str(text).map_err(|err| format!("filter is not valid JSON: {err}"))?;
        let Value::Object(object) = value else {
            return Err("filter must be a JSON object".to_owned());
        };
        let mut filter = InstrumentFilter::default();
        for key in LIST_KEYS {
            if let Some(values) = strings(&object, key)? {
                filter.lists.push((key, values));
            }
        }
        filter.active = match object.get("active") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(active)) => Some(*active),
            Some(other) => return Err(format!("filter field 'active' must be a boolean, got {other}")),
        };
        filter.available_since = instant(&object, "availableSince")?;
        filter.available_to = instant(&object, "availableTo")?;
        Ok(filter)
    }

    /// Whether an instrument (Tardis' JSON shape) passes.
    pub(super) fn matches(&self, instrument: &Value) -> bool {
        let lists_match = self.lists.iter().all(|(key, allowed)| {
            instrument.get(*key).and_then(Value::as_str).is_some_and(|value| allowed.iter().any(|a| a == value))
        });
        let active_matches =
            self.active.is_none_or(|want| instrument.get("active").and_then(Value::as_bool) == Some(want));
        let since = instrument.get("availableSince").and_then(Value::as_str).and_then(parse_instant);
        let to = instrument.get("availableTo").and_then(Value::as_str).and_then(parse_instant);
        // Available at some point of [filter since, filter to]: listed before the window ends and not
        // delisted before it starts.
        let starts_in_time = self.available_to.is_none_or(|end| since.is_none_or(|since| since <= end));
        let ends_in_time = self.available_since.is_none_or(|start| to.is_none_or(|to| to > start));
        lists_match && active_matches && starts_in_time && ends_in_time
    }
}

fn strings(object: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    let wrong = || format!("filter field '{key}' must be a string or an array of strings");
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(vec![value.clone()])),
        Some(Value::Array(values)) => {
            values.iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(wrong)).collect::<Result<_, _>>().map(Some)
        }
        Some(_) => Err(wrong()),
    }
}

fn instant(object: &Map<String, Value>, key: &str) -> Result<Option<DateTime<Utc>>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_instant(text)
            .map(Some)
            .ok_or_else(|| format!("filter field '{key}' must be an ISO 8601 date, got {text:?}")),
        Some(other) => Err(format!("filter field '{key}' must be an ISO 8601 date string, got {other}")),
    }
}

/// `2024-06-01T00:00:00.000Z` (any RFC 3339 instant) or a bare date `2024-06-01` (its midnight UTC).
fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn instrument(base: &str, since: &str, to: Option<&str>) -> Value {
        let mut value = json!({"baseCurrency": base, "quoteCurrency": "USD", "type": "perpetual", "active": to.is_none(),
            "availableSince": since});
        if let Some(to) = to {
            value["availableTo"] = json!(to);
        }
        value
    }

    #[test]
    fn strings_and_arrays_select_and_other_shapes_are_rejected() {
        let btc = instrument("BTC", "2020-01-01T00:00:00.000Z", None);
        let eth = instrument("ETH", "2020-01-01T00:00:00.000Z", None);
        let one = InstrumentFilter::parse(r#"{"baseCurrency":"BTC"}"#).expect("valid");
        assert!(one.matches(&btc) && !one.matches(&eth));
        let both = InstrumentFilter::parse(r#"{"baseCurrency":["BTC","ETH"],"type":"perpetual"}"#).expect("valid");
        assert!(both.matches(&btc) && both.matches(&eth));
        assert!(!InstrumentFilter::parse(r#"{"type":"spot"}"#).expect("valid").matches(&btc));
        assert!(InstrumentFilter::parse(r#"{"unknownKey":1}"#).expect("ignored").matches(&btc));
        for bad in [r#"{"baseCurrency":1}"#, r#"{"active":"yes"}"#, r#"{"availableSince":"June"}"#, "[]", "{", ""] {
            assert!(InstrumentFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_window_keeps_instruments_available_at_some_point_of_it() {
        let delisted = instrument("BTC", "2020-01-01T00:00:00.000Z", Some("2021-01-01T00:00:00.000Z"));
        let listed_later = instrument("BTC", "2022-01-01T00:00:00.000Z", None);
        let window = |since: &str, to: &str| {
            InstrumentFilter::parse(&format!(r#"{{"availableSince":"{since}","availableTo":"{to}"}}"#)).expect("valid")
        };
        assert!(window("2020-06-01", "2020-07-01").matches(&delisted));
        assert!(!window("2020-06-01", "2020-07-01").matches(&listed_later));
        assert!(!window("2021-06-01", "2022-06-01").matches(&delisted));
        assert!(window("2021-06-01T00:00:00.000Z", "2022-06-01T00:00:00.000Z").matches(&listed_later));
        let active = InstrumentFilter::parse(r#"{"active":true}"#).expect("valid");
        assert!(active.matches(&listed_later) && !active.matches(&delisted));
    }
}
