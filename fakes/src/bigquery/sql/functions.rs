//! The functions of the supported subset at run time: aggregates (COUNT, COUNT(DISTINCT), COUNTIF, SUM, AVG,
//! MIN, MAX, ANY_VALUE, LOGICAL_AND, LOGICAL_OR) and scalars (conditionals, arithmetic, strings, and the date and
//! timestamp functions daily loaders use). Their signatures and result types are `signatures.rs`'s.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, Timelike};

use super::super::errors::ErrorProto;
use super::super::schema::FieldType;
use super::super::values::Value;
use super::ops::{self, as_float, as_numeric, order};
use super::{invalid_query, numeric};
/// A date or time part: `DAY` in `TIMESTAMP_TRUNC(ts, DAY)`, `EXTRACT(HOUR FROM ts)`, `INTERVAL 1 DAY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    DayOfWeek,
    DayOfYear,
    Week,
    Month,
    Quarter,
    Year,
    Date,
}

pub(crate) fn part_named(name: &str) -> Option<Part> {
    Some(match name.to_ascii_uppercase().as_str() {
        "MICROSECOND" => Part::Microsecond,
        "MILLISECOND" => Part::Millisecond,
        "SECOND" => Part::Second,
        "MINUTE" => Part::Minute,
        "HOUR" => Part::Hour,
        "DAY" => Part::Day,
        "DAYOFWEEK" => Part::DayOfWeek,
        "DAYOFYEAR" => Part::DayOfYear,
        "WEEK" => Part::Week,
        "MONTH" => Part::Month,
        "QUARTER" => Part::Quarter,
        "YEAR" => Part::Year,
        "DATE" => Part::Date,
        _ => return None,
    })
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Count,
    CountStar,
    CountIf,
    Sum,
    Avg,
    Min,
    Max,
    AnyValue,
    LogicalAnd,
    LogicalOr,
}

impl Aggregate {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "COUNT" => Self::Count,
            "COUNTIF" => Self::CountIf,
            "SUM" => Self::Sum,
            "AVG" => Self::Avg,
            "MIN" => Self::Min,
            "MAX" => Self::Max,
            "ANY_VALUE" => Self::AnyValue,
            "LOGICAL_AND" => Self::LogicalAnd,
            "LOGICAL_OR" => Self::LogicalOr,
            _ => return None,
        })
    }
}

/// Whether `name(...)` is an aggregate, for deciding that a SELECT aggregates.
pub(crate) fn is_aggregate(name: &str) -> bool {
    Aggregate::parse(name).is_some()
}

/// Computes an aggregate over the values of its argument in one group (`values` holds one entry per row, or the
/// row count as `Integer(1)` entries for `COUNT(*)`).
pub(crate) fn aggregate(
    function: Aggregate,
    arg_type: FieldType,
    values: Vec<Value>,
    distinct: bool,
) -> Result<Value, ErrorProto> {
    if function == Aggregate::CountStar {
        return Ok(Value::Integer(values.len() as i64));
    }
    let mut present: Vec<Value> = values.into_iter().filter(|value| *value != Value::Null).collect();
    if distinct {
        let mut seen = std::collections::HashSet::new();
        present.retain(|value| seen.insert(ops::key(value)));
    }
    Ok(match function {
        Aggregate::CountStar | Aggregate::Count => Value::Integer(present.len() as i64),
        Aggregate::CountIf => {
            Value::Integer(present.iter().filter(|value| **value == Value::Boolean(true)).count() as i64)
        }
        Aggregate::LogicalAnd if present.is_empty() => Value::Null,
        Aggregate::LogicalAnd => Value::Boolean(present.iter().all(|value| *value == Value::Boolean(true))),
        Aggregate::LogicalOr if present.is_empty() => Value::Null,
        Aggregate::LogicalOr => Value::Boolean(present.contains(&Value::Boolean(true))),
        Aggregate::AnyValue => present.into_iter().next().unwrap_or(Value::Null),
        Aggregate::Min => present.into_iter().min_by(|a, b| order(a, b, arg_type)).unwrap_or(Value::Null),
        Aggregate::Max => present.into_iter().max_by(|a, b| order(a, b, arg_type)).unwrap_or(Value::Null),
        Aggregate::Sum if present.is_empty() => Value::Null,
        Aggregate::Avg if present.is_empty() => Value::Null,
        Aggregate::Sum | Aggregate::Avg => sum_or_average(function, arg_type, &present)?,
    })
}

