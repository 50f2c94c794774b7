//! What a statement runs against: the catalog, the request with its parameters, the WITH tables in scope, and
//! the relations (named, typed columns and rows) every clause passes on.

use std::cell::RefCell;

use sqlparser::ast;
use sqlparser::tokenizer::Span;

use super::super::errors::ErrorProto;
use super::super::schema::Field;
use super::super::values::Value;
use super::eval::Ex;
use super::typing::{Typed, at};
use super::{Catalog, Request, invalid_query};
/// What a statement runs against: the catalog, the request, and the WITH tables in scope.
/// Runs a subquery: `select.rs`'s, handed in so that expressions can hold subqueries without importing it.
pub(crate) type Subquery = for<'c> fn(&Context<'c>, &ast::Query) -> Result<Relation, ErrorProto>;

pub(crate) struct Context<'a> {
    pub catalog: &'a dyn Catalog,
    pub request: &'a Request<'a>,
    pub ctes: RefCell<Vec<(String, Relation)>>,
    /// Where each positional `?` parameter sits, in order.
    pub positional: Vec<(u64, u64)>,
    pub subquery: Subquery,
}

impl<'a> Context<'a> {
    pub fn new(catalog: &'a dyn Catalog, request: &'a Request<'a>, subquery: Subquery) -> Self {
        let positional = super::params::positional_spans(request.sql);
        Self { catalog, request, ctes: RefCell::new(Vec::new()), positional, subquery }
    }

    /// The value of `@name` or of a `?` at `span`.
    pub fn parameter(&self, placeholder: &str, span: Span) -> Result<Typed, ErrorProto> {
        let parameters = &self.request.parameters;
        let found = if placeholder == "?" {
            let position = self
                .positional
                .iter()
                .position(|&(line, column)| line == span.start.line && column == span.start.column);
            position.and_then(|position| parameters.iter().filter(|p| p.name.is_none()).nth(position))
        } else {
            let name = placeholder.trim_start_matches('@');
            parameters.iter().find(|p| p.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        };
        let parameter = found.ok_or_else(|| {
            let name = placeholder.trim_start_matches('@');
            invalid_query(format!("Query parameter '{name}' not found{}", at(span)))
        })?;
        let mut typed = Typed::new(Ex::Lit(parameter.value.clone()), parameter.field.field_type);
        typed.mode = parameter.field.mode;
        typed.coercible = true;
        Ok(typed)
    }
}

/// A column of a relation: the alias it can be qualified with, and its field (name, type, mode, sub-fields).
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub qualifier: Option<String>,
    pub field: Field,
    /// Pseudo-columns such as `_PARTITIONTIME`: addressable by name, not part of `*`.
    pub hidden: bool,
}

/// Rows with named, typed columns: a table, a join, a subquery's result.
#[derive(Debug, Clone, Default)]
pub(crate) struct Relation {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}
