//! Function signatures as BigQuery checks them: argument counts and types (with literal coercion), date parts
//! and INTERVAL arguments, and each function's result type, compiled into a call of `functions.rs`.

use chrono::DateTime;
use sqlparser::ast::{DateTimeField, Expr};

use super::super::errors::ErrorProto;
use super::super::schema::FieldType;
use super::super::values::Value;
use super::eval::Ex;
use super::functions::{Aggregate, Part, Scalar, part_named};
use super::ops::type_name;
use super::typing::{Typed, cast, coerce, common, expr_at, no_signature, supertype, unify};
use super::{invalid_query, unsupported};

pub(crate) fn part_of_field(field: &DateTimeField, expr: &Expr) -> Result<Part, ErrorProto> {
    let name = field.to_string();
    part_named(&name).ok_or_else(|| invalid_query(format!("Unsupported date part {name}{}", expr_at(expr))))
}

/// Functions whose second argument may be a date part.
pub(crate) fn takes_part(name: &str) -> bool {
    matches!(
        name,
        "TIMESTAMP_TRUNC" | "DATE_TRUNC" | "DATETIME_TRUNC" | "DATE_DIFF" | "TIMESTAMP_DIFF" | "DATETIME_DIFF"
    )
}

/// An argument as compiled.
pub(crate) enum Arg {
    Value(Typed),
    Part(Part),
    Interval(Typed, Part),
}

/// The result type of an aggregate over an argument, or BigQuery's signature error.
pub(crate) fn aggregate_type(
    function: Aggregate,
    arg: &Typed,
    name: &str,
    expr: &Expr,
) -> Result<FieldType, ErrorProto> {
    use FieldType::*;
    let numeric_arg = matches!(arg.ty, Integer | Float | Numeric) || arg.untyped_null;
    Ok(match function {
        Aggregate::Count | Aggregate::CountStar => Integer,
        Aggregate::CountIf | Aggregate::LogicalAnd | Aggregate::LogicalOr => {
            if arg.ty != Boolean && !arg.untyped_null {
                return Err(no_signature(name, &[arg.ty], expr));
            }
            if function == Aggregate::CountIf { Integer } else { Boolean }
        }
        Aggregate::Sum if numeric_arg => arg.ty,
        Aggregate::Avg if numeric_arg => {
            if arg.ty == Numeric {
                Numeric
            } else {
                Float
            }
        }
        Aggregate::Min | Aggregate::Max | Aggregate::AnyValue => {
            if matches!(arg.ty, Record | Json | Geography) {
                return Err(no_signature(name, &[arg.ty], expr));
            }
            arg.ty
        }
        _ => return Err(no_signature(name, &[arg.ty], expr)),
    })
}

/// Names that read as values without parentheses.
pub(crate) fn is_niladic(name: &str) -> bool {
    matches!(name.to_ascii_uppercase().as_str(), "CURRENT_DATE" | "CURRENT_TIMESTAMP" | "CURRENT_DATETIME")
}

pub(crate) fn niladic(name: &str, now_micros: i64) -> Result<Typed, ErrorProto> {
    let now = DateTime::from_timestamp_micros(now_micros).ok_or_else(|| invalid_query("clock out of range"))?;
    Ok(match name.to_ascii_uppercase().as_str() {
        "CURRENT_DATE" => Typed::new(Ex::Lit(Value::Date(now.date_naive())), FieldType::Date),
        "CURRENT_DATETIME" => Typed::new(Ex::Lit(Value::Datetime(now.naive_utc())), FieldType::Datetime),
        _ => Typed::new(Ex::Lit(Value::Timestamp(now_micros)), FieldType::Timestamp),
    })
}

fn arity(name: &str, args: &[Arg], allowed: &[usize], expr: &Expr) -> Result<(), ErrorProto> {
    if allowed.contains(&args.len()) {
        Ok(())
    } else {
        Err(invalid_query(format!("Number of arguments does not match for function {name}{}", expr_at(expr))))
    }
}

fn expect(typed: Typed, types: &[FieldType], name: &str, expr: &Expr) -> Result<Typed, ErrorProto> {
    if types.contains(&typed.ty) {
        return Ok(typed);
    }
    if typed.untyped_null || typed.coercible {
        for ty in types {
            if let Ok(converted) = coerce(typed.clone(), *ty, expr)
                && (typed.untyped_null || supertype(&typed, &Typed::new(Ex::Lit(Value::Null), *ty)).is_some())
            {
                return Ok(converted);
            }
        }
    }
    Err(no_signature(name, &[typed.ty], expr))
}