fn sum_or_average(function: Aggregate, arg_type: FieldType, present: &[Value]) -> Result<Value, ErrorProto> {
    let count = present.len() as i64;
    match arg_type {
        FieldType::Integer if function == Aggregate::Sum => {
            let mut total: i64 = 0;
            for value in present {
                if let Value::Integer(number) = value {
                    total = total.checked_add(*number).ok_or_else(|| invalid_query("int64 overflow in SUM"))?;
                }
            }
            Ok(Value::Integer(total))
        }
        FieldType::Numeric => {
            let mut total: i128 = 0;
            for value in present {
                total = total
                    .checked_add(as_numeric(value)?)
                    .and_then(numeric::in_range)
                    .ok_or_else(|| invalid_query("numeric overflow in SUM"))?;
            }
            let result = if function == Aggregate::Sum {
                total
            } else {
                numeric::divide(total, numeric::from_i64(count))
                    .ok_or_else(|| invalid_query("numeric overflow in AVG"))?
            };
            Ok(Value::String(numeric::format(result)))
        }
        _ => {
            // Integers are summed exactly before the division, as BigQuery's AVG(INT64) does.
            if arg_type == FieldType::Integer {
                let total: i128 =
                    present.iter().map(|value| if let Value::Integer(n) = value { i128::from(*n) } else { 0 }).sum();
                return Ok(Value::Float(total as f64 / count as f64));
            }
            let total: f64 = present.iter().filter_map(as_float).sum();
            Ok(Value::Float(if function == Aggregate::Sum { total } else { total / count as f64 }))
        }
    }
}

/// Scalar functions, with what their evaluation needs to know from compile time.
#[derive(Debug, Clone)]
pub(crate) enum Scalar {
    Coalesce,
    If,
    NullIf(FieldType),
    Abs(FieldType),
    Round(FieldType),
    Floor(FieldType),
    Ceil(FieldType),
    Mod(FieldType),
    Div,
    SafeDivide(FieldType),
    Greatest(FieldType),
    Least(FieldType),
    Lower,
    Upper,
    Length,
    Concat,
    Substr,
    Trim,
    StartsWith,
    EndsWith,
    /// DATE(timestamp), DATE(datetime); DATE(year, month, day) is `DateFromParts`.
    DateOf,
    DateFromParts,
    TimestampOf(FieldType),
    DatetimeOf(FieldType),
    Trunc(FieldType, Part),
    /// Add (`true`) or subtract an interval of a part to a DATE, TIMESTAMP or DATETIME.
    AddInterval(FieldType, Part, bool),
    Diff(Part),
    Extract(Part),
    UnixSeconds,
    UnixMillis,
    UnixMicros,
    UnixDate,
    TimestampFrom(i64),
    Format,
}

fn naive(value: &Value) -> Option<NaiveDateTime> {
    match value {
        Value::Timestamp(micros) => DateTime::from_timestamp_micros(*micros).map(|at| at.naive_utc()),
        Value::Datetime(at) => Some(*at),
        Value::Date(date) => date.and_hms_opt(0, 0, 0),
        _ => None,
    }
}

fn back(at: NaiveDateTime, ty: FieldType) -> Value {
    match ty {
        FieldType::Timestamp => Value::Timestamp(at.and_utc().timestamp_micros()),
        FieldType::Date => Value::Date(at.date()),
        _ => Value::Datetime(at),
    }
}

