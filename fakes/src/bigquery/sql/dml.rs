//! DML: INSERT (VALUES or a query), UPDATE (with an optional FROM), DELETE, MERGE (MATCHED, NOT MATCHED [BY
//! TARGET], NOT MATCHED BY SOURCE) and TRUNCATE TABLE, with BigQuery's rules: UPDATE and DELETE need a WHERE, a
//! target row may match at most one source row, values must be assignable to their column's type, REQUIRED
//! columns stay non-NULL, and rows still in the streaming buffer cannot be changed.

use sqlparser::ast::{
    self, Assignment, AssignmentTarget, Expr, FromTable, MergeAction, MergeClauseKind, MergeInsertKind,
    MergeUpdateKind, ObjectName, SetExpr, TableFactor, TableObject, UpdateTableFromKind,
};

use super::super::errors::ErrorProto;
use super::super::schema::{Field, Mode};
use super::super::values::Value;
use super::context::{Column, Context, Relation};
use super::eval::{Env, Ex, eval};
use super::ops::{cast_value, type_name};
use super::plan::Compiler;
use super::select::{self, candidates, equi_keys, name_parts, not_found, table_address};
use super::typing::{Typed, coerce, supertype};
use super::{MutatedRow, Mutation, invalid_query, unsupported};

/// The table a DML statement changes, read as a relation qualified by its alias (or its name).
struct Target {
    project: String,
    dataset: String,
    table: String,
    fields: Vec<Field>,
    relation: Relation,
    partitions: Vec<Option<String>>,
    streaming: bool,
}

impl Target {
    fn open(cx: &Context<'_>, name: &ObjectName, alias: Option<&str>) -> Result<Self, ErrorProto> {
        let parts = name_parts(name);
        let (project, dataset, table) = table_address(cx, &parts)?;
        let view =
            cx.catalog.table(&project, &dataset, &table).ok_or_else(|| not_found(cx, &project, &dataset, &table))?;
        let mut relation = select::stored(&view);
        let qualifier = alias.map_or_else(|| table.clone(), str::to_owned);
        for column in &mut relation.columns {
            column.qualifier = Some(qualifier.clone());
        }
        Ok(Self {
            fields: view.fields.to_vec(),
            partitions: view.rows.iter().map(|(partition, _)| partition.map(str::to_owned)).collect(),
            streaming: view.streaming,
            relation,
            project,
            dataset,
            table,
        })
    }

    /// UPDATE, DELETE and MERGE may not touch a table with rows in the streaming buffer.
    fn check_streaming(&self, statement: &str) -> Result<(), ErrorProto> {
        if self.streaming {
            return Err(invalid_query(format!(
                "{statement} statement over table {}.{}.{} would affect rows in the streaming buffer, which is not \
                 supported",
                self.project, self.dataset, self.table
            )));
        }
        Ok(())
    }

    fn column(&self, name: &ObjectName) -> Result<usize, ErrorProto> {
        let parts = name_parts(name);
        let column = parts.last().cloned().unwrap_or_default();
        self.fields
            .iter()
            .position(|field| field.name.eq_ignore_ascii_case(&column))
            .ok_or_else(|| invalid_query(format!("Unrecognized name: {column}")))
    }

    /// A stored row's values without the pseudo-columns.
    fn values(&self, row: &[Value]) -> Vec<Value> {
        row[..self.fields.len()].to_vec()
    }

    fn mutation(
        &self,
        rows: Vec<MutatedRow>,
        inserted: u64,
        updated: u64,
        deleted: u64,
    ) -> Result<Mutation, ErrorProto> {
        for row in &rows {
            if row.changed {
                check_required(&self.fields, &row.values)?;
            }
        }
        Ok(Mutation {
            project: self.project.clone(),
            dataset: self.dataset.clone(),
            table: self.table.clone(),
            rows,
            inserted,
            updated,
            deleted,
        })
    }
}

