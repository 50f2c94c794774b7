//! Operations on SQL values with BigQuery's semantics: comparison and ordering (NULLs first, then NaN), keys for
//! grouping, INT64 overflow and division by zero as errors, exact NUMERIC arithmetic, LIKE, and casts. They know
//! types and values, not expressions.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};

use super::super::errors::ErrorProto;
use super::super::schema::FieldType;
use super::super::values::{Value, java_double, parse_timestamp};
use super::{invalid_query, numeric};

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// BigQuery's name of a type in messages.
pub(crate) fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Integer => "INT64",
        FieldType::Float => "FLOAT64",
        FieldType::Boolean => "BOOL",
        FieldType::Record => "STRUCT",
        other => other.legacy_name(),
    }
}

/// A TIMESTAMP from text, as a literal is coerced.
pub(crate) fn timestamp_of(text: &str) -> Option<i64> {
    parse_timestamp(text)
}

/// `-value`.
pub(crate) fn negate(value: &Value, ty: FieldType) -> Result<Value, ErrorProto> {
    Ok(match (value, ty) {
        (Value::Null, _) => Value::Null,
        (Value::Integer(number), _) => {
            Value::Integer(number.checked_neg().ok_or_else(|| invalid_query(format!("int64 overflow: -{number}")))?)
        }
        (Value::Float(number), _) => Value::Float(-number),
        (Value::String(text), FieldType::Numeric) => {
            Value::String(numeric::format(-numeric::parse(text).ok_or_else(|| bad_numeric(text))?))
        }
        (other, _) => return Err(invalid_query(format!("Cannot negate {other:?}"))),
    })
}

fn bad_numeric(text: &str) -> ErrorProto {
    invalid_query(format!("Invalid NUMERIC value: {text}"))
}

/// Reads a NUMERIC or INT64 value as NUMERIC units.
pub(crate) fn as_numeric(value: &Value) -> Result<i128, ErrorProto> {
    match value {
        Value::Integer(number) => Ok(numeric::from_i64(*number)),
        Value::String(text) => numeric::parse(text).ok_or_else(|| bad_numeric(text)),
        other => Err(invalid_query(format!("Expected NUMERIC, got {other:?}"))),
    }
}

pub(crate) fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(number) => Some(*number as f64),
        Value::Float(number) => Some(*number),
        Value::String(text) => numeric::parse(text).map(numeric::to_f64),
        _ => None,
    }
}

pub(crate) fn arithmetic(op: ArOp, left: &Value, right: &Value, ty: FieldType) -> Result<Value, ErrorProto> {
    let symbol = match op {
        ArOp::Add => "+",
        ArOp::Sub => "-",
        ArOp::Mul => "*",
        ArOp::Div => "/",
    };
    match ty {
        FieldType::Integer => {
            let (Value::Integer(l), Value::Integer(r)) = (left, right) else {
                return Err(invalid_query("INT64 arithmetic on a non-integer"));
            };
            let result = match op {
                ArOp::Add => l.checked_add(*r),
                ArOp::Sub => l.checked_sub(*r),
                ArOp::Mul => l.checked_mul(*r),
                ArOp::Div => unreachable_division(),
            };
            result.map(Value::Integer).ok_or_else(|| invalid_query(format!("int64 overflow: {l} {symbol} {r}")))
        }
        FieldType::Float => {
            let (Some(l), Some(r)) = (as_float(left), as_float(right)) else {
                return Err(invalid_query("FLOAT64 arithmetic on a non-number"));
            };
            if op == ArOp::Div && r == 0.0 {
                return Err(invalid_query(format!("division by zero: {} / {}", java_double(l), java_double(r))));
            }
            let result = match op {
                ArOp::Add => l + r,
                ArOp::Sub => l - r,
                ArOp::Mul => l * r,
                ArOp::Div => l / r,
            };
            if result.is_infinite() && l.is_finite() && r.is_finite() {
                return Err(invalid_query(format!("double overflow: {} {symbol} {}", java_double(l), java_double(r))));
            }
            Ok(Value::Float(result))
        }
        FieldType::Numeric => {
            let (l, r) = (as_numeric(left)?, as_numeric(right)?);
            let result = match op {
                ArOp::Add => l.checked_add(r).and_then(numeric::in_range),
                ArOp::Sub => l.checked_sub(r).and_then(numeric::in_range),
                ArOp::Mul => numeric::multiply(l, r),
                ArOp::Div if r == 0 => {
                    return Err(invalid_query(format!(
                        "division by zero: {} / {}",
                        numeric::format(l),
                        numeric::format(r)
                    )));
                }
                ArOp::Div => numeric::divide(l, r),
            };
            result.map(|units| Value::String(numeric::format(units))).ok_or_else(|| {
                invalid_query(format!("numeric overflow: {} {symbol} {}", numeric::format(l), numeric::format(r)))
            })
        }
        other => Err(invalid_query(format!("Arithmetic on {}", type_name(other)))),
    }
}