/// Compiles `name(args)`.
pub(crate) fn compile(name: &str, args: Vec<Arg>, now_micros: i64, expr: &Expr) -> Result<Typed, ErrorProto> {
    use FieldType::*;
    let numbers = [Integer, Numeric, Float];
    if is_niladic(name) {
        arity(name, &args, &[0], expr)?;
        return niladic(name, now_micros);
    }
    let mut values = Vec::new();
    let mut parts = Vec::new();
    let mut intervals = Vec::new();
    for arg in args {
        match arg {
            Arg::Value(typed) => values.push(typed),
            Arg::Part(part) => parts.push(part),
            Arg::Interval(count, part) => intervals.push((count, part)),
        }
    }
    let count = values.len() + parts.len() + intervals.len();
    let wrong = || invalid_query(format!("Number of arguments does not match for function {name}{}", expr_at(expr)));
    let call = |scalar: Scalar, args: Vec<Typed>, ty: FieldType| {
        Ok(Typed::new(Ex::Call(scalar, args.into_iter().map(|a| a.ex).collect()), ty))
    };
    match name {
        "COALESCE" | "IFNULL" => {
            if values.is_empty() || (name == "IFNULL" && values.len() != 2) || count != values.len() {
                return Err(wrong());
            }
            let (values, ty) = common(values, name, expr)?;
            call(Scalar::Coalesce, values, ty)
        }
        "IF" => {
            let [condition, then, otherwise]: [Typed; 3] = values.try_into().map_err(|_| wrong())?;
            let condition = expect(condition, &[Boolean], name, expr)?;
            let (results, ty) = common(vec![then, otherwise], name, expr)?;
            let mut all = vec![condition];
            all.extend(results);
            call(Scalar::If, all, ty)
        }
        "NULLIF" => {
            let [a, b]: [Typed; 2] = values.try_into().map_err(|_| wrong())?;
            let result_type = a.ty;
            let (a, b, ty) = unify(a, b, name, expr)?;
            let mut typed = call(Scalar::NullIf(ty), vec![a, b], ty)?;
            if result_type != ty {
                typed = cast(typed, result_type, false, expr)?;
            }
            Ok(typed)
        }
        "ABS" | "FLOOR" | "CEIL" | "CEILING" => {
            let [a]: [Typed; 1] = values.try_into().map_err(|_| wrong())?;
            let a = expect(a, &numbers, name, expr)?;
            let ty = if name == "ABS" || a.ty != Integer { a.ty } else { Float };
            let a = if ty != a.ty { coerce(a, ty, expr)? } else { a };
            let scalar = match name {
                "ABS" => Scalar::Abs(ty),
                "FLOOR" => Scalar::Floor(ty),
                _ => Scalar::Ceil(ty),
            };
            call(scalar, vec![a], ty)
        }
        "ROUND" => {
            if values.is_empty() || values.len() > 2 || count != values.len() {
                return Err(wrong());
            }
            let mut values = values.into_iter();
            let a = expect(values.next().ok_or_else(wrong)?, &numbers, name, expr)?;
            let ty = if a.ty == Integer { Float } else { a.ty };
            let a = coerce(a, ty, expr)?;
            let digits = match values.next() {
                Some(digits) => expect(digits, &[Integer], name, expr)?,
                None => Typed::new(Ex::Lit(Value::Integer(0)), Integer),
            };
            call(Scalar::Round(ty), vec![a, digits], ty)
        }
        "MOD" | "DIV" | "SAFE_DIVIDE" => {
            let [a, b]: [Typed; 2] = values.try_into().map_err(|_| wrong())?;
            let a = expect(a, &numbers, name, expr)?;
            let b = expect(b, &numbers, name, expr)?;
            let (a, b, ty) = unify(a, b, name, expr)?;
            match name {
                "MOD" if ty == Float => Err(no_signature(name, &[Float, Float], expr)),
                "MOD" => call(Scalar::Mod(ty), vec![a, b], ty),
                "DIV" if ty != Integer => Err(no_signature(name, &[ty, ty], expr)),
                "DIV" => call(Scalar::Div, vec![a, b], Integer),
                _ => {
                    let ty = if ty == Integer { Float } else { ty };
                    let (a, b) = (coerce(a, ty, expr)?, coerce(b, ty, expr)?);
                    call(Scalar::SafeDivide(ty), vec![a, b], ty)
                }
            }
        }
        "GREATEST" | "LEAST" => {
            if values.is_empty() || count != values.len() {
                return Err(wrong());
            }
            let (values, ty) = common(values, name, expr)?;
            call(if name == "GREATEST" { Scalar::Greatest(ty) } else { Scalar::Least(ty) }, values, ty)
        }
        "LOWER" | "UPPER" | "LENGTH" | "CHAR_LENGTH" | "TRIM" => {
            let [a]: [Typed; 1] = values.try_into().map_err(|_| wrong())?;
            let a = expect(a, &[String], name, expr)?;
            match name {
                "LOWER" => call(Scalar::Lower, vec![a], String),
                "UPPER" => call(Scalar::Upper, vec![a], String),
                "TRIM" => call(Scalar::Trim, vec![a], String),
                _ => call(Scalar::Length, vec![a], Integer),
            }
        }
        "CONCAT" => {
            if values.is_empty() || count != values.len() {
                return Err(wrong());
            }
            let values = values.into_iter().map(|v| expect(v, &[String], name, expr)).collect::<Result<Vec<_>, _>>()?;
            call(Scalar::Concat, values, String)
        }
        "SUBSTR" | "SUBSTRING" => {
            if !(2..=3).contains(&values.len()) || count != values.len() {
                return Err(wrong());
            }
            let mut values = values.into_iter();
            let mut args = vec![expect(values.next().ok_or_else(wrong)?, &[String], name, expr)?];
            for value in values {
                args.push(expect(value, &[Integer], name, expr)?);
            }
            call(Scalar::Substr, args, String)
        }
        "STARTS_WITH" | "ENDS_WITH" => {
            let [a, b]: [Typed; 2] = values.try_into().map_err(|_| wrong())?;
            let (a, b) = (expect(a, &[String], name, expr)?, expect(b, &[String], name, expr)?);
            call(if name == "STARTS_WITH" { Scalar::StartsWith } else { Scalar::EndsWith }, vec![a, b], Boolean)
        }
        "DATE" => match values.len() {
            1 if count == 1 => {
                let [a]: [Typed; 1] = values.try_into().map_err(|_| wrong())?;
                let a = expect(a, &[Timestamp, Datetime, Date], name, expr)?;
                call(Scalar::DateOf, vec![a], Date)
            }
            3 if count == 3 => {
                let values =
                    values.into_iter().map(|v| expect(v, &[Integer], name, expr)).collect::<Result<Vec<_>, _>>()?;
                call(Scalar::DateFromParts, values, Date)
            }
            2 => Err(unsupported("A time zone argument to DATE (the fake computes in UTC)")),
            _ => Err(wrong()),
        },
        "TIMESTAMP" | "DATETIME" => {
            let [a]: [Typed; 1] = values.try_into().map_err(|_| {
                if count == 2 {
                    unsupported(format!("A time zone argument to {name} (the fake computes in UTC)"))
                } else {
                    wrong()
                }
            })?;
            let to = if name == "TIMESTAMP" { Timestamp } else { Datetime };
            let a = expect(a, &[String, Date, Datetime, Timestamp], name, expr)?;
            let ty = a.ty;
            if ty == String
                && let Ex::Lit(_) = a.ex
            {
                return cast(a, to, false, expr);
            }
            call(if to == Timestamp { Scalar::TimestampOf(ty) } else { Scalar::DatetimeOf(ty) }, vec![a], to)
        }
        "TIMESTAMP_TRUNC" | "DATE_TRUNC" | "DATETIME_TRUNC" => {
            let ([a], [part]): ([Typed; 1], [Part; 1]) =
                (values.try_into().map_err(|_| wrong())?, parts.try_into().map_err(|_| wrong())?);
            if !intervals.is_empty() {
                return Err(wrong());
            }
            let ty = match name {
                "TIMESTAMP_TRUNC" => Timestamp,
                "DATE_TRUNC" => Date,
                _ => Datetime,
            };
            let a = expect(a, &[ty], name, expr)?;
            if ty == Date
                && matches!(part, Part::Hour | Part::Minute | Part::Second | Part::Millisecond | Part::Microsecond)
            {
                return Err(invalid_query(
                    format!("{name} does not support the {part:?} date part for DATE{}", expr_at(expr)).to_uppercase(),
                ));
            }
            call(Scalar::Trunc(ty, part), vec![a], ty)
        }
        "DATE_ADD" | "DATE_SUB" | "TIMESTAMP_ADD" | "TIMESTAMP_SUB" | "DATETIME_ADD" | "DATETIME_SUB" => {
            let ([a], [(amount, part)]): ([Typed; 1], [(Typed, Part); 1]) =
                (values.try_into().map_err(|_| wrong())?, intervals.try_into().map_err(|_| wrong())?);
            let ty = match &name[..4] {
                "DATE" if name.starts_with("DATETIME") => Datetime,
                "DATE" => Date,
                _ => Timestamp,
            };
            let a = expect(a, &[ty], name, expr)?;
            let add = name.ends_with("_ADD");
            call(Scalar::AddInterval(ty, part, add), vec![a, amount], ty)
        }
        "DATE_DIFF" | "TIMESTAMP_DIFF" | "DATETIME_DIFF" => {
            let ([a, b], [part]): ([Typed; 2], [Part; 1]) =
                (values.try_into().map_err(|_| wrong())?, parts.try_into().map_err(|_| wrong())?);
            let ty = match name {
                "DATE_DIFF" => Date,
                "TIMESTAMP_DIFF" => Timestamp,
                _ => Datetime,
            };
            let (a, b) = (expect(a, &[ty], name, expr)?, expect(b, &[ty], name, expr)?);
            call(Scalar::Diff(part), vec![a, b], Integer)
        }
        "UNIX_SECONDS" | "UNIX_MILLIS" | "UNIX_MICROS" => {
            let [a]: [Typed; 1] = values.try_into().map_err(|_| wrong())?;
            let a = expect(a, &[Timestamp], name, expr)?;
            let scalar = match name {
                "UNIX_SECONDS" => Scalar::UnixSeconds,
                "UNIX_MILLIS" => Scalar::UnixMillis,
                _ => Scalar::UnixMicros,
            };
            call(scalar, vec![a], Integer)
        }
        "UNIX_DATE" => {
            let [a]: [Typed; 1] = values.try_into().map_err(|_| wrong())?;
            call(Scalar::UnixDate, vec![expect(a, &[Date], name, expr)?], Integer)
        }
        "TIMESTAMP_SECONDS" | "TIMESTAMP_MILLIS" | "TIMESTAMP_MICROS" => {
            let [a]: [Typed; 1] = values.try_into().map_err(|_| wrong())?;
            let factor = match name {
                "TIMESTAMP_SECONDS" => 1_000_000,
                "TIMESTAMP_MILLIS" => 1_000,
                _ => 1,
            };
            call(Scalar::TimestampFrom(factor), vec![expect(a, &[Integer], name, expr)?], Timestamp)
        }
        "FORMAT_DATE" | "FORMAT_TIMESTAMP" | "FORMAT_DATETIME" => {
            let [format, a]: [Typed; 2] = values.try_into().map_err(|_| {
                if count == 3 {
                    unsupported(format!("A time zone argument to {name} (the fake computes in UTC)"))
                } else {
                    wrong()
                }
            })?;
            let ty = match name {
                "FORMAT_DATE" => Date,
                "FORMAT_TIMESTAMP" => Timestamp,
                _ => Datetime,
            };
            let format = expect(format, &[String], name, expr)?;
            let a = expect(a, &[ty], name, expr)?;
            call(Scalar::Format, vec![format, a], String)
        }
        _ => Err(unsupported(format!("The function {name}"))),
    }
}

/// `EXTRACT(part FROM value)`.
pub(crate) fn extract(field: &DateTimeField, value: Typed, expr: &Expr) -> Result<Typed, ErrorProto> {
    use FieldType::*;
    let part = part_of_field(field, expr)?;
    let value = expect(value, &[Timestamp, Date, Datetime, Time], "EXTRACT", expr)?;
    let date_only = value.ty == Date;
    let ty = match part {
        Part::Date if value.ty == Timestamp || value.ty == Datetime => Date,
        Part::Date => {
            return Err(invalid_query(format!(
                "EXTRACT DATE from {} is not supported{}",
                type_name(value.ty),
                expr_at(expr)
            )));
        }
        Part::Hour | Part::Minute | Part::Second | Part::Millisecond | Part::Microsecond if date_only => {
            return Err(invalid_query(
                format!("EXTRACT from DATE does not support the {part:?} date part{}", expr_at(expr)).to_uppercase(),
            ));
        }
        _ => Integer,
    };
    Ok(Typed::new(Ex::Call(Scalar::Extract(part), vec![value.ex]), ty))
}
