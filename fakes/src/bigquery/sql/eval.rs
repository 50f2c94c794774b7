//! Compiled expressions and how they run over a row: three-valued logic, comparisons at the operands' common
//! type, arithmetic, CASE, IN, LIKE, casts and function calls.

use std::cmp::Ordering;

use super::super::errors::ErrorProto;
use super::super::schema::FieldType;
use super::super::values::Value;
use super::functions::{self, Scalar};
use super::ops::{ArOp, CmpOp, arithmetic, cast_value, compare_sql, like, negate};

/// A compiled expression.
#[derive(Debug, Clone)]
pub(crate) enum Ex {
    Lit(Value),
    Col(usize),
    /// A RECORD's sub-field.
    Field(Box<Ex>, usize),
    /// An aggregate's value in a group.
    Agg(usize),
    /// A GROUP BY key's value in a group.
    Key(usize),
    /// An output column, for ORDER BY by alias or position.
    Out(usize),
    Not(Box<Ex>),
    Neg(Box<Ex>, FieldType),
    And(Box<Ex>, Box<Ex>),
    Or(Box<Ex>, Box<Ex>),
    /// Both sides already of the given type.
    Cmp(CmpOp, Box<Ex>, Box<Ex>, FieldType),
    Arith(ArOp, Box<Ex>, Box<Ex>, FieldType),
    Concat(Vec<Ex>),
    IsNull(Box<Ex>, bool),
    /// `IS [NOT] TRUE|FALSE`: the value tested for, and whether negated.
    Truth(Box<Ex>, bool, bool),
    In(Box<Ex>, Vec<Ex>, FieldType, bool),
    Like(Box<Ex>, Box<Ex>, bool),
    /// Operand, WHEN/THEN pairs, ELSE, and the type WHEN values are compared at.
    Case(Option<Box<Ex>>, Vec<(Ex, Ex)>, Option<Box<Ex>>, FieldType),
    Call(Scalar, Vec<Ex>),
    /// From, to, SAFE_CAST.
    Cast(Box<Ex>, FieldType, FieldType, bool),
}
/// What an expression reads: the row, and in a grouped SELECT the group's keys and aggregates, and for ORDER BY
/// the output row.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Env<'r> {
    pub row: &'r [Value],
    pub keys: &'r [Value],
    pub aggregates: &'r [Value],
    pub outputs: &'r [Value],
}

impl<'r> Env<'r> {
    pub fn row(row: &'r [Value]) -> Self {
        Self { row, ..Self::default() }
    }
}

fn truth(value: &Value) -> Option<bool> {
    match value {
        Value::Boolean(flag) => Some(*flag),
        _ => None,
    }
}

fn boolean(flag: Option<bool>) -> Value {
    flag.map_or(Value::Null, Value::Boolean)
}