fn truncate(at: NaiveDateTime, part: Part) -> Option<NaiveDateTime> {
    let date = at.date();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
    match part {
        Part::Microsecond => Some(at),
        Part::Millisecond => at.with_nanosecond(at.nanosecond() / 1_000_000 * 1_000_000),
        Part::Second => at.with_nanosecond(0),
        Part::Minute => at.with_nanosecond(0)?.with_second(0),
        Part::Hour => at.with_nanosecond(0)?.with_second(0)?.with_minute(0),
        Part::Day | Part::Date | Part::DayOfYear | Part::DayOfWeek => midnight(date),
        // WEEK starts on Sunday.
        Part::Week => midnight(date - Duration::days(i64::from(date.weekday().num_days_from_sunday()))),
        Part::Month => midnight(date.with_day(1)?),
        Part::Quarter => midnight(NaiveDate::from_ymd_opt(date.year(), (date.month0() / 3) * 3 + 1, 1)?),
        Part::Year => midnight(NaiveDate::from_ymd_opt(date.year(), 1, 1)?),
    }
}

fn add(at: NaiveDateTime, part: Part, amount: i64) -> Option<NaiveDateTime> {
    let months = |count: i64| -> Option<NaiveDateTime> {
        let magnitude = Months::new(u32::try_from(count.unsigned_abs()).ok()?);
        if count >= 0 { at.checked_add_months(magnitude) } else { at.checked_sub_months(magnitude) }
    };
    match part {
        Part::Microsecond => at.checked_add_signed(Duration::microseconds(amount)),
        Part::Millisecond => at.checked_add_signed(Duration::try_milliseconds(amount)?),
        Part::Second => at.checked_add_signed(Duration::try_seconds(amount)?),
        Part::Minute => at.checked_add_signed(Duration::try_minutes(amount)?),
        Part::Hour => at.checked_add_signed(Duration::try_hours(amount)?),
        Part::Day => at.checked_add_signed(Duration::try_days(amount)?),
        Part::Week => at.checked_add_signed(Duration::try_weeks(amount)?),
        Part::Month => months(amount),
        Part::Quarter => months(amount.checked_mul(3)?),
        Part::Year => months(amount.checked_mul(12)?),
        Part::DayOfWeek | Part::DayOfYear | Part::Date => None,
    }
}

fn diff(a: NaiveDateTime, b: NaiveDateTime, part: Part) -> Option<i64> {
    let micros = |at: NaiveDateTime| at.and_utc().timestamp_micros();
    Some(match part {
        Part::Microsecond => micros(a) - micros(b),
        Part::Millisecond => micros(a).div_euclid(1_000) - micros(b).div_euclid(1_000),
        Part::Second => micros(a).div_euclid(1_000_000) - micros(b).div_euclid(1_000_000),
        Part::Minute => micros(a).div_euclid(60_000_000) - micros(b).div_euclid(60_000_000),
        Part::Hour => micros(a).div_euclid(3_600_000_000) - micros(b).div_euclid(3_600_000_000),
        Part::Day => (a.date() - b.date()).num_days(),
        Part::Week => (truncate(a, Part::Week)?.date() - truncate(b, Part::Week)?.date()).num_days() / 7,
        Part::Month => i64::from(a.year() - b.year()) * 12 + i64::from(a.month()) - i64::from(b.month()),
        Part::Quarter => i64::from(a.year() - b.year()) * 4 + i64::from(a.month0() / 3) - i64::from(b.month0() / 3),
        Part::Year => i64::from(a.year() - b.year()),
        Part::DayOfWeek | Part::DayOfYear | Part::Date => return None,
    })
}

