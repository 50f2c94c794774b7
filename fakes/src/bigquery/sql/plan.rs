//! Compiling GoogleSQL expressions: names resolved to columns, parameters bound, types inferred and checked
//! (`typing.rs`), function signatures (`signatures.rs`), aggregates collected into slots. The result is an
//! [`Ex`] tree that `eval.rs` runs over rows.

use sqlparser::ast::{self, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator};

use super::super::errors::ErrorProto;
use super::super::schema::{FieldType, Mode};
use super::super::values::Value;
use super::context::{Column, Context};
use super::eval::Ex;
use super::functions::Aggregate;
use super::ops::{self, ArOp, CmpOp, type_name};
use super::signatures;
use super::typing::{
    Typed, at, cast, coerce, common, comparable, data_type_of, expr_at, groupable, no_signature, supertype, unify,
};
use super::{invalid_query, unsupported};

/// An aggregate to compute per group.
#[derive(Debug, Clone)]
pub(crate) struct AggSpec {
    pub function: Aggregate,
    /// Compiled over the group's rows; `None` for `COUNT(*)`.
    pub arg: Option<Ex>,
    pub arg_type: FieldType,
    pub distinct: bool,
}

/// How names resolve while compiling.
pub(crate) struct Compiler<'c> {
    pub cx: &'c Context<'c>,
    pub columns: &'c [Column],
    /// Inside a grouped SELECT: its keys (AST, with the column each names if it is a column) and aggregates.
    pub group: Option<Group>,
    /// Output aliases ORDER BY may use, with their types.
    pub outputs: Vec<(String, FieldType)>,
    /// Where aggregates are not allowed (WHERE, GROUP BY, JOIN ... ON), the clause's name.
    pub no_aggregates: Option<&'static str>,
}

/// The grouping of a SELECT being compiled.
#[derive(Debug, Default)]
pub(crate) struct Group {
    pub keys: Vec<(Expr, Option<usize>)>,
    pub key_types: Vec<Typed>,
    pub aggregates: Vec<AggSpec>,
}

impl<'c> Compiler<'c> {
    pub fn new(cx: &'c Context<'c>, columns: &'c [Column]) -> Self {
        Self { cx, columns, group: None, outputs: Vec::new(), no_aggregates: None }
    }

    /// Compiles a condition (WHERE, ON, HAVING): it must be BOOL.
    pub fn condition(&mut self, expr: &Expr, clause: &str) -> Result<Ex, ErrorProto> {
        let typed = self.compile(expr)?;
        if typed.ty != FieldType::Boolean && !typed.untyped_null {
            return Err(invalid_query(format!(
                "{clause} clause should return type BOOL, but returns {}{}",
                type_name(typed.ty),
                expr_at(expr)
            )));
        }
        Ok(typed.ex)
    }

    /// The column a name refers to: `col`, `alias.col`, `table.col`, or a RECORD's field path.
    fn resolve(&self, parts: &[ast::Ident]) -> Result<Option<Typed>, ErrorProto> {
        let first = &parts[0];
        let matches_name = |column: &Column, name: &str| column.field.name.eq_ignore_ascii_case(name);
        // `alias.col...`
        if parts.len() >= 2 {
            let qualified: Vec<usize> = (0..self.columns.len())
                .filter(|&i| {
                    let column = &self.columns[i];
                    column.qualifier.as_deref().is_some_and(|q| q.eq_ignore_ascii_case(&first.value))
                        && matches_name(column, &parts[1].value)
                })
                .collect();
            if let Some(&index) = qualified.first() {
                return self.field_path(index, &parts[2..]).map(Some);
            }
            if self.columns.iter().any(|c| c.qualifier.as_deref().is_some_and(|q| q.eq_ignore_ascii_case(&first.value)))
            {
                return Err(invalid_query(format!(
                    "Name {} not found inside {}{}",
                    parts[1].value,
                    first.value,
                    at(parts[1].span)
                )));
            }
        }
        let found: Vec<usize> =
            (0..self.columns.len()).filter(|&i| matches_name(&self.columns[i], &first.value)).collect();
        // A hidden column (a pseudo-column, the right side's copy of a USING column) yields to a visible one.
        let visible: Vec<usize> = found.iter().copied().filter(|&i| !self.columns[i].hidden).collect();
        let found = if visible.is_empty() { found } else { visible };
        match found.as_slice() {
            [] => Ok(None),
            [index] => self.field_path(*index, &parts[1..]).map(Some),
            _ => Err(invalid_query(format!("Column name {} is ambiguous{}", first.value, at(first.span)))),
        }
    }

