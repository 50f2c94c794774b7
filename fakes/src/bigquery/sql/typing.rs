//! Types of compiled expressions and BigQuery's rules between them: supertypes (INT64 → NUMERIC → FLOAT64,
//! DATE → DATETIME), literal and parameter coercion of strings to dates and timestamps, casts, and the
//! "No matching signature" error. Positions in errors are `[line:column]`, as BigQuery writes them.

use sqlparser::ast::{self, Expr};
use sqlparser::tokenizer::Span;

use super::super::errors::ErrorProto;
use super::super::schema::{Field, FieldType, Mode};
use super::super::values::Value;
use super::eval::Ex;
use super::ops::{self, type_name};
use super::{invalid_query, numeric, unsupported};

/// A compiled expression with its BigQuery type.
#[derive(Debug, Clone)]
pub(crate) struct Typed {
    pub ex: Ex,
    pub ty: FieldType,
    pub mode: Mode,
    /// A RECORD's sub-fields.
    pub sub: Vec<Field>,
    /// A literal or a parameter: a STRING one may be coerced to DATE, TIMESTAMP, DATETIME or TIME, an untyped
    /// NULL to anything.
    pub coercible: bool,
    pub untyped_null: bool,
    /// The column name BigQuery gives it when there is no alias (a column reference's name).
    pub name: Option<String>,
}

impl Typed {
    pub fn new(ex: Ex, ty: FieldType) -> Self {
        Self { ex, ty, mode: Mode::Nullable, sub: Vec::new(), coercible: false, untyped_null: false, name: None }
    }

    pub fn literal(value: Value, ty: FieldType) -> Self {
        Self { coercible: true, ..Self::new(Ex::Lit(value), ty) }
    }

    pub fn field(&self, name: &str) -> Field {
        Field {
            name: name.to_owned(),
            field_type: self.ty,
            mode: self.mode,
            fields: self.sub.clone(),
            description: None,
        }
    }
}

/// `[line:column]` of a span, as BigQuery positions its errors.
pub(crate) fn at(span: Span) -> String {
    if span.start.line == 0 { String::new() } else { format!(" at [{}:{}]", span.start.line, span.start.column) }
}

pub(crate) fn expr_at(expr: &Expr) -> String {
    use sqlparser::ast::Spanned;
    at(expr.span())
}

/// "No matching signature for operator X for argument types: A, B".
pub(crate) fn no_signature(what: &str, types: &[FieldType], expr: &Expr) -> ErrorProto {
    let names: Vec<&str> = types.iter().map(|ty| type_name(*ty)).collect();
    let kind = if what.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && what.len() > 3 {
        "function"
    } else {
        "operator"
    };
    invalid_query(format!(
        "No matching signature for {kind} {what} for argument types: {}{}",
        names.join(", "),
        expr_at(expr)
    ))
}

pub(crate) fn comparable(ty: FieldType) -> bool {
    !matches!(ty, FieldType::Record | FieldType::Geography | FieldType::Json)
}

/// Types whose values can be grouped, compared for DISTINCT, or joined on.
pub(crate) fn groupable(ty: FieldType) -> bool {
    !matches!(ty, FieldType::Record | FieldType::Geography | FieldType::Json)
}

/// A SQL type name as a column type.
pub(crate) fn data_type_of(data_type: &ast::DataType) -> Result<FieldType, ErrorProto> {
    let name = data_type.to_string();
    let base = name.split('(').next().unwrap_or(&name).trim().to_ascii_uppercase();
    match FieldType::parse(&base) {
        Some(FieldType::Record) | None => Err(unsupported(format!("The type {name}"))),
        Some(ty) => Ok(ty),
    }
}

/// The common type of two operands, as BigQuery chooses it; `None` when there is none.
pub(crate) fn supertype(left: &Typed, right: &Typed) -> Option<FieldType> {
    use FieldType::*;
    if left.ty == right.ty {
        return Some(left.ty);
    }
    if left.untyped_null {
        return Some(right.ty);
    }
    if right.untyped_null {
        return Some(left.ty);
    }
    let temporal = |ty: FieldType| matches!(ty, Date | Timestamp | Datetime | Time);
    match (left.ty, right.ty) {
        (Integer, Float) | (Float, Integer) | (Numeric, Float) | (Float, Numeric) => Some(Float),
        (Integer, Numeric) | (Numeric, Integer) => Some(Numeric),
        (Date, Datetime) | (Datetime, Date) => Some(Datetime),
        (String, other) if left.coercible && temporal(other) => Some(other),
        (other, String) if right.coercible && temporal(other) => Some(other),
        _ => None,
    }
}