/// INT64 `/` is compiled as FLOAT64, so integer division never reaches `arithmetic`.
fn unreachable_division() -> Option<i64> {
    None
}

/// Compares two non-NULL values of type `ty` as SQL does; `None` when unordered (NaN).
pub(crate) fn compare_sql(left: &Value, right: &Value, ty: FieldType) -> Option<Ordering> {
    match (left, right) {
        (Value::Float(l), Value::Float(r)) => l.partial_cmp(r),
        _ if ty == FieldType::Float => as_float(left)?.partial_cmp(&as_float(right)?),
        _ => Some(order(left, right, ty)),
    }
}

/// The total order of ORDER BY and MIN/MAX: NULL first, then NaN, then the values.
pub(crate) fn order(left: &Value, right: &Value, ty: FieldType) -> Ordering {
    match (left, right) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Integer(l), Value::Integer(r)) | (Value::Timestamp(l), Value::Timestamp(r)) => l.cmp(r),
        (Value::Float(l), Value::Float(r)) => match (l.is_nan(), r.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => l.partial_cmp(r).unwrap_or(Ordering::Equal),
        },
        (Value::String(l), Value::String(r)) if ty == FieldType::Numeric => {
            match (numeric::parse(l), numeric::parse(r)) {
                (Some(l), Some(r)) => l.cmp(&r),
                _ => l.cmp(r),
            }
        }
        (Value::String(l), Value::String(r)) => l.cmp(r),
        (Value::Boolean(l), Value::Boolean(r)) => l.cmp(r),
        (Value::Date(l), Value::Date(r)) => l.cmp(r),
        (Value::Datetime(l), Value::Datetime(r)) => l.cmp(r),
        (Value::Time(l), Value::Time(r)) => l.cmp(r),
        (Value::Repeated(l), Value::Repeated(r)) | (Value::Record(l), Value::Record(r)) => {
            for (a, b) in l.iter().zip(r) {
                let ordering = order(a, b, ty);
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            l.len().cmp(&r.len())
        }
        _ => as_float(left).zip(as_float(right)).and_then(|(l, r)| l.partial_cmp(&r)).unwrap_or(Ordering::Equal),
    }
}

/// A hashable form of a value, for GROUP BY, DISTINCT, COUNT(DISTINCT) and joins: equal SQL values give equal
/// keys (NULLs group together, as BigQuery groups them).
pub(crate) fn key(value: &Value) -> String {
    match value {
        Value::Float(number) if *number == 0.0 => "F0".into(),
        Value::Float(number) if number.is_nan() => "FNaN".into(),
        Value::Float(number) => format!("F{}", number.to_bits()),
        other => format!("{other:?}"),
    }
}