    fn field_path(&self, index: usize, path: &[ast::Ident]) -> Result<Typed, ErrorProto> {
        let column = &self.columns[index];
        let mut typed = Typed::new(Ex::Col(index), column.field.field_type);
        typed.mode = column.field.mode;
        typed.sub.clone_from(&column.field.fields);
        typed.name = Some(column.field.name.clone());
        for part in path {
            if typed.ty != FieldType::Record || typed.mode == Mode::Repeated {
                return Err(invalid_query(format!(
                    "Cannot access field {} on a value with type {}{}",
                    part.value,
                    type_name(typed.ty),
                    at(part.span)
                )));
            }
            let position =
                typed.sub.iter().position(|field| field.name.eq_ignore_ascii_case(&part.value)).ok_or_else(|| {
                    invalid_query(format!("Field name {} does not exist in STRUCT{}", part.value, at(part.span)))
                })?;
            let field = typed.sub[position].clone();
            typed = Typed {
                ex: Ex::Field(Box::new(typed.ex), position),
                ty: field.field_type,
                mode: field.mode,
                sub: field.fields.clone(),
                coercible: false,
                untyped_null: false,
                name: Some(field.name.clone()),
            };
        }
        Ok(typed)
    }

    fn column_index(&self, expr: &Expr) -> Option<usize> {
        let parts = match expr {
            Expr::Identifier(ident) => std::slice::from_ref(ident),
            Expr::CompoundIdentifier(parts) => parts.as_slice(),
            _ => return None,
        };
        match self.resolve(parts) {
            Ok(Some(Typed { ex: Ex::Col(index), .. })) => Some(index),
            _ => None,
        }
    }

    /// The key of the current grouping `expr` is, if any.
    fn group_key(&self, expr: &Expr) -> Option<usize> {
        let group = self.group.as_ref()?;
        let column = self.column_index(expr);
        group.keys.iter().position(|(key, key_column)| {
            (column.is_some() && *key_column == column) || strip_nested(key) == strip_nested(expr)
        })
    }