fn check_required(fields: &[Field], values: &[Value]) -> Result<(), ErrorProto> {
    for (field, value) in fields.iter().zip(values) {
        if field.mode == Mode::Required && *value == Value::Null {
            return Err(invalid_query(format!("Required field {} cannot be null", field.name)));
        }
    }
    Ok(())
}

fn single_table(from: &[ast::TableWithJoins], statement: &str) -> Result<(ObjectName, Option<String>), ErrorProto> {
    match from {
        [item] if item.joins.is_empty() => table_factor(&item.relation, statement),
        _ => Err(unsupported(format!("{statement} of more than one table"))),
    }
}

fn table_factor(factor: &TableFactor, statement: &str) -> Result<(ObjectName, Option<String>), ErrorProto> {
    match factor {
        TableFactor::Table { name, alias, args: None, .. } => {
            if alias.as_ref().is_some_and(|alias| !alias.columns.is_empty()) {
                return Err(unsupported("Column lists in table aliases"));
            }
            Ok((name.clone(), alias.as_ref().map(|alias| alias.name.value.clone())))
        }
        other => Err(unsupported(format!("{statement} of `{other}`"))),
    }
}

/// Compiles `value` for assignment to `field`: it must be of the column's type or coercible to it.
fn assignable(typed: Typed, field: &Field, expr: &Expr) -> Result<Ex, ErrorProto> {
    let column = Typed::new(Ex::Lit(Value::Null), field.field_type);
    if typed.ty != field.field_type && supertype(&typed, &column) != Some(field.field_type) {
        return Err(invalid_query(format!(
            "Value of type {} cannot be assigned to {}, which has type {}",
            type_name(typed.ty),
            field.name,
            type_name(field.field_type)
        )));
    }
    Ok(coerce(typed, field.field_type, expr)?.ex)
}

fn assignments(
    compiler: &mut Compiler<'_>,
    target: &Target,
    list: &[Assignment],
) -> Result<Vec<(usize, Ex)>, ErrorProto> {
    let mut compiled = Vec::new();
    for assignment in list {
        let AssignmentTarget::ColumnName(name) = &assignment.target else {
            return Err(unsupported("Assigning to a tuple of columns"));
        };
        let index = target.column(name)?;
        if compiled.iter().any(|(existing, _)| *existing == index) {
            return Err(invalid_query(format!("Update item {} overlaps with another item", target.fields[index].name)));
        }
        let typed = compiler.compile(&assignment.value)?;
        compiled.push((index, assignable(typed, &target.fields[index], &assignment.value)?));
    }
    Ok(compiled)
}

fn apply(row: &[Value], fields: usize, sets: &[(usize, Ex)], env: &Env<'_>) -> Result<Vec<Value>, ErrorProto> {
    let mut values = row[..fields].to_vec();
    for (index, ex) in sets {
        values[*index] = eval(ex, env)?;
    }
    Ok(values)
}

pub(crate) fn delete(cx: &Context<'_>, delete: &ast::Delete) -> Result<Mutation, ErrorProto> {
    if !delete.tables.is_empty()
        || delete.using.is_some()
        || delete.returning.is_some()
        || delete.output.is_some()
        || !delete.order_by.is_empty()
        || delete.limit.is_some()
    {
        return Err(unsupported("DELETE with USING, RETURNING, ORDER BY or LIMIT"));
    }
    let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
    let (name, alias) = single_table(from, "DELETE")?;
    let target = Target::open(cx, &name, alias.as_deref())?;
    target.check_streaming("UPDATE or DELETE")?;
    let selection = delete.selection.as_ref().ok_or_else(|| invalid_query("DELETE must have a WHERE clause"))?;
    let mut compiler = Compiler::new(cx, &target.relation.columns);
    compiler.no_aggregates = Some("WHERE clause");
    let condition = compiler.condition(selection, "WHERE")?;
    let mut rows = Vec::new();
    let mut deleted = 0;
    for (row, partition) in target.relation.rows.iter().zip(&target.partitions) {
        if eval(&condition, &Env::row(row))? == Value::Boolean(true) {
            deleted += 1;
        } else {
            rows.push(MutatedRow { values: target.values(row), previous: partition.clone(), changed: false });
        }
    }
    target.mutation(rows, 0, 0, deleted)
}