/// LIKE with `%` and `_`, and `\` escaping either.
pub(crate) fn like(value: &str, pattern: &str) -> bool {
    let value: Vec<char> = value.chars().collect();
    let mut tokens: Vec<Option<char>> = Vec::new(); // None = %, Some('\u{0}') never used; '_' kept as a marker below
    let mut singles: Vec<bool> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                tokens.push(Some(chars.next().unwrap_or('\\')));
                singles.push(false);
            }
            '%' => {
                tokens.push(None);
                singles.push(false);
            }
            '_' => {
                tokens.push(Some('_'));
                singles.push(true);
            }
            other => {
                tokens.push(Some(other));
                singles.push(false);
            }
        }
    }
    // Dynamic programming over (pattern position, value position).
    let mut reachable = vec![false; value.len() + 1];
    reachable[0] = true;
    for (index, token) in tokens.iter().enumerate() {
        let mut next = vec![false; value.len() + 1];
        match token {
            None => {
                let mut any = false;
                for position in 0..=value.len() {
                    any |= reachable[position];
                    next[position] = any;
                }
            }
            Some(expected) => {
                for position in 0..value.len() {
                    if reachable[position] && (singles[index] || value[position] == *expected) {
                        next[position + 1] = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[value.len()]
}

/// Whether CAST(from AS to) exists.
pub(crate) fn castable(from: FieldType, to: FieldType) -> bool {
    use FieldType::*;
    if from == to || from == String || to == String {
        return !matches!(from, Record | Geography | Json) && !matches!(to, Record | Geography | Json);
    }
    matches!(
        (from, to),
        (Integer | Float | Numeric | Boolean, Integer | Float | Numeric)
            | (Integer, Boolean)
            | (Timestamp, Date | Datetime | Time)
            | (Date, Timestamp | Datetime)
            | (Datetime, Timestamp | Date | Time)
    )
}

fn cast_error(value: &Value, to: FieldType) -> ErrorProto {
    let shown = match value {
        Value::String(text) => text.clone(),
        other => format!("{other:?}"),
    };
    let word = match to {
        FieldType::Integer => "int64",
        FieldType::Float => "double",
        FieldType::Numeric => "NUMERIC",
        FieldType::Boolean => "bool",
        FieldType::Date => "date",
        FieldType::Timestamp => "timestamp",
        FieldType::Datetime => "datetime",
        FieldType::Time => "time",
        _ => "value",
    };
    invalid_query(format!("Bad {word} value: {shown}"))
}

/// `CAST(value AS to)` for a value of type `from`.
pub(crate) fn cast_value(value: &Value, from: FieldType, to: FieldType) -> Result<Value, ErrorProto> {
    use FieldType as T;
    if *value == Value::Null || from == to {
        return Ok(value.clone());
    }
    let fail = || cast_error(value, to);
    Ok(match (value, to) {
        (Value::String(text), T::Integer) if from == T::String => {
            Value::Integer(text.trim().parse().map_err(|_| fail())?)
        }
        (Value::String(text), T::Float) if from == T::String => {
            Value::Float(match text.trim().to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "inf" | "+inf" | "infinity" => f64::INFINITY,
                "-inf" | "-infinity" => f64::NEG_INFINITY,
                trimmed => trimmed.parse().map_err(|_| fail())?,
            })
        }
        (Value::String(text), T::Numeric) => Value::String(numeric::format(numeric::parse(text).ok_or_else(fail)?)),
        (Value::String(text), T::Boolean) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return Err(fail()),
        },
        (Value::String(text), T::Date) => {
            Value::Date(NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| fail())?)
        }
        (Value::String(text), T::Timestamp) => Value::Timestamp(timestamp_of(text).ok_or_else(fail)?),
        (Value::String(text), T::Datetime) => Value::Datetime(
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok())
                .or_else(|| {
                    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
                })
                .ok_or_else(fail)?,
        ),
        (Value::String(text), T::Time) => {
            Value::Time(NaiveTime::parse_from_str(text.trim(), "%H:%M:%S%.f").map_err(|_| fail())?)
        }
        (_, T::String) => Value::String(to_text(value, from)),
        (Value::Integer(number), T::Float) => Value::Float(*number as f64),
        (Value::Integer(number), T::Numeric) => Value::String(numeric::format(numeric::from_i64(*number))),
        (Value::Integer(number), T::Boolean) => Value::Boolean(*number != 0),
        (Value::Boolean(flag), T::Integer) => Value::Integer(i64::from(*flag)),
        (Value::Float(number), T::Integer) => {
            let rounded = number.round();
            if !rounded.is_finite() || rounded.abs() > 9.2e18 {
                return Err(invalid_query(format!(
                    "Illegal conversion of non-finite floating point number to an integer: {}",
                    java_double(*number)
                )));
            }
            Value::Integer(rounded as i64)
        }
        (Value::Float(number), T::Numeric) => {
            let text = format!("{number:.9}");
            Value::String(numeric::format(numeric::parse(&text).ok_or_else(fail)?))
        }
        (Value::String(text), T::Integer) if from == T::Numeric => {
            let units = numeric::parse(text).ok_or_else(fail)?;
            let rounded = (units + if units >= 0 { numeric::ONE / 2 } else { -numeric::ONE / 2 }) / numeric::ONE;
            Value::Integer(i64::try_from(rounded).map_err(|_| fail())?)
        }
        (Value::String(text), T::Float) if from == T::Numeric => {
            Value::Float(numeric::to_f64(numeric::parse(text).ok_or_else(fail)?))
        }
        (Value::Timestamp(micros), T::Date | T::Datetime | T::Time) => {
            let at = DateTime::from_timestamp_micros(*micros).ok_or_else(fail)?.naive_utc();
            match to {
                T::Date => Value::Date(at.date()),
                T::Datetime => Value::Datetime(at),
                _ => Value::Time(at.time()),
            }
        }
        (Value::Date(date), T::Timestamp) => {
            Value::Timestamp(date.and_hms_opt(0, 0, 0).ok_or_else(fail)?.and_utc().timestamp_micros())
        }
        (Value::Date(date), T::Datetime) => Value::Datetime(date.and_hms_opt(0, 0, 0).ok_or_else(fail)?),
        (Value::Datetime(at), T::Timestamp) => Value::Timestamp(at.and_utc().timestamp_micros()),
        (Value::Datetime(at), T::Date) => Value::Date(at.date()),
        (Value::Datetime(at), T::Time) => Value::Time(at.time()),
        _ => {
            return Err(invalid_query(format!("Invalid cast from {} to {}", type_name(from), type_name(to))));
        }
    })
}

