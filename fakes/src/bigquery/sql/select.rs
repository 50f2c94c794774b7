//! Queries: WITH, SELECT (FROM with joins, WHERE, GROUP BY, HAVING, DISTINCT, ORDER BY, LIMIT and OFFSET),
//! UNION ALL and UNION DISTINCT, scalar and IN subqueries, and the tables they read (stored tables, WITH tables,
//! derived tables and INFORMATION_SCHEMA views).

use std::collections::HashMap;

use sqlparser::ast::{
    self, Expr, GroupByExpr, JoinConstraint, JoinOperator, LimitClause, OrderBy, OrderByKind, Query, Select,
    SelectItem, SetExpr, SetOperator, SetQuantifier, TableFactor, TableWithJoins,
};

use super::super::errors::ErrorProto;
use super::super::schema::{Field, FieldType, Mode};
use super::super::values::Value;
use super::context::{Column, Context, Relation};
use super::eval::{Env, Ex, eval};
use super::functions;
use super::ops::{CmpOp, key, order, type_name};
use super::plan::{AggSpec, Compiler, Group};
use super::typing::{Typed, groupable, normalise, supertype};
use super::{ResultSet, TableView, info_schema, invalid_query, unsupported};

/// Runs a query to its result set.
pub(crate) fn run_query(cx: &Context<'_>, query: &Query) -> Result<ResultSet, ErrorProto> {
    let relation = query_relation(cx, query)?;
    Ok(ResultSet { fields: relation.columns.into_iter().map(|column| column.field).collect(), rows: relation.rows })
}

/// Runs a query to a relation whose columns carry no qualifier.
pub(crate) fn query_relation(cx: &Context<'_>, query: &Query) -> Result<Relation, ErrorProto> {
    if query.fetch.is_some() || !query.locks.is_empty() || query.for_clause.is_some() || query.settings.is_some() {
        return Err(unsupported("FETCH, FOR, locking and SETTINGS clauses"));
    }
    if query.format_clause.is_some() || !query.pipe_operators.is_empty() {
        return Err(unsupported("Pipe syntax and FORMAT"));
    }
    let pushed = match &query.with {
        Some(with) => {
            if with.recursive {
                return Err(unsupported("WITH RECURSIVE"));
            }
            for cte in &with.cte_tables {
                if !cte.alias.columns.is_empty() {
                    return Err(unsupported("Column lists on WITH tables"));
                }
                let relation = query_relation(cx, &cte.query)?;
                cx.ctes.borrow_mut().push((cte.alias.name.value.clone(), relation));
            }
            with.cte_tables.len()
        }
        None => 0,
    };
    let result = body(cx, &query.body, query.order_by.as_ref(), query.limit_clause.as_ref());
    let mut ctes = cx.ctes.borrow_mut();
    let keep = ctes.len().saturating_sub(pushed);
    ctes.truncate(keep);
    result
}

fn body(
    cx: &Context<'_>,
    set: &SetExpr,
    order_by: Option<&OrderBy>,
    limit: Option<&LimitClause>,
) -> Result<Relation, ErrorProto> {
    match set {
        SetExpr::Select(select) => run_select(cx, select, order_by, limit),
        SetExpr::Query(inner) => {
            let relation = query_relation(cx, inner)?;
            finish(cx, relation, order_by, limit)
        }
        SetExpr::SetOperation { left, op, set_quantifier, right } => {
            let relation = set_operation(cx, left, *op, *set_quantifier, right)?;
            finish(cx, relation, order_by, limit)
        }
        SetExpr::Values(_) => Err(unsupported("A VALUES list as a query (use SELECT ... UNION ALL SELECT ...)")),
        other => Err(unsupported(format!("The query `{other}`"))),
    }
}

fn set_operation(
    cx: &Context<'_>,
    left: &SetExpr,
    op: SetOperator,
    quantifier: SetQuantifier,
    right: &SetExpr,
) -> Result<Relation, ErrorProto> {
    let distinct = match (op, quantifier) {
        (SetOperator::Union, SetQuantifier::All) => false,
        (SetOperator::Union, SetQuantifier::Distinct) => true,
        (SetOperator::Union, SetQuantifier::None) => {
            return Err(invalid_query("Syntax error: Expected keyword ALL or keyword DISTINCT but got keyword SELECT"));
        }
        _ => return Err(unsupported(format!("{op} {quantifier}"))),
    };
    let mut left = body(cx, left, None, None)?;
    let right = body(cx, right, None, None)?;
    if left.columns.len() != right.columns.len() {
        return Err(invalid_query(format!(
            "Queries in UNION ALL have mismatched column count; query 1 has {} columns, query 2 has {} columns",
            left.columns.len(),
            right.columns.len()
        )));
    }
    let mut conversions = Vec::new();
    for (index, (l, r)) in left.columns.iter_mut().zip(&right.columns).enumerate() {
        let lt = Typed::new(Ex::Lit(Value::Null), l.field.field_type);
        let rt = Typed::new(Ex::Lit(Value::Null), r.field.field_type);
        let ty = supertype(&lt, &rt).ok_or_else(|| {
            invalid_query(format!(
                "Column {} in UNION ALL has incompatible types: {}, {}",
                index + 1,
                type_name(l.field.field_type),
                type_name(r.field.field_type)
            ))
        })?;
        conversions.push((l.field.field_type, r.field.field_type, ty));
        l.field.field_type = ty;
    }
    let convert = |row: Vec<Value>, left_side: bool| -> Result<Vec<Value>, ErrorProto> {
        row.into_iter()
            .zip(&conversions)
            .map(|(value, (lt, rt, ty))| super::ops::cast_value(&value, if left_side { *lt } else { *rt }, *ty))
            .collect()
    };
    let mut rows = Vec::with_capacity(left.rows.len() + right.rows.len());
    for row in std::mem::take(&mut left.rows) {
        rows.push(convert(row, true)?);
    }
    for row in right.rows {
        rows.push(convert(row, false)?);
    }
    if distinct {
        dedupe(&mut rows);
    }
    Ok(Relation { columns: left.columns, rows })
}