    pub fn compile(&mut self, expr: &Expr) -> Result<Typed, ErrorProto> {
        if let Some(key) = self.group_key(expr) {
            let group = self.group.as_ref().expect("group_key found a group");
            let mut typed = group.key_types[key].clone();
            typed.ex = Ex::Key(key);
            typed.coercible = false;
            return Ok(typed);
        }
        match expr {
            // The BigQuery dialect reads `@name` as an identifier.
            Expr::Identifier(ident) if ident.quote_style.is_none() && ident.value.starts_with('@') => {
                self.cx.parameter(&ident.value, ident.span)
            }
            Expr::Identifier(ident) => self.name(std::slice::from_ref(ident), expr),
            Expr::CompoundIdentifier(parts) => self.name(parts, expr),
            Expr::Nested(inner) => self.compile(inner),
            Expr::Value(value) => match &value.value {
                ast::Value::Placeholder(placeholder) => self.cx.parameter(placeholder, value.span),
                other => literal(other, expr),
            },
            Expr::TypedString(typed) => typed_string(&typed.data_type, &typed.value.value, expr),
            Expr::UnaryOp { op, expr: inner } => self.unary(*op, inner, expr),
            Expr::BinaryOp { left, op, right } => self.binary(left, op, right, expr),
            Expr::IsNull(inner) => {
                Ok(Typed::new(Ex::IsNull(Box::new(self.compile(inner)?.ex), false), FieldType::Boolean))
            }
            Expr::IsNotNull(inner) => {
                Ok(Typed::new(Ex::IsNull(Box::new(self.compile(inner)?.ex), true), FieldType::Boolean))
            }
            Expr::IsTrue(inner) => self.truth(inner, true, false),
            Expr::IsNotTrue(inner) => self.truth(inner, true, true),
            Expr::IsFalse(inner) => self.truth(inner, false, false),
            Expr::IsNotFalse(inner) => self.truth(inner, false, true),
            Expr::Between { expr: value, negated, low, high } => {
                let ge = Expr::BinaryOp { left: value.clone(), op: BinaryOperator::GtEq, right: low.clone() };
                let le = Expr::BinaryOp { left: value.clone(), op: BinaryOperator::LtEq, right: high.clone() };
                let both = self.binary(&ge, &BinaryOperator::And, &le, expr)?;
                Ok(if *negated { Typed::new(Ex::Not(Box::new(both.ex)), FieldType::Boolean) } else { both })
            }
            Expr::In { expr: value, target, negated, .. } => self.in_target(value, target, *negated, expr),
            Expr::Like { negated, any: false, expr: value, pattern, escape_char: None } => {
                let value = self.compile(value)?;
                let pattern = self.compile(pattern)?;
                for side in [&value, &pattern] {
                    if side.ty != FieldType::String && !side.untyped_null {
                        return Err(no_signature("LIKE", &[value.ty, pattern.ty], expr));
                    }
                }
                Ok(Typed::new(Ex::Like(Box::new(value.ex), Box::new(pattern.ex), *negated), FieldType::Boolean))
            }
            Expr::Case { operand, conditions, else_result, .. } => {
                self.case(operand.as_deref(), conditions, else_result.as_deref(), expr)
            }
            Expr::Cast { kind, expr: inner, data_type, format: None } => {
                let safe = match kind {
                    ast::CastKind::Cast => false,
                    ast::CastKind::SafeCast | ast::CastKind::TryCast => true,
                    ast::CastKind::DoubleColon => return Err(unsupported("The `::` cast")),
                };
                let to = data_type_of(data_type)?;
                let value = self.compile(inner)?;
                cast(value, to, safe, expr)
            }
            Expr::Extract { field, expr: inner, .. } => {
                let value = self.compile(inner)?;
                signatures::extract(field, value, expr)
            }
            Expr::Function(function) => self.function(function, expr),
            // SUBSTR, CEIL, FLOOR and TRIM have syntax of their own in the parser; they are plain functions here.
            Expr::Substring { expr: value, substring_from: Some(from), substring_for, .. } => {
                let mut args = vec![self.argument("SUBSTR", 0, value)?, self.argument("SUBSTR", 1, from)?];
                if let Some(count) = substring_for {
                    args.push(self.argument("SUBSTR", 2, count)?);
                }
                signatures::compile("SUBSTR", args, self.cx.request.now_micros, expr)
            }
            Expr::Ceil { expr: value, field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) }
            | Expr::Floor { expr: value, field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) } => {
                let name = if matches!(expr, Expr::Ceil { .. }) { "CEIL" } else { "FLOOR" };
                let args = vec![self.argument(name, 0, value)?];
                signatures::compile(name, args, self.cx.request.now_micros, expr)
            }
            Expr::Trim { trim_where: None, trim_what: None, expr: value, trim_characters: None } => {
                let args = vec![self.argument("TRIM", 0, value)?];
                signatures::compile("TRIM", args, self.cx.request.now_micros, expr)
            }
            Expr::Subquery(query) => self.scalar_subquery(query, expr),
            Expr::Interval(_) => Err(invalid_query(format!(
                "An INTERVAL is only supported as an argument of DATE_ADD, DATE_SUB, TIMESTAMP_ADD, TIMESTAMP_SUB, \
                 DATETIME_ADD or DATETIME_SUB{}",
                expr_at(expr)
            ))),
            other => Err(unsupported(format!("The expression `{other}`"))),
        }
    }

    fn name(&mut self, parts: &[ast::Ident], expr: &Expr) -> Result<Typed, ErrorProto> {
        if parts.len() == 1
            && let Some(index) = self.outputs.iter().position(|(alias, _)| alias.eq_ignore_ascii_case(&parts[0].value))
        {
            return Ok(Typed::new(Ex::Out(index), self.outputs[index].1));
        }
        if let Some(typed) = self.resolve(parts)? {
            if self.group.is_some() {
                return Err(invalid_query(format!(
                    "SELECT list expression references column {} which is neither grouped nor aggregated{}",
                    parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join("."),
                    expr_at(expr)
                )));
            }
            return Ok(typed);
        }
        if parts.len() == 1 && signatures::is_niladic(&parts[0].value) {
            return signatures::niladic(&parts[0].value, self.cx.request.now_micros);
        }
        let name: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
        Err(invalid_query(format!("Unrecognized name: {}{}", name.join("."), at(parts[0].span))))
    }

    fn truth(&mut self, inner: &Expr, value: bool, negated: bool) -> Result<Typed, ErrorProto> {
        let typed = self.compile(inner)?;
        if typed.ty != FieldType::Boolean && !typed.untyped_null {
            return Err(no_signature("IS TRUE", &[typed.ty], inner));
        }
        Ok(Typed::new(Ex::Truth(Box::new(typed.ex), value, negated), FieldType::Boolean))
    }

    fn unary(&mut self, op: UnaryOperator, inner: &Expr, expr: &Expr) -> Result<Typed, ErrorProto> {
        let typed = self.compile(inner)?;
        match op {
            UnaryOperator::Not => {
                if typed.ty != FieldType::Boolean && !typed.untyped_null {
                    return Err(no_signature("NOT", &[typed.ty], expr));
                }
                Ok(Typed::new(Ex::Not(Box::new(typed.ex)), FieldType::Boolean))
            }
            UnaryOperator::Minus => match typed.ty {
                FieldType::Integer | FieldType::Float | FieldType::Numeric => {
                    let ty = typed.ty;
                    // A negative literal stays a literal, so that `-9223372036854775808` and coercions work.
                    if let Ex::Lit(value) = &typed.ex {
                        let negated = ops::negate(value, ty)?;
                        return Ok(Typed { ex: Ex::Lit(negated), ..typed });
                    }
                    Ok(Typed::new(Ex::Neg(Box::new(typed.ex), ty), ty))
                }
                _ => Err(no_signature("-", &[typed.ty], expr)),
            },
            UnaryOperator::Plus => Ok(typed),
            other => Err(unsupported(format!("The operator {other}"))),
        }
    }

    fn binary(&mut self, left: &Expr, op: &BinaryOperator, right: &Expr, expr: &Expr) -> Result<Typed, ErrorProto> {
        let left = self.compile(left)?;
        let right = self.compile(right)?;
        match op {
            BinaryOperator::And | BinaryOperator::Or => {
                for side in [&left, &right] {
                    if side.ty != FieldType::Boolean && !side.untyped_null {
                        return Err(no_signature(&op.to_string(), &[left.ty, right.ty], expr));
                    }
                }
                let (l, r) = (Box::new(left.ex), Box::new(right.ex));
                Ok(Typed::new(
                    if *op == BinaryOperator::And { Ex::And(l, r) } else { Ex::Or(l, r) },
                    FieldType::Boolean,
                ))
            }
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                let cmp = match op {
                    BinaryOperator::Eq => CmpOp::Eq,
                    BinaryOperator::NotEq => CmpOp::NotEq,
                    BinaryOperator::Lt => CmpOp::Lt,
                    BinaryOperator::LtEq => CmpOp::LtEq,
                    BinaryOperator::Gt => CmpOp::Gt,
                    _ => CmpOp::GtEq,
                };
                let name = op.to_string();
                let (left, right, ty) = unify(left, right, &name, expr)?;
                if !comparable(ty) {
                    return Err(no_signature(&name, &[ty, ty], expr));
                }
                Ok(Typed::new(Ex::Cmp(cmp, Box::new(left.ex), Box::new(right.ex), ty), FieldType::Boolean))
            }
            BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply | BinaryOperator::Divide => {
                let arith = match op {
                    BinaryOperator::Plus => ArOp::Add,
                    BinaryOperator::Minus => ArOp::Sub,
                    BinaryOperator::Multiply => ArOp::Mul,
                    _ => ArOp::Div,
                };
                arithmetic(arith, left, right, &op.to_string(), expr)
            }
            BinaryOperator::StringConcat => {
                for side in [&left, &right] {
                    if side.ty != FieldType::String && !side.untyped_null {
                        return Err(no_signature("||", &[left.ty, right.ty], expr));
                    }
                }
                Ok(Typed::new(Ex::Concat(vec![left.ex, right.ex]), FieldType::String))
            }
            other => Err(unsupported(format!("The operator {other}"))),
        }
    }

    fn in_target(
        &mut self,
        value: &Expr,
        target: &ast::InTarget,
        negated: bool,
        expr: &Expr,
    ) -> Result<Typed, ErrorProto> {
        let value = self.compile(value)?;
        let candidates: Vec<Typed> = match target {
            ast::InTarget::List(items) => items.iter().map(|item| self.compile(item)).collect::<Result<_, _>>()?,
            ast::InTarget::Subquery(query) => {
                let result = (self.cx.subquery)(self.cx, query)?;
                let [column] = result.columns.as_slice() else {
                    return Err(invalid_query(format!(
                        "Subquery of type IN must have only one output column{}",
                        expr_at(expr)
                    )));
                };
                result
                    .rows
                    .into_iter()
                    .map(|mut row| Typed::new(Ex::Lit(row.swap_remove(0)), column.field.field_type))
                    .collect()
            }
            ast::InTarget::Unnest(array) => {
                let array = self.compile(array)?;
                let Ex::Lit(Value::Repeated(items)) = &array.ex else {
                    return Err(unsupported("UNNEST of anything but an array parameter or literal"));
                };
                items
                    .iter()
                    .map(|item| Typed { coercible: true, ..Typed::new(Ex::Lit(item.clone()), array.ty) })
                    .collect()
            }
            other => return Err(unsupported(format!("IN {other}"))),
        };
        let mut ty = value.ty;
        for candidate in &candidates {
            ty = supertype(&Typed { ty, ..value.clone() }, candidate)
                .ok_or_else(|| no_signature("IN", &[value.ty, candidate.ty], expr))?;
        }
        let value = coerce(value, ty, expr)?;
        let candidates = candidates.into_iter().map(|c| coerce(c, ty, expr).map(|c| c.ex)).collect::<Result<_, _>>()?;
        Ok(Typed::new(Ex::In(Box::new(value.ex), candidates, ty, negated), FieldType::Boolean))
    }

    fn case(
        &mut self,
        operand: Option<&Expr>,
        conditions: &[ast::CaseWhen],
        otherwise: Option<&Expr>,
        expr: &Expr,
    ) -> Result<Typed, ErrorProto> {
        let operand = operand.map(|operand| self.compile(operand)).transpose()?;
        let mut whens = Vec::new();
        let mut results = Vec::new();
        for when in conditions {
            whens.push(self.compile(&when.condition)?);
            results.push(self.compile(&when.result)?);
        }
        if let Some(otherwise) = otherwise {
            results.push(self.compile(otherwise)?);
        }
        // WHEN values compare with the operand at their common type.
        let mut compare_type = FieldType::Boolean;
        let mut operand_ex = None;
        if let Some(operand) = operand {
            let mut ty = operand.ty;
            for when in &whens {
                ty = supertype(&Typed { ty, ..operand.clone() }, when)
                    .ok_or_else(|| no_signature("CASE", &[operand.ty, when.ty], expr))?;
            }
            compare_type = ty;
            operand_ex = Some(Box::new(coerce(operand, ty, expr)?.ex));
            whens = whens.into_iter().map(|w| coerce(w, ty, expr)).collect::<Result<_, _>>()?;
        } else {
            for when in &whens {
                if when.ty != FieldType::Boolean && !when.untyped_null {
                    return Err(no_signature("CASE", &[when.ty], expr));
                }
            }
        }
        let (results, ty) = common(results, "CASE", expr)?;
        let mut results = results.into_iter();
        let pairs: Vec<(Ex, Ex)> =
            whens.into_iter().map(|w| (w.ex, results.next().map(|r| r.ex).unwrap_or(Ex::Lit(Value::Null)))).collect();
        let otherwise = otherwise.and(results.next()).map(|r| Box::new(r.ex));
        Ok(Typed::new(Ex::Case(operand_ex, pairs, otherwise, compare_type), ty))
    }

    fn function(&mut self, function: &ast::Function, expr: &Expr) -> Result<Typed, ErrorProto> {
        let name = function_name(&function.name)?;
        if function.over.is_some() {
            return Err(unsupported(format!("The window function {name}(...) OVER")));
        }
        if function.filter.is_some() || !function.within_group.is_empty() || function.null_treatment.is_some() {
            return Err(unsupported(format!("The clauses of {name}(...)")));
        }
        let (args, distinct) = match &function.args {
            FunctionArguments::None => (Vec::new(), false),
            FunctionArguments::List(list) => {
                if !list.clauses.is_empty() {
                    return Err(unsupported(format!("The clauses inside {name}(...)")));
                }
                let distinct = matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
                (list.args.iter().collect::<Vec<_>>(), distinct)
            }
            FunctionArguments::Subquery(_) => return Err(unsupported(format!("{name}(subquery)"))),
        };
        if let Some(aggregate) = Aggregate::parse(&name) {
            return self.aggregate(aggregate, &name, &args, distinct, expr);
        }
        if distinct {
            return Err(invalid_query(format!("DISTINCT is not allowed in {name}{}", expr_at(expr))));
        }
        let mut compiled = Vec::new();
        for arg in &args {
            let FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) = arg else {
                return Err(unsupported(format!("The argument `{arg}` of {name}")));
            };
            compiled.push(self.argument(&name, compiled.len(), arg)?);
        }
        signatures::compile(&name, compiled, self.cx.request.now_micros, expr)
    }

    /// An argument: date parts (`DAY`) and intervals are arguments of their own kind.
    fn argument(&mut self, name: &str, position: usize, arg: &Expr) -> Result<signatures::Arg, ErrorProto> {
        if let Expr::Interval(interval) = arg {
            let unit = interval
                .leading_field
                .as_ref()
                .ok_or_else(|| invalid_query(format!("INTERVAL needs a date part{}", expr_at(arg))))?;
            if interval.last_field.is_some() {
                return Err(unsupported("An INTERVAL range (INTERVAL '..' DAY TO SECOND)"));
            }
            let count = self.compile(&interval.value)?;
            let count = coerce(count, FieldType::Integer, arg)?;
            return Ok(signatures::Arg::Interval(count, signatures::part_of_field(unit, arg)?));
        }
        if position > 0
            && signatures::takes_part(name)
            && let Expr::Identifier(ident) = arg
            && ident.quote_style.is_none()
            && let Some(part) = super::functions::part_named(&ident.value)
        {
            return Ok(signatures::Arg::Part(part));
        }
        Ok(signatures::Arg::Value(self.compile(arg)?))
    }

    fn aggregate(
        &mut self,
        function: Aggregate,
        name: &str,
        args: &[&FunctionArg],
        distinct: bool,
        expr: &Expr,
    ) -> Result<Typed, ErrorProto> {
        if let Some(clause) = self.no_aggregates {
            return Err(invalid_query(format!("Aggregate function {name} not allowed in {clause}{}", expr_at(expr))));
        }
        if self.group.is_none() {
            return Err(invalid_query(format!("Aggregate function {name} not allowed here{}", expr_at(expr))));
        }
        let (spec, ty) = match args {
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if function == Aggregate::Count && !distinct => (
                AggSpec { function: Aggregate::CountStar, arg: None, arg_type: FieldType::Integer, distinct },
                FieldType::Integer,
            ),
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] => {
                // The argument is compiled over the group's rows, where aggregates may not nest.
                let mut inner = Compiler::new(self.cx, self.columns);
                inner.no_aggregates = Some("an aggregate's argument");
                let arg = inner.compile(arg)?;
                let ty = signatures::aggregate_type(function, &arg, name, expr)?;
                if distinct && !groupable(arg.ty) {
                    return Err(invalid_query(format!(
                        "{name}(DISTINCT ...) of type {} is not supported{}",
                        type_name(arg.ty),
                        expr_at(expr)
                    )));
                }
                (AggSpec { function, arg_type: arg.ty, arg: Some(arg.ex), distinct }, ty)
            }
            _ => {
                return Err(invalid_query(format!(
                    "Number of arguments does not match for aggregate function {name}{}",
                    expr_at(expr)
                )));
            }
        };
        let group = self.group.as_mut().expect("checked above");
        group.aggregates.push(spec);
        Ok(Typed::new(Ex::Agg(group.aggregates.len() - 1), ty))
    }

    fn scalar_subquery(&mut self, query: &ast::Query, expr: &Expr) -> Result<Typed, ErrorProto> {
        let result = (self.cx.subquery)(self.cx, query)?;
        let [column] = result.columns.as_slice() else {
            return Err(invalid_query(format!(
                "Scalar subquery cannot have more than one column unless using SELECT AS STRUCT to build STRUCT values{}",
                expr_at(expr)
            )));
        };
        let value = match result.rows.len() {
            0 => Value::Null,
            1 => result.rows.into_iter().next().and_then(|row| row.into_iter().next()).unwrap_or(Value::Null),
            _ => return Err(invalid_query("Scalar subquery produced more than one element")),
        };
        let mut typed = Typed::new(Ex::Lit(value), column.field.field_type);
        typed.sub.clone_from(&column.field.fields);
        typed.mode = column.field.mode;
        Ok(typed)
    }
}