/// CAST(value AS STRING): BigQuery's canonical text of each type.
pub(crate) fn to_text(value: &Value, ty: FieldType) -> String {
    match value {
        Value::Timestamp(micros) => DateTime::from_timestamp_micros(*micros).map_or_else(String::new, |at| {
            let text = at.format("%Y-%m-%d %H:%M:%S%.f").to_string();
            let text =
                if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text };
            format!("{text}+00")
        }),
        Value::Float(number) => {
            if number.is_nan() {
                "nan".into()
            } else if number.is_infinite() {
                if *number > 0.0 { "inf".into() } else { "-inf".into() }
            } else {
                format!("{number}")
            }
        }
        Value::Date(date) => date.format("%Y-%m-%d").to_string(),
        Value::Datetime(at) => {
            let text = at.format("%Y-%m-%d %H:%M:%S%.f").to_string();
            if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
        }
        Value::Time(time) => time.format("%H:%M:%S%.f").to_string(),
        Value::Integer(number) => number.to_string(),
        Value::Boolean(flag) => flag.to_string(),
        Value::String(text) if ty == FieldType::Numeric => text.clone(),
        Value::String(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_percent_underscore_and_escapes() {
        assert!(like("BTCUSDT", "BTC%"));
        assert!(like("BTCUSDT", "%USDT"));
        assert!(like("BTCUSDT", "B_C%"));
        assert!(!like("BTCUSDT", "ETH%"));
        assert!(like("50%", "50\\%"));
        assert!(!like("500", "50\\%"));
        assert!(like("", "%"));
    }

    #[test]
    fn order_puts_null_first_then_nan() {
        let mut values = [Value::Float(1.0), Value::Null, Value::Float(f64::NAN), Value::Float(-1.0)];
        values.sort_by(|a, b| order(a, b, FieldType::Float));
        assert_eq!(values[0], Value::Null);
        assert!(matches!(values[1], Value::Float(n) if n.is_nan()));
        assert_eq!(values[2..], [Value::Float(-1.0), Value::Float(1.0)]);
    }

    #[test]
    fn casts_follow_bigquery() {
        assert_eq!(cast_value(&Value::Float(2.5), FieldType::Float, FieldType::Integer), Ok(Value::Integer(3)));
        assert_eq!(cast_value(&Value::Float(-2.5), FieldType::Float, FieldType::Integer), Ok(Value::Integer(-3)));
        assert!(cast_value(&Value::String("x".into()), FieldType::String, FieldType::Integer).is_err());
        assert_eq!(
            cast_value(&Value::Timestamp(1_717_200_000_000_000), FieldType::Timestamp, FieldType::String),
            Ok(Value::String("2024-06-01 00:00:00+00".into()))
        );
    }
}