fn dedupe(rows: &mut Vec<Vec<Value>>) {
    let mut seen = std::collections::HashSet::new();
    rows.retain(|row| seen.insert(row.iter().map(key).collect::<Vec<_>>()));
}

/// ORDER BY and LIMIT over a finished relation (a UNION or a parenthesised query): by output columns only.
fn finish(
    cx: &Context<'_>,
    mut relation: Relation,
    order_by: Option<&OrderBy>,
    limit: Option<&LimitClause>,
) -> Result<Relation, ErrorProto> {
    if let Some(order_by) = order_by {
        let columns = relation.columns.clone();
        let mut compiler = Compiler::new(cx, &columns);
        let keys = order_keys(&mut compiler, order_by, &columns)?;
        let mut keyed: Vec<(Vec<Value>, Vec<Value>)> = Vec::with_capacity(relation.rows.len());
        for row in relation.rows {
            let env = Env { row: &row, outputs: &row, ..Env::default() };
            let values = keys.iter().map(|(ex, ..)| eval(ex, &env)).collect::<Result<Vec<_>, _>>()?;
            keyed.push((values, row));
        }
        sort(&mut keyed, &keys);
        relation.rows = keyed.into_iter().map(|(_, row)| row).collect();
    }
    apply_limit(cx, &mut relation.rows, limit)?;
    Ok(relation)
}

/// A sort key: expression, type, descending, NULLs last.
type SortKey = (Ex, FieldType, bool, bool);

fn order_keys(compiler: &mut Compiler<'_>, order_by: &OrderBy, outputs: &[Column]) -> Result<Vec<SortKey>, ErrorProto> {
    if order_by.interpolate.is_some() {
        return Err(unsupported("ORDER BY ... INTERPOLATE"));
    }
    let OrderByKind::Expressions(items) = &order_by.kind else {
        return Err(unsupported("ORDER BY ALL"));
    };
    let mut keys = Vec::new();
    for item in items {
        if item.with_fill.is_some() {
            return Err(unsupported("ORDER BY ... WITH FILL"));
        }
        let descending = matches!(item.options.sort, Some(ast::OrderBySort::Desc));
        let nulls_last = item.options.nulls_first.map_or(descending, |first| !first);
        let typed = match &item.expr {
            Expr::Value(value) if matches!(value.value, ast::Value::Number(..)) => {
                let position = ordinal(&item.expr, outputs.len(), "ORDER BY")?;
                Typed::new(Ex::Out(position), outputs[position].field.field_type)
            }
            other => compiler.compile(other)?,
        };
        if !groupable(typed.ty) {
            return Err(invalid_query(format!(
                "ORDER BY does not support expressions of type {}",
                type_name(typed.ty)
            )));
        }
        keys.push((typed.ex, typed.ty, descending, nulls_last));
    }
    Ok(keys)
}

/// `ORDER BY 2`, `GROUP BY 1`: a 1-based position into the SELECT list.
fn ordinal(expr: &Expr, count: usize, clause: &str) -> Result<usize, ErrorProto> {
    let Expr::Value(value) = expr else { return Err(invalid_query(format!("{clause} position is not a number"))) };
    let ast::Value::Number(text, _) = &value.value else {
        return Err(invalid_query(format!("{clause} position is not a number")));
    };
    match text.parse::<usize>() {
        Ok(position) if (1..=count).contains(&position) => Ok(position - 1),
        _ => Err(invalid_query(format!(
            "{clause} column number item is out of range. Column numbers start at 1. Maximum column number is {count}"
        ))),
    }
}

