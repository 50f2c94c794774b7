//! What the harness hands a pipeline: the pipeline's environment contract (`pipeline::env`) filled with the
//! addresses of the fakes and the database, and, for a command run as a subprocess, the variables the
//! vendors' official clients read on top of it.
//!
//! Every place that gives a pipeline its environment (`World`, `harness exec`, `harness run
//! --pipeline-cmd`, `harness mocks serve`) builds it here, so they cannot differ.

use std::path::Path;

use fakes::bigquery::FakeBigQuery;
use fakes::tardis::MockTardis;
use pipeline::Selection;
use pipeline::env::{Environment, Var};

/// The BigQuery project and dataset the fakes use.
pub const PROJECT: &str = "harness-project";
pub const DATASET: &str = "market_data";
pub const LOCATION: &str = "US";
/// The access token the fake BigQuery is given (it accepts any).
pub const BIGQUERY_TOKEN: &str = "harness-token";

/// Removed from a command's environment: real credentials have no business in a run against fakes, and a
/// table suffix would send the rows to a table the harness does not score.
pub const REMOVED_VARIABLES: [Var; 2] = [Var::GoogleApplicationCredentials, Var::BigqueryTableSuffix];

/// The addresses a pipeline is given instead of the fakes' own when a fault scenario puts its network
/// fronts before them (`http://127.0.0.1:PORT` each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub tardis: String,
    pub bigquery: String,
}

/// Where a run's fakes, database and scratch space are.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints<'a> {
    pub tardis: &'a MockTardis,
    pub bigquery: &'a FakeBigQuery,
    /// The fronts the pipeline talks to instead, if any.
    pub via: Option<&'a Via>,
    /// `None` when there is no database (`harness mocks serve`).
    pub database_url: Option<&'a str>,
    /// `None` when the pairs are unknown (a replay directory without trades files).
    pub symbols: Option<&'a Selection>,
    /// The pipeline's data directory, a scratch directory of the run.
    pub data_dir: Option<&'a Path>,
}

/// The pipeline's environment contract pointing at `endpoints`.
pub fn environment(endpoints: Endpoints<'_>) -> Environment {
    let (tardis, bigquery) = match endpoints.via {
        Some(via) => (format!("{}/v1", via.tardis), via.bigquery.clone()),
        None => (endpoints.tardis.datasets_url(), endpoints.bigquery.uri()),
    };
    let mut env = Environment::default()
        .with(Var::TardisDatasetsUrl, tardis.clone())
        .with(Var::TardisApiUrl, tardis)
        .with(Var::TardisApiKey, endpoints.tardis.api_key())
        .with(Var::BigqueryApiUrl, bigquery)
        .with(Var::BigqueryProject, PROJECT)
        .with(Var::BigqueryDataset, DATASET)
        .with(Var::BigqueryLocation, LOCATION)
        .with(Var::BigqueryAccessToken, BIGQUERY_TOKEN);
    if let Some(url) = endpoints.database_url {
        env.set(Var::DatabaseUrl, url);
    }
    if let Some(symbols) = endpoints.symbols {
        env.set(Var::PipelineSymbols, symbols.to_string());
    }
    if let Some(dir) = endpoints.data_dir {
        env.set(Var::PipelineDataDir, dir.display().to_string());
    }
    env
}

/// A command's environment: `env`, plus `BIGQUERY_EMULATOR_HOST` and `GOOGLE_CLOUD_PROJECT` (what Google's
/// libraries read), and loopback exempted from any proxy. [`REMOVED_VARIABLES`] are to be removed on top.
pub fn command_vars(env: &Environment) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = env.vars().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    if let Some(url) = env.get(Var::BigqueryApiUrl) {
        vars.push(("BIGQUERY_EMULATOR_HOST".to_owned(), url.to_owned()));
    }
    if let Some(project) = env.get(Var::BigqueryProject) {
        vars.push(("GOOGLE_CLOUD_PROJECT".to_owned(), project.to_owned()));
    }
    for name in ["NO_PROXY", "no_proxy"] {
        let current = std::env::var(name).unwrap_or_default();
        let value = if current.is_empty() {
            "127.0.0.1,localhost".to_owned()
        } else {
            format!("{current},127.0.0.1,localhost")
        };
        vars.push((name.to_owned(), value));
    }
    vars
}

/// The command's environment as printed: one `  NAME=value` line each, secrets of the contract hidden.
pub fn describe(env: &Environment, vars: &[(String, String)]) -> String {
    let mut out: String = env.describe().lines().map(|line| format!("  {line}\n")).collect();
    for (name, value) in vars.iter().filter(|(name, _)| Var::named(name).is_none()) {
        out.push_str(&format!("  {name}={value}\n"));
    }
    out.push_str(&format!("  (unset: {})\n", REMOVED_VARIABLES.map(Var::name).join(" ")));
    out
}

/// `env` as `export` lines for a shell, each value quoted when a shell would split or expand it
/// (`PIPELINE_SYMBOLS` separates exchanges with `;`).
pub fn exports(vars: &[(String, String)]) -> String {
    vars.iter().map(|(k, v)| format!("export {k}={}\n", shell_word(v))).collect()
}

/// `value` as one shell word: as it is when every character is plain, else in single quotes.
fn shell_word(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,:/@%+=".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_lines_quote_what_a_shell_would_split() {
        let vars = [
            ("TARDIS_API_URL", "http://127.0.0.1:9/v1"),
            ("PIPELINE_SYMBOLS", "bitmex:XBTUSD;deribit:BTC-PERPETUAL"),
            ("BIGQUERY_DATASET", "it's"),
            ("BIGQUERY_TABLE_SUFFIX", ""),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            exports(&vars),
            "export TARDIS_API_URL=http://127.0.0.1:9/v1\n\
             export PIPELINE_SYMBOLS='bitmex:XBTUSD;deribit:BTC-PERPETUAL'\n\
             export BIGQUERY_DATASET='it'\\''s'\n\
             export BIGQUERY_TABLE_SUFFIX=''\n"
        );
    }
}