pub(crate) fn truncate(cx: &Context<'_>, truncate: &ast::Truncate) -> Result<Mutation, ErrorProto> {
    if truncate.partitions.is_some()
        || truncate.identity.is_some()
        || truncate.cascade.is_some()
        || truncate.on_cluster.is_some()
    {
        return Err(unsupported("TRUNCATE options"));
    }
    let [table] = truncate.table_names.as_slice() else {
        return Err(unsupported("TRUNCATE of several tables"));
    };
    let target = Target::open(cx, &table.name, None)?;
    target.check_streaming("TRUNCATE TABLE")?;
    let deleted = target.relation.rows.len() as u64;
    target.mutation(Vec::new(), 0, 0, deleted)
}

fn kept(target: &Target) -> Vec<MutatedRow> {
    target
        .relation
        .rows
        .iter()
        .zip(&target.partitions)
        .map(|(row, partition)| MutatedRow { values: target.values(row), previous: partition.clone(), changed: false })
        .collect()
}

pub(crate) fn update(cx: &Context<'_>, update: &ast::Update) -> Result<Mutation, ErrorProto> {
    if update.on_cluster.is_some()
        || update.returning.is_some()
        || update.output.is_some()
        || update.or.is_some()
        || !update.order_by.is_empty()
        || update.limit.is_some()
    {
        return Err(unsupported("UPDATE with RETURNING, ORDER BY or LIMIT"));
    }
    let (name, alias) = single_table(std::slice::from_ref(&update.table), "UPDATE")?;
    let target = Target::open(cx, &name, alias.as_deref())?;
    target.check_streaming("UPDATE or DELETE")?;
    let selection = update.selection.as_ref().ok_or_else(|| invalid_query("UPDATE must have a WHERE clause"))?;
    let source = match &update.from {
        None => None,
        Some(UpdateTableFromKind::AfterSet(from) | UpdateTableFromKind::BeforeSet(from)) => {
            Some(select::from(cx, from)?)
        }
    };
    let split = target.relation.columns.len();
    let mut columns: Vec<Column> = target.relation.columns.clone();
    if let Some(source) = &source {
        columns.extend(source.columns.iter().cloned());
    }
    let mut compiler = Compiler::new(cx, &columns);
    compiler.no_aggregates = Some("UPDATE");
    let condition = compiler.condition(selection, "WHERE")?;
    let sets = assignments(&mut compiler, &target, &update.assignments)?;
    let mut rows = kept(&target);
    let mut updated = 0;
    match &source {
        None => {
            for (index, row) in target.relation.rows.iter().enumerate() {
                let env = Env::row(row);
                if eval(&condition, &env)? == Value::Boolean(true) {
                    rows[index] = MutatedRow {
                        values: apply(row, target.fields.len(), &sets, &env)?,
                        previous: target.partitions[index].clone(),
                        changed: true,
                    };
                    updated += 1;
                }
            }
        }
        Some(source) => {
            let keys = equi_keys(&condition, split);
            let matches = candidates(&target.relation.rows, &source.rows, &keys)?;
            for (index, (row, candidates)) in target.relation.rows.iter().zip(matches).enumerate() {
                let mut hit: Option<Vec<Value>> = None;
                for candidate in candidates {
                    let mut combined = row.clone();
                    combined.extend(source.rows[candidate].iter().cloned());
                    if eval(&condition, &Env::row(&combined))? == Value::Boolean(true) {
                        if hit.is_some() {
                            return Err(invalid_query(
                                "UPDATE/MERGE must match at most one source row for each target row",
                            ));
                        }
                        hit = Some(combined);
                    }
                }
                if let Some(combined) = hit {
                    rows[index] = MutatedRow {
                        values: apply(&combined, target.fields.len(), &sets, &Env::row(&combined))?,
                        previous: target.partitions[index].clone(),
                        changed: true,
                    };
                    updated += 1;
                }
            }
        }
    }
    target.mutation(rows, 0, updated, 0)
}