/// Evaluates `ex` for one row.
pub(crate) fn eval(ex: &Ex, env: &Env<'_>) -> Result<Value, ErrorProto> {
    Ok(match ex {
        Ex::Lit(value) => value.clone(),
        Ex::Col(index) => env.row.get(*index).cloned().unwrap_or(Value::Null),
        Ex::Field(inner, index) => match eval(inner, env)? {
            Value::Record(values) => values.get(*index).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        },
        Ex::Agg(index) => env.aggregates.get(*index).cloned().unwrap_or(Value::Null),
        Ex::Key(index) => env.keys.get(*index).cloned().unwrap_or(Value::Null),
        Ex::Out(index) => env.outputs.get(*index).cloned().unwrap_or(Value::Null),
        Ex::Not(inner) => boolean(truth(&eval(inner, env)?).map(|flag| !flag)),
        Ex::Neg(inner, ty) => negate(&eval(inner, env)?, *ty)?,
        Ex::And(left, right) => {
            let left = truth(&eval(left, env)?);
            if left == Some(false) {
                return Ok(Value::Boolean(false));
            }
            let right = truth(&eval(right, env)?);
            match (left, right) {
                (_, Some(false)) => Value::Boolean(false),
                (Some(true), Some(true)) => Value::Boolean(true),
                _ => Value::Null,
            }
        }
        Ex::Or(left, right) => {
            let left = truth(&eval(left, env)?);
            if left == Some(true) {
                return Ok(Value::Boolean(true));
            }
            let right = truth(&eval(right, env)?);
            match (left, right) {
                (_, Some(true)) => Value::Boolean(true),
                (Some(false), Some(false)) => Value::Boolean(false),
                _ => Value::Null,
            }
        }
        Ex::Cmp(op, left, right, ty) => {
            let (left, right) = (eval(left, env)?, eval(right, env)?);
            if left == Value::Null || right == Value::Null {
                return Ok(Value::Null);
            }
            boolean(
                compare_sql(&left, &right, *ty)
                    .map(|ordering| match op {
                        CmpOp::Eq => ordering == Ordering::Equal,
                        CmpOp::NotEq => ordering != Ordering::Equal,
                        CmpOp::Lt => ordering == Ordering::Less,
                        CmpOp::LtEq => ordering != Ordering::Greater,
                        CmpOp::Gt => ordering == Ordering::Greater,
                        CmpOp::GtEq => ordering != Ordering::Less,
                    })
                    .or(if *op == CmpOp::NotEq { Some(true) } else { Some(false) }),
            )
        }
        Ex::Arith(op, left, right, ty) => {
            let (left, right) = (eval(left, env)?, eval(right, env)?);
            if left == Value::Null || right == Value::Null {
                return Ok(Value::Null);
            }
            arithmetic(*op, &left, &right, *ty)?
        }
        Ex::Concat(parts) => {
            let mut text = String::new();
            for part in parts {
                match eval(part, env)? {
                    Value::String(piece) => text.push_str(&piece),
                    _ => return Ok(Value::Null),
                }
            }
            Value::String(text)
        }
        Ex::IsNull(inner, negated) => Value::Boolean((eval(inner, env)? == Value::Null) != *negated),
        Ex::Truth(inner, wanted, negated) => Value::Boolean((truth(&eval(inner, env)?) == Some(*wanted)) != *negated),
        Ex::In(value, candidates, ty, negated) => {
            let value = eval(value, env)?;
            if value == Value::Null {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            for candidate in candidates {
                let candidate = eval(candidate, env)?;
                if candidate == Value::Null {
                    saw_null = true;
                } else if compare_sql(&value, &candidate, *ty) == Some(Ordering::Equal) {
                    return Ok(Value::Boolean(!negated));
                }
            }
            if saw_null { Value::Null } else { Value::Boolean(*negated) }
        }
        Ex::Like(value, pattern, negated) => match (eval(value, env)?, eval(pattern, env)?) {
            (Value::String(value), Value::String(pattern)) => Value::Boolean(like(&value, &pattern) != *negated),
            _ => Value::Null,
        },
        Ex::Case(operand, whens, otherwise, ty) => {
            let operand = operand.as_ref().map(|operand| eval(operand, env)).transpose()?;
            for (when, then) in whens {
                let when = eval(when, env)?;
                let hit = match &operand {
                    Some(operand) => {
                        *operand != Value::Null
                            && when != Value::Null
                            && compare_sql(operand, &when, *ty) == Some(Ordering::Equal)
                    }
                    None => truth(&when) == Some(true),
                };
                if hit {
                    return eval(then, env);
                }
            }
            match otherwise {
                Some(otherwise) => eval(otherwise, env)?,
                None => Value::Null,
            }
        }
        Ex::Call(function, args) => {
            let values = args.iter().map(|arg| eval(arg, env)).collect::<Result<Vec<_>, _>>()?;
            functions::call(function, values)?
        }
        Ex::Cast(inner, from, to, safe) => {
            let value = eval(inner, env)?;
            match cast_value(&value, *from, *to) {
                Ok(converted) => converted,
                Err(_) if *safe => Value::Null,
                Err(err) => return Err(err),
            }
        }
    })
}