fn extract_part(at: NaiveDateTime, part: Part) -> Value {
    let date = at.date();
    Value::Integer(match part {
        Part::Microsecond => i64::from(at.nanosecond() / 1_000),
        Part::Millisecond => i64::from(at.nanosecond() / 1_000_000),
        Part::Second => i64::from(at.second()),
        Part::Minute => i64::from(at.minute()),
        Part::Hour => i64::from(at.hour()),
        Part::Day => i64::from(date.day()),
        Part::DayOfWeek => i64::from(date.weekday().num_days_from_sunday()) + 1,
        Part::DayOfYear => i64::from(date.ordinal()),
        Part::Week => {
            // Weeks start on Sunday; days before the year's first Sunday are in week 0.
            let jan1 = NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date);
            let first_sunday = jan1 + Duration::days(i64::from((7 - jan1.weekday().num_days_from_sunday()) % 7));
            if date < first_sunday { 0 } else { (date - first_sunday).num_days() / 7 + 1 }
        }
        Part::Month => i64::from(date.month()),
        Part::Quarter => i64::from(date.month0() / 3 + 1),
        Part::Year => i64::from(date.year()),
        Part::Date => return Value::Date(date),
    })
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::String(text) => Some(text),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(number) => Some(*number),
        _ => None,
    }
}

fn out_of_range(what: &str) -> ErrorProto {
    invalid_query(format!("{what} is out of range"))
}

