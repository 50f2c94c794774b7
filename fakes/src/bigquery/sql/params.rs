//! Query parameters: `queryParameters` as the clients send them (named `@day` or positional `?`, scalars and
//! arrays of scalars), parsed against their declared types, and where each `?` sits in the statement.

use serde_json::{Map, Value as Json};
use sqlparser::dialect::BigQueryDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::super::errors::ApiError;
use super::super::schema::{Field, FieldType, Mode};
use super::super::values::parse_row;
use super::super::wire::Obj;
use super::Parameter;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new("invalidQuery", message)
}

/// The parameters of a query configuration (`configuration.query` or a `jobs.query` body).
pub(crate) fn parse_parameters(config: Obj<'_>) -> Result<Vec<Parameter>, ApiError> {
    let mut parameters = Vec::new();
    for (index, raw) in config.array("queryParameters")?.iter().enumerate() {
        let parameter = Obj::new(raw, "queryParameters");
        let name = parameter.str("name")?.map(str::to_owned);
        let shown = name.clone().unwrap_or_else(|| format!("#{}", index + 1));
        let kind = parameter
            .obj("parameterType")
            .ok_or_else(|| bad(format!("Query parameter {shown} has no parameterType")))?;
        let type_name = kind.str("type")?.unwrap_or_default().to_ascii_uppercase();
        let (field_type, mode) = if type_name == "ARRAY" {
            let element = kind
                .obj("arrayType")
                .and_then(|element| element.str("type").ok().flatten())
                .ok_or_else(|| bad(format!("Array query parameter {shown} has no arrayType")))?;
            (scalar_type(element, &shown)?, Mode::Repeated)
        } else {
            (scalar_type(&type_name, &shown)?, Mode::Nullable)
        };
        let field = Field::new(name.as_deref().unwrap_or("parameter"), field_type, mode);
        let value = parameter.obj("parameterValue");
        let json = match (value, mode) {
            (None, _) => Json::Null,
            (Some(value), Mode::Repeated) => Json::Array(
                value
                    .array("arrayValues")?
                    .iter()
                    .map(|item| item.get("value").cloned().unwrap_or(Json::Null))
                    .collect(),
            ),
            (Some(value), _) => value.get("value").cloned().unwrap_or(Json::Null),
        };
        let mut object = Map::new();
        object.insert(field.name.clone(), json);
        let values = parse_row(&object, std::slice::from_ref(&field), false)
            .map_err(|err| bad(format!("Invalid value for query parameter {shown}: {}", err.message)))?;
        parameters.push(Parameter { name, field, value: values.into_iter().next().unwrap_or(super::Value::Null) });
    }
    Ok(parameters)
}

fn scalar_type(name: &str, shown: &str) -> Result<FieldType, ApiError> {
    match FieldType::parse(name) {
        Some(FieldType::Record) => {
            Err(bad(format!("STRUCT query parameters are not supported by the fake BigQuery (parameter {shown})")))
        }
        Some(ty) => Ok(ty),
        None => Err(bad(format!("Invalid query parameter type {name} for parameter {shown}"))),
    }
}

/// `(line, column)` of each `?` in the statement, in order: positional parameters bind by position.
pub(crate) fn positional_spans(sql: &str) -> Vec<(u64, u64)> {
    let dialect = BigQueryDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return Vec::new();
    };
    tokens
        .iter()
        .filter(|token| matches!(&token.token, Token::Placeholder(text) if text == "?"))
        .map(|token| (token.span.start.line, token.span.start.column))
        .collect()
}