fn sort<T>(rows: &mut [(Vec<Value>, T)], keys: &[SortKey]) {
    rows.sort_by(|(a, _), (b, _)| {
        for (index, (_, ty, descending, nulls_last)) in keys.iter().enumerate() {
            let (x, y) = (&a[index], &b[index]);
            let ordering = match (*x == Value::Null, *y == Value::Null) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => {
                    if *nulls_last {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    }
                }
                (false, true) => {
                    if *nulls_last {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    }
                }
                _ => {
                    let ordering = order(x, y, *ty);
                    if *descending { ordering.reverse() } else { ordering }
                }
            };
            if ordering != std::cmp::Ordering::Equal {
                return ordering;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn constant(cx: &Context<'_>, expr: &Expr, clause: &str) -> Result<usize, ErrorProto> {
    let mut compiler = Compiler::new(cx, &[]);
    let typed = compiler.compile(expr)?;
    match (typed.ex, typed.ty) {
        (Ex::Lit(Value::Integer(number)), FieldType::Integer) if number >= 0 => {
            Ok(usize::try_from(number).unwrap_or(usize::MAX))
        }
        _ => Err(invalid_query(format!("{clause} expects a non-negative integer literal or parameter"))),
    }
}

fn apply_limit(cx: &Context<'_>, rows: &mut Vec<Vec<Value>>, limit: Option<&LimitClause>) -> Result<(), ErrorProto> {
    let Some(limit) = limit else { return Ok(()) };
    let (count, offset) = match limit {
        LimitClause::LimitOffset { limit, offset, limit_by } => {
            if !limit_by.is_empty() {
                return Err(unsupported("LIMIT BY"));
            }
            let count = limit.as_ref().map(|expr| constant(cx, expr, "LIMIT")).transpose()?;
            let offset = offset.as_ref().map(|offset| constant(cx, &offset.value, "OFFSET")).transpose()?;
            (count, offset.unwrap_or(0))
        }
        LimitClause::OffsetCommaLimit { .. } => return Err(unsupported("LIMIT offset, count")),
    };
    let skipped = offset.min(rows.len());
    rows.drain(..skipped);
    if let Some(count) = count {
        rows.truncate(count);
    }
    Ok(())
}

/// A SELECT list item after `*` is expanded.
enum Item {
    Expr(Box<Expr>, Option<String>),
    Column(usize),
}

fn check_select(select: &Select) -> Result<(), ErrorProto> {
    let unsupported_clause = |what: &str| Err(unsupported(what.to_owned()));
    if select.top.is_some() || select.into.is_some() {
        return unsupported_clause("TOP and SELECT INTO");
    }
    if !select.lateral_views.is_empty() || select.prewhere.is_some() || !select.connect_by.is_empty() {
        return unsupported_clause("LATERAL VIEW, PREWHERE and CONNECT BY");
    }
    if !select.cluster_by.is_empty() || !select.distribute_by.is_empty() || !select.sort_by.is_empty() {
        return unsupported_clause("CLUSTER BY, DISTRIBUTE BY and SORT BY in a SELECT");
    }
    if !select.named_window.is_empty() || select.qualify.is_some() {
        return unsupported_clause("Window functions, WINDOW and QUALIFY");
    }
    if select.value_table_mode.is_some() {
        return unsupported_clause("SELECT AS STRUCT and SELECT AS VALUE");
    }
    if select.exclude.is_some() {
        return unsupported_clause("SELECT ... EXCLUDE");
    }
    if matches!(select.distinct, Some(ast::Distinct::On(_))) {
        return unsupported_clause("DISTINCT ON");
    }
    Ok(())
}

/// Whether an expression calls an aggregate function outside a subquery.
fn has_aggregate(expr: &Expr) -> bool {
    match expr {
        Expr::Function(function) => {
            let name = super::plan::function_name(&function.name).unwrap_or_default();
            if functions::is_aggregate(&name) && function.over.is_none() {
                return true;
            }
            match &function.args {
                ast::FunctionArguments::List(list) => list.args.iter().any(|arg| match arg {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(inner))
                    | ast::FunctionArg::Named { arg: ast::FunctionArgExpr::Expr(inner), .. } => has_aggregate(inner),
                    _ => false,
                }),
                _ => false,
            }
        }
        Expr::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::IsTrue(expr)
        | Expr::IsFalse(expr)
        | Expr::IsNotTrue(expr)
        | Expr::IsNotFalse(expr)
        | Expr::Cast { expr, .. }
        | Expr::Extract { expr, .. } => has_aggregate(expr),
        Expr::Between { expr, low, high, .. } => has_aggregate(expr) || has_aggregate(low) || has_aggregate(high),
        Expr::In { expr, target, .. } => {
            has_aggregate(expr) || matches!(target, ast::InTarget::List(items) if items.iter().any(has_aggregate))
        }
        Expr::Like { expr, pattern, .. } => has_aggregate(expr) || has_aggregate(pattern),
        Expr::Case { operand, conditions, else_result, .. } => {
            operand.as_deref().is_some_and(has_aggregate)
                || conditions.iter().any(|when| has_aggregate(&when.condition) || has_aggregate(&when.result))
                || else_result.as_deref().is_some_and(has_aggregate)
        }
        _ => false,
    }
}

fn run_select(
    cx: &Context<'_>,
    select: &Select,
    order_by: Option<&OrderBy>,
    limit: Option<&LimitClause>,
) -> Result<Relation, ErrorProto> {
    check_select(select)?;
    let mut source = from(cx, &select.from)?;
    if let Some(selection) = &select.selection {
        let mut compiler = Compiler::new(cx, &source.columns);
        compiler.no_aggregates = Some("WHERE clause");
        let condition = compiler.condition(selection, "WHERE")?;
        let mut kept = Vec::with_capacity(source.rows.len());
        for row in std::mem::take(&mut source.rows) {
            if eval(&condition, &Env::row(&row))? == Value::Boolean(true) {
                kept.push(row);
            }
        }
        source.rows = kept;
    }
    let items = expand(&source.columns, &select.projection)?;
    let group_exprs: Vec<Expr> = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.clone(),
        GroupByExpr::Expressions(..) => return Err(unsupported("GROUP BY ROLLUP, CUBE and GROUPING SETS")),
        GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
    };
    let order_exprs: Vec<&Expr> = match order_by.map(|o| &o.kind) {
        Some(OrderByKind::Expressions(items)) => items.iter().map(|item| &item.expr).collect(),
        _ => Vec::new(),
    };
    let aggregating = !group_exprs.is_empty()
        || select.having.is_some()
        || items.iter().any(|item| matches!(item, Item::Expr(expr, _) if has_aggregate(expr)))
        || order_exprs.iter().any(|expr| has_aggregate(expr));
    let columns = source.columns.clone();
    let mut compiler = Compiler::new(cx, &columns);
    if aggregating {
        compiler.group = Some(group(cx, &columns, &group_exprs, &items)?);
    }
    // The SELECT list.
    let mut outputs: Vec<Typed> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut anonymous = 0;
    for item in &items {
        let (typed, alias) = match item {
            Item::Expr(expr, alias) => (compiler.compile(expr)?, alias.clone()),
            Item::Column(index) => {
                let ident = ast::Ident::new(columns[*index].field.name.clone());
                let expr = match &columns[*index].qualifier {
                    Some(qualifier) => Expr::CompoundIdentifier(vec![ast::Ident::new(qualifier.clone()), ident]),
                    None => Expr::Identifier(ident),
                };
                (compiler.compile(&expr)?, None)
            }
        };
        let name = alias.or_else(|| typed.name.clone()).unwrap_or_else(|| {
            anonymous += 1;
            format!("f{}_", anonymous - 1)
        });
        names.push(name);
        outputs.push(typed);
    }
    let having = match &select.having {
        Some(having) => Some(compiler.condition(having, "HAVING")?),
        None => None,
    };
    let output_columns: Vec<Column> = outputs
        .iter()
        .zip(&names)
        .map(|(typed, name)| Column { qualifier: None, field: typed.field(name), hidden: false })
        .collect();
    compiler.outputs = names.iter().cloned().zip(outputs.iter().map(|typed| typed.ty)).collect();
    let sort_keys = match order_by {
        Some(order_by) => order_keys(&mut compiler, order_by, &output_columns)?,
        None => Vec::new(),
    };
    let distinct = matches!(select.distinct, Some(ast::Distinct::Distinct));
    if distinct && let Some(typed) = outputs.iter().find(|typed| !groupable(typed.ty) || typed.mode == Mode::Repeated) {
        return Err(invalid_query(format!("Column of type {} cannot be used in SELECT DISTINCT", type_name(typed.ty))));
    }
    // Rows to evaluate the SELECT list on: source rows, or groups.
    let mut produced: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    let mut emit = |env: Env<'_>| -> Result<(), ErrorProto> {
        let values = outputs.iter().map(|typed| eval(&typed.ex, &env)).collect::<Result<Vec<_>, _>>()?;
        let env = Env { outputs: &values, ..env };
        let keys = sort_keys.iter().map(|(ex, ..)| eval(ex, &env)).collect::<Result<Vec<_>, _>>()?;
        produced.push((keys, values));
        Ok(())
    };
    match compiler.group.take() {
        None => {
            for row in &source.rows {
                emit(Env::row(row))?;
            }
        }
        Some(group) => {
            for (keys, aggregates) in grouped(&group, &source.rows)? {
                let env = Env { row: &[], keys: &keys, aggregates: &aggregates, outputs: &[] };
                if let Some(having) = &having
                    && eval(having, &env)? != Value::Boolean(true)
                {
                    continue;
                }
                emit(env)?;
            }
        }
    }
    if distinct {
        let mut seen = std::collections::HashSet::new();
        produced.retain(|(_, values)| seen.insert(values.iter().map(key).collect::<Vec<_>>()));
    }
    if !sort_keys.is_empty() {
        sort(&mut produced, &sort_keys);
    }
    let mut rows: Vec<Vec<Value>> = produced.into_iter().map(|(_, values)| values).collect();
    apply_limit(cx, &mut rows, limit)?;
    Ok(Relation { columns: output_columns, rows })
}

/// `*`, `t.*` and `* EXCEPT (...)` expanded; other items as they are.
fn expand(columns: &[Column], projection: &[SelectItem]) -> Result<Vec<Item>, ErrorProto> {
    let mut items = Vec::new();
    for item in projection {
        match item {
            SelectItem::UnnamedExpr(expr) => items.push(Item::Expr(Box::new(expr.clone()), None)),
            SelectItem::ExprWithAlias { expr, alias } => {
                items.push(Item::Expr(Box::new(expr.clone()), Some(alias.value.clone())))
            }
            SelectItem::ExprWithAliases { .. } => return Err(unsupported("Several aliases for one SELECT item")),
            SelectItem::Wildcard(options) | SelectItem::QualifiedWildcard(_, options) => {
                if options.opt_replace.is_some()
                    || options.opt_rename.is_some()
                    || options.opt_exclude.is_some()
                    || options.opt_ilike.is_some()
                    || options.opt_alias.is_some()
                {
                    return Err(unsupported("SELECT * REPLACE, RENAME, EXCLUDE and ILIKE"));
                }
                let except: Vec<String> = match &options.opt_except {
                    Some(except) => std::iter::once(&except.first_element)
                        .chain(&except.additional_elements)
                        .map(|ident| ident.value.to_ascii_lowercase())
                        .collect(),
                    None => Vec::new(),
                };
                let qualifier = match item {
                    SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                        Some(name.to_string().trim_matches('`').to_owned())
                    }
                    SelectItem::QualifiedWildcard(..) => return Err(unsupported("expr.* on an expression")),
                    _ => None,
                };
                if columns.is_empty() {
                    return Err(invalid_query("SELECT * must have a FROM clause"));
                }
                let before = items.len();
                for (index, column) in columns.iter().enumerate() {
                    let wanted = match &qualifier {
                        Some(qualifier) => {
                            column.qualifier.as_deref().is_some_and(|q| q.eq_ignore_ascii_case(qualifier))
                        }
                        None => true,
                    };
                    if wanted && !column.hidden && !except.contains(&column.field.name.to_ascii_lowercase()) {
                        items.push(Item::Column(index));
                    }
                }
                if let Some(qualifier) = qualifier
                    && items.len() == before
                {
                    return Err(invalid_query(format!("Unrecognized name: {qualifier}")));
                }
            }
        }
    }
    Ok(items)
}