/// Evaluates a scalar function on already evaluated arguments.
pub(crate) fn call(function: &Scalar, args: Vec<Value>) -> Result<Value, ErrorProto> {
    use FieldType as T;
    // Every function but these returns NULL for a NULL argument.
    match function {
        Scalar::Coalesce => return Ok(args.into_iter().find(|value| *value != Value::Null).unwrap_or(Value::Null)),
        Scalar::If => {
            let mut args = args.into_iter();
            let condition = args.next().unwrap_or(Value::Null);
            let then = args.next().unwrap_or(Value::Null);
            return Ok(if condition == Value::Boolean(true) { then } else { args.next().unwrap_or(Value::Null) });
        }
        Scalar::NullIf(ty) => {
            let (a, b) = (&args[0], &args[1]);
            let equal = *a != Value::Null
                && *b != Value::Null
                && ops::compare_sql(a, b, *ty) == Some(std::cmp::Ordering::Equal);
            return Ok(if equal { Value::Null } else { a.clone() });
        }
        Scalar::Greatest(_) | Scalar::Least(_) | Scalar::Concat if args.contains(&Value::Null) => {
            return Ok(Value::Null);
        }
        _ if args.contains(&Value::Null) => return Ok(Value::Null),
        _ => {}
    }
    let first = &args[0];
    Ok(match function {
        Scalar::Abs(T::Integer) => {
            let number = integer(first).unwrap_or_default();
            Value::Integer(number.checked_abs().ok_or_else(|| invalid_query(format!("int64 overflow: ABS({number})")))?)
        }
        Scalar::Abs(T::Numeric) => Value::String(numeric::format(as_numeric(first)?.abs())),
        Scalar::Abs(_) => Value::Float(as_float(first).unwrap_or_default().abs()),
        Scalar::Floor(T::Numeric) | Scalar::Ceil(T::Numeric) => {
            let units = as_numeric(first)?;
            let floor = units.div_euclid(numeric::ONE) * numeric::ONE;
            let result =
                if matches!(function, Scalar::Floor(_)) || floor == units { floor } else { floor + numeric::ONE };
            Value::String(numeric::format(result))
        }
        Scalar::Floor(_) => Value::Float(as_float(first).unwrap_or_default().floor()),
        Scalar::Ceil(_) => Value::Float(as_float(first).unwrap_or_default().ceil()),
        Scalar::Round(ty) => {
            let digits = integer(&args[1]).unwrap_or(0).clamp(-38, 38);
            if *ty == T::Numeric {
                let units = as_numeric(first)?;
                let scale = 9 - digits;
                if scale <= 0 {
                    return Ok(first.clone());
                }
                let step =
                    10i128.checked_pow(u32::try_from(scale).unwrap_or(0)).ok_or_else(|| out_of_range("ROUND"))?;
                let half = step / 2;
                let rounded = if units >= 0 { (units + half) / step * step } else { (units - half) / step * step };
                Value::String(numeric::format(rounded))
            } else {
                let number = as_float(first).unwrap_or_default();
                let factor = 10f64.powi(i32::try_from(digits).unwrap_or(0));
                Value::Float((number * factor).round() / factor)
            }
        }
        Scalar::Mod(T::Integer) => {
            let (a, b) = (integer(first).unwrap_or_default(), integer(&args[1]).unwrap_or_default());
            if b == 0 {
                return Err(invalid_query(format!("division by zero: MOD({a}, {b})")));
            }
            Value::Integer(a.checked_rem(b).unwrap_or(0))
        }
        Scalar::Mod(_) => {
            let (a, b) = (as_numeric(first)?, as_numeric(&args[1])?);
            if b == 0 {
                return Err(invalid_query("division by zero: MOD"));
            }
            Value::String(numeric::format(a % b))
        }
        Scalar::Div => {
            let (a, b) = (integer(first).unwrap_or_default(), integer(&args[1]).unwrap_or_default());
            if b == 0 {
                return Err(invalid_query(format!("division by zero: {a} / {b}")));
            }
            Value::Integer(a.checked_div(b).ok_or_else(|| invalid_query(format!("int64 overflow: {a} / {b}")))?)
        }
        Scalar::SafeDivide(T::Numeric) => numeric::divide(as_numeric(first)?, as_numeric(&args[1])?)
            .map_or(Value::Null, |units| Value::String(numeric::format(units))),
        Scalar::SafeDivide(_) => {
            let (a, b) = (as_float(first).unwrap_or_default(), as_float(&args[1]).unwrap_or_default());
            if b == 0.0 { Value::Null } else { Value::Float(a / b) }
        }
        Scalar::Greatest(ty) => args.into_iter().max_by(|a, b| order(a, b, *ty)).unwrap_or(Value::Null),
        Scalar::Least(ty) => args.into_iter().min_by(|a, b| order(a, b, *ty)).unwrap_or(Value::Null),
        Scalar::Lower => Value::String(text(first).unwrap_or_default().to_lowercase()),
        Scalar::Upper => Value::String(text(first).unwrap_or_default().to_uppercase()),
        Scalar::Trim => Value::String(text(first).unwrap_or_default().trim().to_owned()),
        Scalar::Length => Value::Integer(text(first).unwrap_or_default().chars().count() as i64),
        Scalar::Concat => Value::String(args.iter().filter_map(text).collect()),
        Scalar::Substr => {
            let chars: Vec<char> = text(first).unwrap_or_default().chars().collect();
            let length = chars.len() as i64;
            let position = integer(&args[1]).unwrap_or(1);
            let start = match position {
                0 => 0,
                p if p > 0 => (p - 1).min(length),
                p => (length + p).max(0),
            };
            let take = match args.get(2) {
                Some(count) => {
                    let count = integer(count).unwrap_or(0);
                    if count < 0 {
                        return Err(invalid_query("Third argument in SUBSTR() cannot be negative"));
                    }
                    count
                }
                None => length,
            };
            let end = start.saturating_add(take).min(length);
            Value::String(
                chars[usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0)].iter().collect(),
            )
        }
        Scalar::StartsWith => {
            Value::Boolean(text(first).unwrap_or_default().starts_with(text(&args[1]).unwrap_or_default()))
        }
        Scalar::EndsWith => {
            Value::Boolean(text(first).unwrap_or_default().ends_with(text(&args[1]).unwrap_or_default()))
        }
        Scalar::DateOf => Value::Date(naive(first).ok_or_else(|| out_of_range("DATE"))?.date()),
        Scalar::DateFromParts => {
            let parts: Vec<i64> = args.iter().filter_map(integer).collect();
            let date = (|| {
                NaiveDate::from_ymd_opt(
                    i32::try_from(parts[0]).ok()?,
                    u32::try_from(parts[1]).ok()?,
                    u32::try_from(parts[2]).ok()?,
                )
            })();
            Value::Date(
                date.ok_or_else(|| invalid_query(format!("Invalid date: {}-{}-{}", parts[0], parts[1], parts[2])))?,
            )
        }
        Scalar::TimestampOf(from) => ops::cast_value(first, *from, T::Timestamp)?,
        Scalar::DatetimeOf(from) => ops::cast_value(first, *from, T::Datetime)?,
        Scalar::Trunc(ty, part) => back(
            truncate(naive(first).ok_or_else(|| out_of_range("TRUNC"))?, *part).ok_or_else(|| out_of_range("TRUNC"))?,
            *ty,
        ),
        Scalar::AddInterval(ty, part, forward) => {
            let amount = integer(&args[1]).unwrap_or(0);
            let amount =
                if *forward { amount } else { amount.checked_neg().ok_or_else(|| out_of_range("INTERVAL"))? };
            if *ty == T::Date
                && matches!(part, Part::Hour | Part::Minute | Part::Second | Part::Millisecond | Part::Microsecond)
            {
                return Err(invalid_query(
                    format!("Unsupported date part {part:?} for DATE_ADD or DATE_SUB").to_uppercase(),
                ));
            }
            let at = add(naive(first).ok_or_else(|| out_of_range("DATE_ADD"))?, *part, amount)
                .ok_or_else(|| invalid_query(format!("{} is out of range", ops::to_text(first, *ty))))?;
            back(at, *ty)
        }
        Scalar::Diff(part) => {
            let (a, b) = (naive(first), naive(&args[1]));
            Value::Integer(a.zip(b).and_then(|(a, b)| diff(a, b, *part)).ok_or_else(|| out_of_range("DIFF"))?)
        }
        Scalar::Extract(part) => {
            if let Value::Time(time) = first {
                let at = NaiveDate::from_ymd_opt(1970, 1, 1)
                    .map(|d| d.and_time(*time))
                    .ok_or_else(|| out_of_range("TIME"))?;
                extract_part(at, *part)
            } else {
                extract_part(naive(first).ok_or_else(|| out_of_range("EXTRACT"))?, *part)
            }
        }
        Scalar::UnixSeconds | Scalar::UnixMillis | Scalar::UnixMicros => {
            let Value::Timestamp(micros) = first else { return Ok(Value::Null) };
            Value::Integer(match function {
                Scalar::UnixSeconds => micros.div_euclid(1_000_000),
                Scalar::UnixMillis => micros.div_euclid(1_000),
                _ => *micros,
            })
        }
        Scalar::UnixDate => {
            let Value::Date(date) = first else { return Ok(Value::Null) };
            Value::Integer((*date - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(*date)).num_days())
        }
        Scalar::TimestampFrom(factor) => {
            let number = integer(first).unwrap_or_default();
            let micros = number.checked_mul(*factor).ok_or_else(|| out_of_range("TIMESTAMP"))?;
            DateTime::from_timestamp_micros(micros).ok_or_else(|| out_of_range("TIMESTAMP"))?;
            Value::Timestamp(micros)
        }
        Scalar::Format => {
            let format = text(first).unwrap_or_default();
            let at = naive(&args[1]).ok_or_else(|| out_of_range("FORMAT"))?;
            let mut out = String::new();
            use std::fmt::Write;
            write!(out, "{}", at.format(&format.replace("%Z", "UTC").replace("%Ez", "+00:00")))
                .map_err(|_| invalid_query(format!("Invalid format string: {format}")))?;
            Value::String(out)
        }
        Scalar::Coalesce | Scalar::If | Scalar::NullIf(_) => Value::Null,
    })
}