/// `Expr::Nested` around an expression does not change it, for matching GROUP BY keys.
fn strip_nested(expr: &Expr) -> &Expr {
    match expr {
        Expr::Nested(inner) => strip_nested(inner),
        other => other,
    }
}

/// The upper-case name of a function, or the error for a qualified one (`SAFE.` prefixes are not supported).
pub(crate) fn function_name(name: &ast::ObjectName) -> Result<String, ErrorProto> {
    let parts: Vec<String> = name.0.iter().map(|part| part.to_string()).collect();
    match parts.as_slice() {
        [single] => Ok(single.trim_matches('`').to_ascii_uppercase()),
        _ => Err(unsupported(format!("The function {}", parts.join(".")))),
    }
}

/// A literal value.
fn literal(value: &ast::Value, expr: &Expr) -> Result<Typed, ErrorProto> {
    Ok(match value {
        ast::Value::Number(text, _) => {
            if let Ok(number) = text.parse::<i64>() {
                Typed::literal(Value::Integer(number), FieldType::Integer)
            } else if text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid_query(format!("Invalid integer literal: {text}{}", expr_at(expr))));
            } else {
                let number: f64 =
                    text.parse().map_err(|_| invalid_query(format!("Invalid floating point literal: {text}")))?;
                Typed::literal(Value::Float(number), FieldType::Float)
            }
        }
        ast::Value::SingleQuotedString(text)
        | ast::Value::DoubleQuotedString(text)
        | ast::Value::TripleSingleQuotedString(text)
        | ast::Value::TripleDoubleQuotedString(text)
        | ast::Value::SingleQuotedRawStringLiteral(text)
        | ast::Value::DoubleQuotedRawStringLiteral(text) => {
            Typed::literal(Value::String(text.clone()), FieldType::String)
        }
        ast::Value::Boolean(flag) => Typed::literal(Value::Boolean(*flag), FieldType::Boolean),
        ast::Value::Null => Typed { untyped_null: true, ..Typed::literal(Value::Null, FieldType::Integer) },
        ast::Value::Placeholder(_) => {
            return Err(invalid_query(format!("Query parameter {value} not found{}", expr_at(expr))));
        }
        other => return Err(unsupported(format!("The literal {other}"))),
    })
}