/// GROUP BY keys, with positions (`GROUP BY 1`) and SELECT aliases replaced by the expressions they name.
fn group(cx: &Context<'_>, columns: &[Column], exprs: &[Expr], items: &[Item]) -> Result<Group, ErrorProto> {
    let mut group = Group::default();
    let mut row_compiler = Compiler::new(cx, columns);
    row_compiler.no_aggregates = Some("GROUP BY clause");
    for expr in exprs {
        let resolved = match expr {
            Expr::Value(value) if matches!(value.value, ast::Value::Number(..)) => {
                let position = ordinal(expr, items.len(), "GROUP BY")?;
                match &items[position] {
                    Item::Expr(expr, _) => (**expr).clone(),
                    Item::Column(index) => Expr::Identifier(ast::Ident::new(columns[*index].field.name.clone())),
                }
            }
            Expr::Identifier(ident) if !columns.iter().any(|c| c.field.name.eq_ignore_ascii_case(&ident.value)) => {
                let aliased = items.iter().find_map(|item| match item {
                    Item::Expr(expr, Some(alias)) if alias.eq_ignore_ascii_case(&ident.value) => Some((**expr).clone()),
                    _ => None,
                });
                aliased.unwrap_or_else(|| expr.clone())
            }
            other => other.clone(),
        };
        let typed = row_compiler.compile(&resolved)?;
        if !groupable(typed.ty) || typed.mode == Mode::Repeated {
            return Err(invalid_query(format!(
                "Grouping by expressions of type {} is not allowed",
                type_name(typed.ty)
            )));
        }
        let column = match &typed.ex {
            Ex::Col(index) => Some(*index),
            _ => None,
        };
        group.keys.push((resolved, column));
        group.key_types.push(typed);
    }
    Ok(group)
}