/// The target columns an INSERT names, in order (all of them when it names none).
fn insert_columns(target: &Target, names: &[ObjectName]) -> Result<Vec<usize>, ErrorProto> {
    if names.is_empty() {
        return Ok((0..target.fields.len()).collect());
    }
    let mut indices = Vec::new();
    for name in names {
        let index = target.column(name)?;
        if indices.contains(&index) {
            return Err(invalid_query(format!(
                "INSERT has columns with duplicate name: {}",
                target.fields[index].name
            )));
        }
        indices.push(index);
    }
    for (index, field) in target.fields.iter().enumerate() {
        if field.mode == Mode::Required && !indices.contains(&index) {
            return Err(invalid_query(format!("Required column value for column index: {index} is missing")));
        }
    }
    Ok(indices)
}

/// Full target rows from values for the named columns (the rest NULL, REPEATED ones empty).
fn full_row(fields: &[Field], columns: &[usize], values: Vec<Value>) -> Vec<Value> {
    let mut row: Vec<Value> = fields
        .iter()
        .map(|field| if field.mode == Mode::Repeated { Value::Repeated(Vec::new()) } else { Value::Null })
        .collect();
    for (index, value) in columns.iter().zip(values) {
        row[*index] = value;
    }
    row
}

pub(crate) fn insert(cx: &Context<'_>, insert: &ast::Insert) -> Result<Mutation, ErrorProto> {
    if insert.or.is_some()
        || insert.ignore
        || insert.overwrite
        || insert.partitioned.is_some()
        || !insert.after_columns.is_empty()
        || insert.on.is_some()
        || insert.returning.is_some()
        || !insert.assignments.is_empty()
        || insert.table_alias.is_some()
    {
        return Err(unsupported("INSERT with OVERWRITE, ON CONFLICT, RETURNING, SET or an alias"));
    }
    let TableObject::TableName(name) = &insert.table else {
        return Err(unsupported("INSERT INTO a table function"));
    };
    let target = Target::open(cx, name, None)?;
    let columns = insert_columns(&target, &insert.columns)?;
    let source = insert.source.as_ref().ok_or_else(|| invalid_query("INSERT needs VALUES or a query"))?;
    let mut new_rows = Vec::new();
    match source.body.as_ref() {
        SetExpr::Values(values)
            if source.with.is_none() && source.order_by.is_none() && source.limit_clause.is_none() =>
        {
            for row in &values.rows {
                if row.content.len() != columns.len() {
                    return Err(invalid_query(format!(
                        "Inserted row has wrong column count; Has {}, expected {}",
                        row.content.len(),
                        columns.len()
                    )));
                }
                let mut compiler = Compiler::new(cx, &[]);
                let mut values = Vec::new();
                for (expr, index) in row.content.iter().zip(&columns) {
                    let typed = compiler.compile(expr)?;
                    let ex = assignable(typed, &target.fields[*index], expr)?;
                    values.push(eval(&ex, &Env::default())?);
                }
                new_rows.push(full_row(&target.fields, &columns, values));
            }
        }
        _ => {
            let result = select::query_relation(cx, source)?;
            if result.columns.len() != columns.len() {
                return Err(invalid_query(format!(
                    "Inserted row has wrong column count; Has {}, expected {}",
                    result.columns.len(),
                    columns.len()
                )));
            }
            for (position, (column, index)) in result.columns.iter().zip(&columns).enumerate() {
                let field = &target.fields[*index];
                let from = Typed::new(Ex::Lit(Value::Null), column.field.field_type);
                let to = Typed::new(Ex::Lit(Value::Null), field.field_type);
                if column.field.field_type != field.field_type && supertype(&from, &to) != Some(field.field_type) {
                    return Err(invalid_query(format!(
                        "Query column {} has type {} which cannot be inserted into column {}, which has type {}",
                        position + 1,
                        type_name(column.field.field_type),
                        field.name,
                        type_name(field.field_type)
                    )));
                }
            }
            for row in result.rows {
                let mut values = Vec::with_capacity(row.len());
                for ((value, column), index) in row.into_iter().zip(&result.columns).zip(&columns) {
                    values.push(cast_value(&value, column.field.field_type, target.fields[*index].field_type)?);
                }
                new_rows.push(full_row(&target.fields, &columns, values));
            }
        }
    }
    let inserted = new_rows.len() as u64;
    let mut rows = kept(&target);
    rows.extend(new_rows.into_iter().map(|values| MutatedRow { values, previous: None, changed: true }));
    target.mutation(rows, inserted, 0, 0)
}

