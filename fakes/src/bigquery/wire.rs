//! Reading BigQuery request JSON the lenient way real clients need: `null` means absent, int64 fields come as
//! strings or numbers, enum values in any case. It does not know any resource; callers name the fields.

use serde_json::{Map, Value};

use super::errors::ApiError;

/// A request object whose fields are read by name, with `null` treated as absent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obj<'a> {
    map: Option<&'a Map<String, Value>>,
    /// Where this object sits in the request, for error messages (`configuration.load`).
    path: &'a str,
}

impl<'a> Obj<'a> {
    pub fn new(value: &'a Value, path: &'a str) -> Self {
        Self { map: value.as_object(), path }
    }

    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.and_then(|map| map.get(name)).filter(|value| !value.is_null())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn obj(&self, name: &str) -> Option<Obj<'a>> {
        self.get(name).filter(|value| value.is_object()).map(|value| Obj { map: value.as_object(), path: self.path })
    }

    pub fn str(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.bad_value(name, other)),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(Value::String(text)) => {
                parse_bool(text).map(Some).ok_or_else(|| self.bad_value(name, &Value::String(text.clone())))
            }
            Some(other) => Err(self.bad_value(name, other)),
        }
    }

    /// An int64 field, which Google's JSON mapping sends as a string but which hand-written clients send as a number.
    pub fn i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(number)) => {
                number.as_i64().map(Some).ok_or_else(|| self.bad_value(name, &Value::Number(number.clone())))
            }
            Some(Value::String(text)) => {
                text.trim().parse().map(Some).map_err(|_| self.bad_value(name, &Value::String(text.clone())))
            }
            Some(other) => Err(self.bad_value(name, other)),
        }
    }

    pub fn array(&self, name: &str) -> Result<&'a [Value], ApiError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.bad_value(name, other)),
        }
    }

    /// An enum field, upper-cased; `None` when absent.
    pub fn enum_value(&self, name: &str) -> Result<Option<String>, ApiError> {
        Ok(self.str(name)?.map(str::to_ascii_uppercase))
    }

    fn bad_value(&self, name: &str, value: &Value) -> ApiError {
        let at = if self.path.is_empty() { name.to_owned() } else { format!("{}.{name}", self.path) };
        ApiError::invalid(format!("Invalid value at '{at}' ({value})"))
    }
}

/// Bool query parameters and string-encoded bools, case-insensitively: Python sends `True`.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") || text == "1" {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") || text == "0" {
        Some(false)
    } else {
        None
    }
}

/// A copy of `value` without `null` members, so that echoed configurations look like what BigQuery stores.
pub(crate) fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, member)| !member.is_null())
                .map(|(key, member)| (key.clone(), without_nulls(member)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Parse a request body as a JSON value; an empty body is an empty object.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body)
        .map_err(|err| ApiError::invalid(format!("Parse error: invalid JSON payload received. {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_members_read_as_absent() {
        let value = json!({"a": null, "b": "x", "n": "42", "m": 7});
        let obj = Obj::new(&value, "");
        assert!(!obj.has("a"));
        assert_eq!(obj.str("a").expect("absent is fine"), None);
        assert_eq!(obj.str("b").expect("a string"), Some("x"));
        assert_eq!(obj.i64("n").expect("a string int64"), Some(42));
        assert_eq!(obj.i64("m").expect("a number int64"), Some(7));
        assert!(obj.str("m").is_err());
    }

    #[test]
    fn echoed_json_drops_nulls_at_every_depth() {
        let value = json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]});
        assert_eq!(without_nulls(&value), json!({"b": {"d": 1}, "e": [{}]}));
    }

    #[test]
    fn bools_parse_in_any_case() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