/// The groups of `rows`, in first-seen order, with their key values and aggregate values. Without GROUP BY
/// there is exactly one group, even over no rows.
/// Each group's key values and aggregate values.
type Groups = Vec<(Vec<Value>, Vec<Value>)>;

fn grouped(group: &Group, rows: &[Vec<Value>]) -> Result<Groups, ErrorProto> {
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    let mut groups: Vec<(Vec<Value>, Vec<Vec<Value>>)> = Vec::new();
    if group.keys.is_empty() {
        groups.push((Vec::new(), vec![Vec::new(); group.aggregates.len()]));
    }
    for row in rows {
        let env = Env::row(row);
        let keys = group.key_types.iter().map(|typed| eval(&typed.ex, &env)).collect::<Result<Vec<_>, _>>()?;
        let slot = if group.keys.is_empty() {
            0
        } else {
            let hashed: Vec<String> = keys.iter().map(key).collect();
            *index.entry(hashed).or_insert_with(|| {
                groups.push((keys, vec![Vec::new(); group.aggregates.len()]));
                groups.len() - 1
            })
        };
        for (position, spec) in group.aggregates.iter().enumerate() {
            let value = match &spec.arg {
                Some(arg) => eval(arg, &env)?,
                None => Value::Integer(1),
            };
            groups[slot].1[position].push(value);
        }
    }
    groups
        .into_iter()
        .map(|(keys, inputs)| {
            let values = group
                .aggregates
                .iter()
                .zip(inputs)
                .map(|(spec, values): (&AggSpec, Vec<Value>)| {
                    functions::aggregate(spec.function, spec.arg_type, values, spec.distinct)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((keys, values))
        })
        .collect()
}

/// The FROM clause: comma-separated items are cross joined.
pub(crate) fn from(cx: &Context<'_>, from: &[TableWithJoins]) -> Result<Relation, ErrorProto> {
    let mut result: Option<Relation> = None;
    for item in from {
        let mut relation = factor(cx, &item.relation)?;
        for join in &item.joins {
            if join.global {
                return Err(unsupported("GLOBAL JOIN"));
            }
            let right = factor(cx, &join.relation)?;
            relation = joined(cx, &relation, &right, &join.join_operator)?;
        }
        result = Some(match result {
            None => relation,
            Some(left) => joined(cx, &left, &relation, &JoinOperator::CrossJoin(JoinConstraint::None))?,
        });
    }
    Ok(result.unwrap_or(Relation { columns: Vec::new(), rows: vec![Vec::new()] }))
}

/// One FROM item: a table, a WITH table, a subquery.
pub(crate) fn factor(cx: &Context<'_>, factor: &TableFactor) -> Result<Relation, ErrorProto> {
    match factor {
        TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version,
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_directives,
            inheritance,
        } => {
            if args.is_some()
                || !with_hints.is_empty()
                || version.is_some()
                || *with_ordinality
                || !partitions.is_empty()
                || json_path.is_some()
                || sample.is_some()
                || !index_directives.is_empty()
                || inheritance.is_some()
            {
                return Err(unsupported(format!(
                    "Table functions, FOR SYSTEM_TIME AS OF, TABLESAMPLE and hints (on {name})"
                )));
            }
            let qualifier = alias_name(alias.as_ref())?;
            let parts = name_parts(name);
            let mut relation = table_relation(cx, &parts)?;
            let qualifier = qualifier.unwrap_or_else(|| parts.last().cloned().unwrap_or_default());
            for column in &mut relation.columns {
                column.qualifier = Some(qualifier.clone());
            }
            Ok(relation)
        }
        TableFactor::Derived { lateral: false, subquery, alias, .. } => {
            let mut relation = query_relation(cx, subquery)?;
            let qualifier = alias_name(alias.as_ref())?;
            for column in &mut relation.columns {
                column.qualifier.clone_from(&qualifier);
            }
            Ok(relation)
        }
        TableFactor::NestedJoin { table_with_joins, alias: None } => {
            from(cx, std::slice::from_ref(&**table_with_joins))
        }
        TableFactor::UNNEST { .. } => Err(unsupported("UNNEST in FROM")),
        other => Err(unsupported(format!("The FROM item `{other}`"))),
    }
}

fn alias_name(alias: Option<&ast::TableAlias>) -> Result<Option<String>, ErrorProto> {
    match alias {
        None => Ok(None),
        Some(alias) if alias.columns.is_empty() => Ok(Some(alias.name.value.clone())),
        Some(_) => Err(unsupported("Column lists in table aliases")),
    }
}

/// `project.dataset.table` in any quoting: backticks around the whole path or around each part.
pub(crate) fn name_parts(name: &ast::ObjectName) -> Vec<String> {
    name.0
        .iter()
        .flat_map(|part| {
            let text = match part {
                ast::ObjectNamePart::Identifier(ident) => ident.value.clone(),
                other => other.to_string(),
            };
            text.split('.').map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

/// A stored table's project, dataset and id from a name's parts.
pub(crate) fn table_address(cx: &Context<'_>, parts: &[String]) -> Result<(String, String, String), ErrorProto> {
    let request = cx.request;
    let (project, dataset, table) = match parts {
        [table] => match &request.default_dataset {
            Some((project, dataset)) => (project.clone(), dataset.clone(), table.clone()),
            None => {
                return Err(invalid_query(format!(
                    "Table \"{table}\" must be qualified with a dataset (e.g. dataset.table)."
                )));
            }
        },
        [dataset, table] => (request.project.to_owned(), dataset.clone(), table.clone()),
        [project, dataset, table] => (project.clone(), dataset.clone(), table.clone()),
        _ => return Err(invalid_query(format!("Invalid table name: {}", parts.join(".")))),
    };
    if table.contains('$') || table.contains('@') {
        return Err(invalid_query(format!(
            "Invalid table name: {}: table decorators are not allowed in Standard SQL queries; filter on the \
             partitioning column instead",
            parts.join(".")
        )));
    }
    Ok((project, dataset, table))
}

pub(crate) fn not_found(cx: &Context<'_>, project: &str, dataset: &str, table: &str) -> ErrorProto {
    if cx.catalog.has_dataset(project, dataset) {
        ErrorProto::new(
            "notFound",
            format!("Not found: Table {project}:{dataset}.{table} was not found in location US"),
        )
    } else {
        ErrorProto::new("notFound", format!("Not found: Dataset {project}:{dataset} was not found in location US"))
    }
}

fn table_relation(cx: &Context<'_>, parts: &[String]) -> Result<Relation, ErrorProto> {
    if let [single] = parts
        && let Some((_, relation)) = cx.ctes.borrow().iter().rev().find(|(name, _)| name.eq_ignore_ascii_case(single))
    {
        return Ok(relation.clone());
    }
    if let Some(view) = info_schema::view(cx, parts)? {
        return Ok(view);
    }
    let (project, dataset, table) = table_address(cx, parts)?;
    let view = cx.catalog.table(&project, &dataset, &table).ok_or_else(|| not_found(cx, &project, &dataset, &table))?;
    Ok(stored(&view))
}

/// A stored table as a relation, with `_PARTITIONTIME` and `_PARTITIONDATE` for ingestion-time partitioning.
pub(crate) fn stored(view: &TableView<'_>) -> Relation {
    let mut columns: Vec<Column> =
        view.fields.iter().map(|field| Column { qualifier: None, field: field.clone(), hidden: false }).collect();
    let ingestion = matches!(view.partitioning, Some((_, None)));
    if ingestion {
        columns.push(Column {
            qualifier: None,
            field: Field::new("_PARTITIONTIME", FieldType::Timestamp, Mode::Nullable),
            hidden: true,
        });
        columns.push(Column {
            qualifier: None,
            field: Field::new("_PARTITIONDATE", FieldType::Date, Mode::Nullable),
            hidden: true,
        });
    }
    let rows = view
        .rows
        .iter()
        .map(|(partition, values)| {
            let mut row: Vec<Value> = view
                .fields
                .iter()
                .enumerate()
                .map(|(index, field)| values.get(index).map_or(Value::Null, |value| normalise(value, field)))
                .collect();
            if ingestion {
                let date = partition
                    .and_then(|id| chrono::NaiveDate::parse_from_str(id.get(..8).unwrap_or(id), "%Y%m%d").ok());
                row.push(
                    date.and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map_or(Value::Null, |at| Value::Timestamp(at.and_utc().timestamp_micros())),
                );
                row.push(date.map_or(Value::Null, Value::Date));
            }
            row
        })
        .collect();
    Relation { columns, rows }
}

/// The columns each side of an equality reads, for hash joins.
fn refs(ex: &Ex, out: &mut Vec<usize>) {
    match ex {
        Ex::Col(index) => out.push(*index),
        Ex::Field(inner, _)
        | Ex::Not(inner)
        | Ex::Neg(inner, _)
        | Ex::IsNull(inner, _)
        | Ex::Truth(inner, ..)
        | Ex::Cast(inner, ..) => refs(inner, out),
        Ex::And(a, b) | Ex::Or(a, b) | Ex::Cmp(_, a, b, _) | Ex::Arith(_, a, b, _) | Ex::Like(a, b, _) => {
            refs(a, out);
            refs(b, out);
        }
        Ex::Concat(items) | Ex::Call(_, items) => items.iter().for_each(|item| refs(item, out)),
        Ex::In(value, items, ..) => {
            refs(value, out);
            items.iter().for_each(|item| refs(item, out));
        }
        Ex::Case(operand, whens, otherwise, _) => {
            if let Some(operand) = operand {
                refs(operand, out);
            }
            for (when, then) in whens {
                refs(when, out);
                refs(then, out);
            }
            if let Some(otherwise) = otherwise {
                refs(otherwise, out);
            }
        }
        // Aggregates, keys and outputs never appear in a join condition; treat them as reading everything.
        Ex::Agg(_) | Ex::Key(_) | Ex::Out(_) => out.push(usize::MAX),
        Ex::Lit(_) => {}
    }
}

/// Equalities `left_expr = right_expr` among the top-level ANDs of a join condition, each side reading only one
/// side of the join (columns below `split` are the left's).
pub(crate) fn equi_keys(condition: &Ex, split: usize) -> (Vec<Ex>, Vec<Ex>) {
    fn conjuncts<'e>(ex: &'e Ex, out: &mut Vec<&'e Ex>) {
        if let Ex::And(a, b) = ex {
            conjuncts(a, out);
            conjuncts(b, out);
        } else {
            out.push(ex);
        }
    }
    let mut all = Vec::new();
    conjuncts(condition, &mut all);
    let (mut lefts, mut rights) = (Vec::new(), Vec::new());
    for ex in all {
        let Ex::Cmp(CmpOp::Eq, a, b, _) = ex else { continue };
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        refs(a, &mut ra);
        refs(b, &mut rb);
        let only = |columns: &[usize], left: bool| {
            !columns.is_empty() && columns.iter().all(|&c| c != usize::MAX && (c < split) == left)
        };
        if only(&ra, true) && only(&rb, false) {
            lefts.push((**a).clone());
            rights.push(shift(b, split));
        } else if only(&rb, true) && only(&ra, false) {
            lefts.push((**b).clone());
            rights.push(shift(a, split));
        }
    }
    (lefts, rights)
}

/// An expression over the combined row rewritten to read the right side's row alone.
fn shift(ex: &Ex, split: usize) -> Ex {
    let boxed = |inner: &Ex| Box::new(shift(inner, split));
    match ex {
        Ex::Col(index) => Ex::Col(index - split),
        Ex::Field(inner, position) => Ex::Field(boxed(inner), *position),
        Ex::Not(inner) => Ex::Not(boxed(inner)),
        Ex::Neg(inner, ty) => Ex::Neg(boxed(inner), *ty),
        Ex::IsNull(inner, negated) => Ex::IsNull(boxed(inner), *negated),
        Ex::Truth(inner, value, negated) => Ex::Truth(boxed(inner), *value, *negated),
        Ex::Cast(inner, from, to, safe) => Ex::Cast(boxed(inner), *from, *to, *safe),
        Ex::And(a, b) => Ex::And(boxed(a), boxed(b)),
        Ex::Or(a, b) => Ex::Or(boxed(a), boxed(b)),
        Ex::Cmp(op, a, b, ty) => Ex::Cmp(*op, boxed(a), boxed(b), *ty),
        Ex::Arith(op, a, b, ty) => Ex::Arith(*op, boxed(a), boxed(b), *ty),
        Ex::Like(a, b, negated) => Ex::Like(boxed(a), boxed(b), *negated),
        Ex::Concat(items) => Ex::Concat(items.iter().map(|item| shift(item, split)).collect()),
        Ex::Call(function, items) => Ex::Call(function.clone(), items.iter().map(|item| shift(item, split)).collect()),
        Ex::In(value, items, ty, negated) => {
            Ex::In(boxed(value), items.iter().map(|item| shift(item, split)).collect(), *ty, *negated)
        }
        Ex::Case(operand, whens, otherwise, ty) => Ex::Case(
            operand.as_ref().map(|operand| boxed(operand)),
            whens.iter().map(|(when, then)| (shift(when, split), shift(then, split))).collect(),
            otherwise.as_ref().map(|otherwise| boxed(otherwise)),
            *ty,
        ),
        other => other.clone(),
    }
}

/// For each left row, the right rows whose equi-keys match (all right rows when there are no keys).
pub(crate) fn candidates(
    left: &[Vec<Value>],
    right: &[Vec<Value>],
    keys: &(Vec<Ex>, Vec<Ex>),
) -> Result<Vec<Vec<usize>>, ErrorProto> {
    let (left_keys, right_keys) = keys;
    if left_keys.is_empty() {
        return Ok(vec![(0..right.len()).collect(); left.len()]);
    }
    let hash = |row: &[Value], exprs: &[Ex]| -> Result<Option<Vec<String>>, ErrorProto> {
        let env = Env::row(row);
        let mut parts = Vec::with_capacity(exprs.len());
        for ex in exprs {
            let value = eval(ex, &env)?;
            if value == Value::Null {
                return Ok(None);
            }
            parts.push(key(&value));
        }
        Ok(Some(parts))
    };
    let mut table: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
    for (index, row) in right.iter().enumerate() {
        if let Some(hashed) = hash(row, right_keys)? {
            table.entry(hashed).or_default().push(index);
        }
    }
    left.iter()
        .map(|row| Ok(hash(row, left_keys)?.and_then(|hashed| table.get(&hashed).cloned()).unwrap_or_default()))
        .collect()
}

fn joined(
    cx: &Context<'_>,
    left: &Relation,
    right: &Relation,
    operator: &JoinOperator,
) -> Result<Relation, ErrorProto> {
    let (constraint, keep_left, keep_right) = match operator {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => (c, false, false),
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (c, true, false),
        JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (c, false, true),
        JoinOperator::FullOuter(c) => (c, true, true),
        JoinOperator::CrossJoin(c) => (c, false, false),
        other => return Err(unsupported(format!("The join `{other:?}`").chars().take(80).collect::<String>())),
    };
    let split = left.columns.len();
    let mut columns = left.columns.clone();
    columns.extend(right.columns.iter().cloned());
    let condition = match constraint {
        JoinConstraint::On(expr) => {
            let mut compiler = Compiler::new(cx, &columns);
            compiler.no_aggregates = Some("JOIN ON clause");
            Some(compiler.condition(expr, "JOIN ON")?)
        }
        JoinConstraint::Using(names) => {
            let mut condition: Option<Ex> = None;
            for name in names {
                let name = name.to_string();
                let find = |cols: &[Column]| cols.iter().position(|c| c.field.name.eq_ignore_ascii_case(&name));
                let (Some(l), Some(r)) = (find(&left.columns), find(&right.columns)) else {
                    return Err(invalid_query(format!(
                        "Column {name} in USING clause not found on both sides of join"
                    )));
                };
                let ty = left.columns[l].field.field_type;
                let equal = Ex::Cmp(CmpOp::Eq, Box::new(Ex::Col(l)), Box::new(Ex::Col(split + r)), ty);
                condition = Some(match condition {
                    None => equal,
                    Some(previous) => Ex::And(Box::new(previous), Box::new(equal)),
                });
                // The right side's copy is reachable only by its qualifier.
                columns[split + r].hidden = true;
            }
            condition
        }
        JoinConstraint::None => None,
        JoinConstraint::Natural | JoinConstraint::UsingAlias(..) => return Err(unsupported("NATURAL JOIN")),
    };
    let keys = condition.as_ref().map_or_else(|| (Vec::new(), Vec::new()), |c| equi_keys(c, split));
    let matches = candidates(&left.rows, &right.rows, &keys)?;
    let mut rows = Vec::new();
    let mut right_used = vec![false; right.rows.len()];
    for (left_row, candidates) in left.rows.iter().zip(matches) {
        let mut any = false;
        for index in candidates {
            let mut row = left_row.clone();
            row.extend(right.rows[index].iter().cloned());
            let hit = match &condition {
                Some(condition) => eval(condition, &Env::row(&row))? == Value::Boolean(true),
                None => true,
            };
            if hit {
                any = true;
                right_used[index] = true;
                rows.push(row);
            }
        }
        if !any && keep_left {
            let mut row = left_row.clone();
            row.extend(std::iter::repeat_n(Value::Null, right.columns.len()));
            rows.push(row);
        }
    }
    if keep_right {
        for (index, used) in right_used.iter().enumerate() {
            if !used {
                let mut row = vec![Value::Null; split];
                row.extend(right.rows[index].iter().cloned());
                rows.push(row);
            }
        }
    }
    Ok(Relation { columns, rows })
}