/// What a MERGE clause does, compiled.
enum Action {
    Update(Vec<(usize, Ex)>),
    Delete,
    Insert(Vec<usize>, Vec<Ex>),
}

struct Clause {
    kind: MergeClauseKind,
    predicate: Option<Ex>,
    action: Action,
}

pub(crate) fn merge(cx: &Context<'_>, merge: &ast::Merge) -> Result<Mutation, ErrorProto> {
    if merge.output.is_some() {
        return Err(unsupported("MERGE ... OUTPUT"));
    }
    let (name, alias) = table_factor(&merge.table, "MERGE")?;
    let target = Target::open(cx, &name, alias.as_deref())?;
    target.check_streaming("UPDATE or DELETE")?;
    let source = select::factor(cx, &merge.source)?;
    let split = target.relation.columns.len();
    let mut columns: Vec<Column> = target.relation.columns.clone();
    columns.extend(source.columns.iter().cloned());
    let mut compiler = Compiler::new(cx, &columns);
    compiler.no_aggregates = Some("MERGE");
    let on = compiler.condition(&merge.on, "ON")?;
    let mut clauses = Vec::new();
    for clause in &merge.clauses {
        let predicate = clause.predicate.as_ref().map(|p| compiler.condition(p, "WHEN")).transpose()?;
        let matched =
            clause.clause_kind == MergeClauseKind::Matched || clause.clause_kind == MergeClauseKind::NotMatchedBySource;
        let action = match (&clause.action, matched) {
            (MergeAction::Update(update), true) => {
                if update.update_predicate.is_some() || update.delete_predicate.is_some() {
                    return Err(unsupported("WHERE and DELETE WHERE in a MERGE UPDATE"));
                }
                let MergeUpdateKind::Set(list) = &update.kind else {
                    return Err(unsupported("UPDATE SET * in MERGE"));
                };
                Action::Update(assignments(&mut compiler, &target, list)?)
            }
            (MergeAction::Delete { .. }, true) => Action::Delete,
            (MergeAction::Insert(insert), false) => {
                if insert.insert_predicate.is_some() {
                    return Err(unsupported("INSERT ... WHERE in MERGE"));
                }
                let indices = insert_columns(&target, &insert.columns)?;
                let exprs = match &insert.kind {
                    MergeInsertKind::Values(values) => {
                        let [row] = values.rows.as_slice() else {
                            return Err(invalid_query("MERGE INSERT takes one row of VALUES"));
                        };
                        if row.content.len() != indices.len() {
                            return Err(invalid_query(format!(
                                "Inserted row has wrong column count; Has {}, expected {}",
                                row.content.len(),
                                indices.len()
                            )));
                        }
                        let mut exprs = Vec::new();
                        for (expr, index) in row.content.iter().zip(&indices) {
                            let typed = compiler.compile(expr)?;
                            exprs.push(assignable(typed, &target.fields[*index], expr)?);
                        }
                        exprs
                    }
                    MergeInsertKind::Row => {
                        // INSERT ROW: the source's columns in order.
                        if source.columns.iter().filter(|c| !c.hidden).count() != target.fields.len() {
                            return Err(invalid_query("INSERT ROW needs a source with as many columns as the target"));
                        }
                        let mut exprs = Vec::new();
                        for (offset, field) in target.fields.iter().enumerate() {
                            let column = &source.columns[offset];
                            let typed = Typed::new(Ex::Col(split + offset), column.field.field_type);
                            exprs.push(assignable(typed, field, &merge.on)?);
                        }
                        exprs
                    }
                    other => {
                        return Err(unsupported(
                            format!("MERGE INSERT {other:?}").chars().take(60).collect::<String>(),
                        ));
                    }
                };
                Action::Insert(indices, exprs)
            }
            (action, _) => {
                return Err(invalid_query(format!(
                    "A WHEN {} clause cannot {}",
                    clause.clause_kind,
                    action_word(action)
                )));
            }
        };
        clauses.push(Clause { kind: clause.clause_kind, predicate, action });
    }
    let keys = equi_keys(&on, split);
    let matches = candidates(&target.relation.rows, &source.rows, &keys)?;
    let null_source = vec![Value::Null; source.columns.len()];
    let mut source_matched = vec![false; source.rows.len()];
    let mut rows = Vec::new();
    let (mut inserted, mut updated, mut deleted) = (0u64, 0u64, 0u64);
    for ((row, partition), candidates) in target.relation.rows.iter().zip(&target.partitions).zip(matches) {
        let mut hits = Vec::new();
        for candidate in candidates {
            let mut combined = row.clone();
            combined.extend(source.rows[candidate].iter().cloned());
            if eval(&on, &Env::row(&combined))? == Value::Boolean(true) {
                source_matched[candidate] = true;
                hits.push(combined);
            }
        }
        let kind = if hits.is_empty() { MergeClauseKind::NotMatchedBySource } else { MergeClauseKind::Matched };
        let combined = hits.first().cloned().unwrap_or_else(|| {
            let mut combined = row.clone();
            combined.extend(null_source.iter().cloned());
            combined
        });
        let env = Env::row(&combined);
        let mut chosen = None;
        for clause in clauses.iter().filter(|clause| clause.kind == kind) {
            if clause.predicate.as_ref().map_or(Ok(true), |p| eval(p, &env).map(|v| v == Value::Boolean(true)))? {
                chosen = Some(clause);
                break;
            }
        }
        if hits.len() > 1 && chosen.is_some() {
            return Err(invalid_query("UPDATE/MERGE must match at most one source row for each target row"));
        }
        match chosen.map(|clause| &clause.action) {
            Some(Action::Update(sets)) => {
                rows.push(MutatedRow {
                    values: apply(&combined, target.fields.len(), sets, &env)?,
                    previous: partition.clone(),
                    changed: true,
                });
                updated += 1;
            }
            Some(Action::Delete) => deleted += 1,
            _ => rows.push(MutatedRow { values: target.values(row), previous: partition.clone(), changed: false }),
        }
    }
    let null_target = vec![Value::Null; split];
    for (index, source_row) in source.rows.iter().enumerate() {
        if source_matched[index] {
            continue;
        }
        let mut combined = null_target.clone();
        combined.extend(source_row.iter().cloned());
        let env = Env::row(&combined);
        for clause in clauses
            .iter()
            .filter(|c| matches!(c.kind, MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget))
        {
            if !clause.predicate.as_ref().map_or(Ok(true), |p| eval(p, &env).map(|v| v == Value::Boolean(true)))? {
                continue;
            }
            if let Action::Insert(indices, exprs) = &clause.action {
                let values = exprs.iter().map(|ex| eval(ex, &env)).collect::<Result<Vec<_>, _>>()?;
                rows.push(MutatedRow {
                    values: full_row(&target.fields, indices, values),
                    previous: None,
                    changed: true,
                });
                inserted += 1;
            }
            break;
        }
    }
    target.mutation(rows, inserted, updated, deleted)
}

fn action_word(action: &MergeAction) -> &'static str {
    match action {
        MergeAction::Insert(_) => "INSERT",
        MergeAction::Update(_) => "UPDATE",
        MergeAction::Delete { .. } => "DELETE",
        MergeAction::DoNothing { .. } => "DO NOTHING",
    }
}
