//! The environment contract: every variable the pipeline reads, in one place. [`crate::Config`] is parsed
//! from an [`Environment`]; the harness builds the same type to hand the pipeline (in process, as a
//! subprocess, or any external pipeline) the addresses of its fakes, so what the pipeline reads and what the
//! harness gives can never name different variables.
//!
//! This module only names and holds values; parsing and defaults are `config.rs`'s.

use std::collections::BTreeMap;
use std::fmt;

/// One variable of the contract (README "Configuration").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Var {
    TardisDatasetsUrl,
    TardisApiUrl,
    TardisApiKey,
    TardisExportWait,
    TardisRateLimit,
    BigqueryApiUrl,
    BigqueryProject,
    BigqueryDataset,
    BigqueryLocation,
    BigqueryTableSuffix,
    BigqueryAccessToken,
    GoogleApplicationCredentials,
    DatabaseUrl,
    PipelineDataDir,
    PipelineSymbols,
    PipelineConcurrency,
    PipelineValidationConfig,
    PipelineScheduleCron,
    PipelineCatchUpDays,
    PipelineLogFormat,
    PipelineControlListen,
    PipelineControlToken,
}

impl Var {
    pub const ALL: [Var; 22] = [
        Var::TardisDatasetsUrl,
        Var::TardisApiUrl,
        Var::TardisApiKey,
        Var::TardisExportWait,
        Var::TardisRateLimit,
        Var::BigqueryApiUrl,
        Var::BigqueryProject,
        Var::BigqueryDataset,
        Var::BigqueryLocation,
        Var::BigqueryTableSuffix,
        Var::BigqueryAccessToken,
        Var::GoogleApplicationCredentials,
        Var::DatabaseUrl,
        Var::PipelineDataDir,
        Var::PipelineSymbols,
        Var::PipelineConcurrency,
        Var::PipelineValidationConfig,
        Var::PipelineScheduleCron,
        Var::PipelineCatchUpDays,
        Var::PipelineLogFormat,
        Var::PipelineControlListen,
        Var::PipelineControlToken,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Var::TardisDatasetsUrl => "TARDIS_DATASETS_URL",
            Var::TardisApiUrl => "TARDIS_API_URL",
            Var::TardisApiKey => "TARDIS_API_KEY",
            Var::TardisExportWait => "TARDIS_EXPORT_WAIT",
            Var::TardisRateLimit => "TARDIS_RATE_LIMIT",
            Var::BigqueryApiUrl => "BIGQUERY_API_URL",
            Var::BigqueryProject => "BIGQUERY_PROJECT",
            Var::BigqueryDataset => "BIGQUERY_DATASET",
            Var::BigqueryLocation => "BIGQUERY_LOCATION",
            Var::BigqueryTableSuffix => "BIGQUERY_TABLE_SUFFIX",
            Var::BigqueryAccessToken => "BIGQUERY_ACCESS_TOKEN",
            Var::GoogleApplicationCredentials => "GOOGLE_APPLICATION_CREDENTIALS",
            Var::DatabaseUrl => "DATABASE_URL",
            Var::PipelineDataDir => "PIPELINE_DATA_DIR",
            Var::PipelineSymbols => "PIPELINE_SYMBOLS",
            Var::PipelineConcurrency => "PIPELINE_CONCURRENCY",
            Var::PipelineValidationConfig => "PIPELINE_VALIDATION_CONFIG",
            Var::PipelineScheduleCron => "PIPELINE_SCHEDULE_CRON",
            Var::PipelineCatchUpDays => "PIPELINE_CATCH_UP_DAYS",
            Var::PipelineLogFormat => "PIPELINE_LOG_FORMAT",
            Var::PipelineControlListen => "PIPELINE_CONTROL_LISTEN",
            Var::PipelineControlToken => "PIPELINE_CONTROL_TOKEN",
        }
    }

    /// The variable called `name`, if it is part of the contract.
    pub fn named(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Credentials: never printed (a database URL is printed with its password hidden).
    pub fn is_secret(self) -> bool {
        matches!(self, Var::TardisApiKey | Var::BigqueryAccessToken | Var::PipelineControlToken)
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Values of the contract's variables. `Debug` and [`Environment::describe`] hide secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment(BTreeMap<Var, String>);

impl Environment {
    /// The contract's variables as this process was given them (unset and empty ones left out).
    pub fn from_process() -> Environment {
        let mut env = Environment::default();
        for var in Var::ALL {
            if let Ok(value) = std::env::var(var.name()) {
                env.set(var, value);
            }
        }
        env
    }

    /// Sets `var`; an empty (or blank) value unsets it, as the pipeline treats both alike.
    pub fn set(&mut self, var: Var, value: impl Into<String>) {
        let value = value.into();
        if value.trim().is_empty() {
            self.0.remove(&var);
        } else {
            self.0.insert(var, value);
        }
    }

    pub fn with(mut self, var: Var, value: impl Into<String>) -> Environment {
        self.set(var, value);
        self
    }

    pub fn get(&self, var: Var) -> Option<&str> {
        self.0.get(&var).map(String::as_str)
    }

    /// The variables that are set, as `(NAME, value)`, in contract order.
    pub fn vars(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(var, value)| (var.name(), value.as_str()))
    }

    /// One `NAME=value` line per variable, secrets shown as `***` and a database password hidden.
    pub fn describe(&self) -> String {
        self.0.iter().map(|(var, value)| format!("{}={}\n", var.name(), shown(*var, value))).collect()
    }
}

/// How a value may be shown.
fn shown(var: Var, value: &str) -> String {
    match var {
        _ if var.is_secret() => "***".to_owned(),
        Var::DatabaseUrl => hide_password(value),
        _ => value.to_owned(),
    }
}

/// A URL with its password (if any) replaced by `***`; an unparsable value is hidden whole.
pub fn hide_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "***".to_owned(),
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(var, value)| (var.name(), shown(*var, value)))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_has_a_distinct_name_that_finds_it_again() {
        for var in Var::ALL {
            assert_eq!(Var::named(var.name()), Some(var));
            assert_eq!(Var::ALL.iter().filter(|v| v.name() == var.name()).count(), 1, "{var}");
        }
        assert_eq!(Var::named("HOME"), None);
    }

    #[test]
    fn secrets_and_database_passwords_never_show() {
        let env = Environment::default()
            .with(Var::TardisApiKey, "tardis-secret")
            .with(Var::BigqueryAccessToken, "token-secret")
            .with(Var::DatabaseUrl, "postgres://user:db-secret@localhost:5432/x")
            .with(Var::BigqueryProject, "p");
        for text in [env.describe(), format!("{env:?}")] {
            assert!(!text.contains("secret"), "{text}");
            assert!(text.contains("postgres://user:***@localhost:5432/x") && text.contains("p"), "{text}");
        }
        assert_eq!(env.get(Var::TardisApiKey), Some("tardis-secret"), "the value itself is kept");
    }

    #[test]
    fn a_blank_value_unsets_the_variable() {
        let env = Environment::default().with(Var::PipelineSymbols, "bitmex:XBTUSD").with(Var::PipelineSymbols, "  ");
        assert_eq!(env.get(Var::PipelineSymbols), None);
        assert_eq!(env.vars().count(), 0);
    }
}