/// `DATE '2024-06-01'`, `TIMESTAMP '...'`, `NUMERIC '1.5'` and friends.
fn typed_string(data_type: &ast::DataType, value: &ast::Value, expr: &Expr) -> Result<Typed, ErrorProto> {
    let ty = data_type_of(data_type)?;
    let text = match value {
        ast::Value::SingleQuotedString(text) | ast::Value::DoubleQuotedString(text) => text.clone(),
        other => return Err(unsupported(format!("The literal {data_type} {other}"))),
    };
    let typed = Typed::literal(Value::String(text), FieldType::String);
    let mut result = coerce(typed, ty, expr)?;
    result.coercible = false;
    Ok(result)
}

fn arithmetic(op: ArOp, left: Typed, right: Typed, name: &str, expr: &Expr) -> Result<Typed, ErrorProto> {
    use FieldType::*;
    let numeric_type = |ty: FieldType| matches!(ty, Integer | Float | Numeric);
    let both_numeric = (numeric_type(left.ty) || left.untyped_null) && (numeric_type(right.ty) || right.untyped_null);
    if !both_numeric {
        return Err(no_signature(name, &[left.ty, right.ty], expr));
    }
    let (left, right, mut ty) = unify(left, right, name, expr)?;
    let (mut l, mut r) = (left.ex, right.ex);
    if op == ArOp::Div && ty == Integer {
        // INT64 / INT64 is FLOAT64 in BigQuery.
        l = Ex::Cast(Box::new(l), Integer, Float, false);
        r = Ex::Cast(Box::new(r), Integer, Float, false);
        ty = Float;
    }
    Ok(Typed::new(Ex::Arith(op, Box::new(l), Box::new(r), ty), ty))
}