/// Converts to `ty`, which must be a supertype.
pub(crate) fn coerce(typed: Typed, ty: FieldType, expr: &Expr) -> Result<Typed, ErrorProto> {
    if typed.ty == ty {
        return Ok(typed);
    }
    if typed.untyped_null {
        return Ok(Typed { ty, ..typed });
    }
    if let Ex::Lit(value) = &typed.ex
        && typed.coercible
    {
        let converted = ops::cast_value(value, typed.ty, ty).map_err(|err| match value {
            Value::String(text) => {
                invalid_query(format!("Could not cast literal \"{text}\" to type {}{}", type_name(ty), expr_at(expr)))
            }
            _ => err,
        })?;
        return Ok(Typed { ex: Ex::Lit(converted), ty, ..typed });
    }
    let from = typed.ty;
    Ok(Typed {
        ex: Ex::Cast(Box::new(typed.ex), from, ty, false),
        ty,
        coercible: false,
        ..Typed::new(Ex::Lit(Value::Null), ty)
    })
}

/// Both operands at their common type.
pub(crate) fn unify(
    left: Typed,
    right: Typed,
    what: &str,
    expr: &Expr,
) -> Result<(Typed, Typed, FieldType), ErrorProto> {
    let ty = supertype(&left, &right).ok_or_else(|| no_signature(what, &[left.ty, right.ty], expr))?;
    Ok((coerce(left, ty, expr)?, coerce(right, ty, expr)?, ty))
}

/// Every expression at the common type of all of them (CASE, COALESCE, IF, UNION columns).
pub(crate) fn common(items: Vec<Typed>, what: &str, expr: &Expr) -> Result<(Vec<Typed>, FieldType), ErrorProto> {
    let mut ty: Option<Typed> = None;
    for item in &items {
        ty = Some(match ty {
            None => item.clone(),
            Some(current) => {
                let common =
                    supertype(&current, item).ok_or_else(|| no_signature(what, &[current.ty, item.ty], expr))?;
                Typed { ty: common, untyped_null: current.untyped_null && item.untyped_null, ..current }
            }
        });
    }
    let ty = ty.map_or(FieldType::Integer, |t| t.ty);
    let items = items.into_iter().map(|item| coerce(item, ty, expr)).collect::<Result<_, _>>()?;
    Ok((items, ty))
}

/// CAST and SAFE_CAST; a literal is converted at once.
pub(crate) fn cast(value: Typed, to: FieldType, safe: bool, expr: &Expr) -> Result<Typed, ErrorProto> {
    if !ops::castable(value.ty, to) && !value.untyped_null {
        return Err(invalid_query(format!(
            "Invalid cast from {} to {}{}",
            type_name(value.ty),
            type_name(to),
            expr_at(expr)
        )));
    }
    if value.untyped_null || value.ty == to {
        return Ok(Typed { ty: to, untyped_null: false, ..value });
    }
    let from = value.ty;
    if let Ex::Lit(literal) = &value.ex {
        match ops::cast_value(literal, from, to) {
            Ok(converted) => return Ok(Typed::new(Ex::Lit(converted), to)),
            Err(_) if safe => return Ok(Typed::new(Ex::Lit(Value::Null), to)),
            Err(err) => return Err(err),
        }
    }
    Ok(Typed::new(Ex::Cast(Box::new(value.ex), from, to, safe), to))
}

/// A stored value as the engine computes with it: NUMERIC in canonical text.
pub(crate) fn normalise(value: &Value, field: &Field) -> Value {
    match (value, field.field_type) {
        (Value::String(text), FieldType::Numeric) => {
            numeric::parse(text).map_or_else(|| value.clone(), |units| Value::String(numeric::format(units)))
        }
        (Value::Record(values), FieldType::Record) => {
            Value::Record(values.iter().zip(&field.fields).map(|(value, field)| normalise(value, field)).collect())
        }
        (Value::Repeated(items), _) => {
            let element = Field { mode: Mode::Nullable, ..field.clone() };
            Value::Repeated(items.iter().map(|item| normalise(item, &element)).collect())
        }
        _ => value.clone(),
    }
}
