//! Configuration: endpoints, credentials, what to download, where to keep files, thresholds.
//!
//! Parsed once, here, from an [`Environment`] (the variables of the contract in `env.rs`, README
//! "Configuration"); every default points at the real services. The rest of the pipeline takes `Config`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use market::checks::ValidationConfig;
use market::{Exchange, Symbol};
use url::Url;

use crate::bigquery::{AccessToken, BigQueryAuth, BigQueryConfig};
use crate::env::{Environment, Var};
use crate::retry::RetryPolicy;
use crate::tardis::{ApiKey, TardisConfig};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing { name: &'static str, hint: &'static str },
    #[error("{name}={value:?} is not a valid URL: {reason}")]
    Url { name: &'static str, value: String, reason: String },
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
}

/// The exchanges and symbols to process, e.g. `binance-futures:BTCUSDT,ETHUSDT;bitmex:XBTUSD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(BTreeMap<Exchange, Vec<Symbol>>);

impl Selection {
    /// The default universe: 3 exchanges × 4 liquid perpetuals.
    pub const DEFAULT: &'static str = "binance-futures:BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT;\
bitmex:XBTUSD,ETHUSD,SOLUSD,XRPUSD;\
deribit:BTC-PERPETUAL,ETH-PERPETUAL,SOL_USDC-PERPETUAL,XRP_USDC-PERPETUAL";

    pub fn parse(text: &str) -> Result<Selection, String> {
        let mut map: BTreeMap<Exchange, Vec<Symbol>> = BTreeMap::new();
        for group in text.split([';', '\n']).map(str::trim).filter(|g| !g.is_empty()) {
            let (exchange, symbols) =
                group.split_once(':').ok_or_else(|| format!("{group:?} should look like exchange:SYMBOL1,SYMBOL2"))?;
            let exchange = Exchange::parse(exchange.trim()).map_err(|e| e.to_string())?;
            let entry = map.entry(exchange).or_default();
            for symbol in symbols.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let symbol = Symbol::parse(symbol).map_err(|e| e.to_string())?;
                if !entry.contains(&symbol) {
                    entry.push(symbol);
                }
            }
        }
        if map.values().all(Vec::is_empty) {
            return Err("no exchange:symbol pairs given".to_owned());
        }
        map.retain(|_, symbols| !symbols.is_empty());
        Ok(Selection(map))
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (Exchange, Symbol)>) -> Selection {
        let mut map: BTreeMap<Exchange, Vec<Symbol>> = BTreeMap::new();
        for (exchange, symbol) in pairs {
            let entry = map.entry(exchange).or_default();
            if !entry.contains(&symbol) {
                entry.push(symbol);
            }
        }
        Selection(map)
    }

    pub fn exchanges(&self) -> impl Iterator<Item = (&Exchange, &[Symbol])> {
        self.0.iter().map(|(e, s)| (e, s.as_slice()))
    }

    pub fn pairs(&self) -> Vec<(Exchange, Symbol)> {
        self.0.iter().flat_map(|(e, symbols)| symbols.iter().map(move |s| (e.clone(), s.clone()))).collect()
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self
            .0
            .iter()
            .map(|(e, s)| format!("{e}:{}", s.iter().map(Symbol::as_str).collect::<Vec<_>>().join(",")))
            .collect();
        f.write_str(&groups.join(";"))
    }
}

/// A database URL; `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: &str) -> DatabaseUrl {
        DatabaseUrl(url.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", crate::env::hide_password(&self.0))
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tardis: TardisConfig,
    pub bigquery: BigQueryConfig,
    pub database_url: DatabaseUrl,
    /// Downloaded files live under `{data_dir}/trades/{exchange}/{date}/`.
    pub data_dir: PathBuf,
    pub selection: Selection,
    /// Thresholds and parameters of the validation checks.
    pub validation: ValidationConfig,
}

fn url_var(env: &Environment, var: Var, default: &str) -> Result<Url, ConfigError> {
    let name = var.name();
    let value = env.get(var).unwrap_or(default).to_owned();
    let url =
        Url::parse(value.trim()).map_err(|e| ConfigError::Url { name, value: value.clone(), reason: e.to_string() })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Url { name, value, reason: "only http and https are supported".to_owned() });
    }
    Ok(url)
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_environment(&Environment::from_process())
    }

    /// Reads the contract's variables from `env` (the process environment in production; what the harness
    /// builds for its worlds).
    pub fn from_environment(env: &Environment) -> Result<Config, ConfigError> {
        let nonempty = |var: Var| env.get(var).map(|v| v.trim().to_owned());
        let project = nonempty(Var::BigqueryProject).ok_or(ConfigError::Missing {
            name: Var::BigqueryProject.name(),
            hint: "the Google Cloud project that holds the dataset",
        })?;
        let database_url = nonempty(Var::DatabaseUrl).ok_or(ConfigError::Missing {
            name: Var::DatabaseUrl.name(),
            hint: "a Postgres URL such as postgres://user:pass@localhost:5432/pipeline",
        })?;
        let auth = if let Some(token) = nonempty(Var::BigqueryAccessToken) {
            BigQueryAuth::StaticToken(AccessToken::new(&token))
        } else if let Some(path) = nonempty(Var::GoogleApplicationCredentials) {
            BigQueryAuth::KeyFile(PathBuf::from(path))
        } else {
            BigQueryAuth::ApplicationDefault
        };
        let selection = match nonempty(Var::PipelineSymbols) {
            Some(text) => Selection::parse(&text).map_err(|reason| ConfigError::Invalid {
                name: Var::PipelineSymbols.name(),
                value: text,
                reason,
            })?,
            None => Selection::parse(Selection::DEFAULT).expect("the default selection parses"),
        };
        let concurrency = match nonempty(Var::PipelineConcurrency) {
            Some(text) => {
                text.parse::<usize>().ok().filter(|n| (1..=64).contains(n)).ok_or_else(|| ConfigError::Invalid {
                    name: Var::PipelineConcurrency.name(),
                    value: text,
                    reason: "expected 1 to 64".to_owned(),
                })?
            }
            None => 8,
        };
        let export_wait = match nonempty(Var::TardisExportWait) {
            Some(text) => text.parse::<u64>().map(Duration::from_secs).map_err(|_| ConfigError::Invalid {
                name: Var::TardisExportWait.name(),
                value: text,
                reason: "expected a whole number of seconds".to_owned(),
            })?,
            None => Duration::ZERO,
        };
        let rate_limit = match nonempty(Var::TardisRateLimit) {
            Some(text) => Some(text.parse::<f64>().ok().filter(|r| r.is_finite() && *r > 0.0).ok_or_else(|| {
                ConfigError::Invalid {
                    name: Var::TardisRateLimit.name(),
                    value: text,
                    reason: "expected a positive number of requests per second, such as 5 or 0.5".to_owned(),
                }
            })?),
            None => None,
        };
        let validation = match nonempty(Var::PipelineValidationConfig) {
            Some(path) => {
                let invalid = |reason: String| ConfigError::Invalid {
                    name: Var::PipelineValidationConfig.name(),
                    value: path.clone(),
                    reason,
                };
                let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
                serde_json::from_str::<ValidationConfig>(&text).map_err(|e| invalid(e.to_string()))?
            }
            None => ValidationConfig::default(),
        };
        let dataset = nonempty(Var::BigqueryDataset).unwrap_or_else(|| "market_data".to_owned());
        if let Some(suffix) = nonempty(Var::BigqueryTableSuffix)
            && !suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ConfigError::Invalid {
                name: Var::BigqueryTableSuffix.name(),
                value: suffix,
                reason: "letters, digits and _ only".to_owned(),
            });
        }
        if !dataset.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ConfigError::Invalid {
                name: Var::BigqueryDataset.name(),
                value: dataset,
                reason: "letters, digits and _ only".to_owned(),
            });
        }
        Ok(Config {
            tardis: TardisConfig {
                datasets_url: url_var(env, Var::TardisDatasetsUrl, TardisConfig::DEFAULT_DATASETS_URL)?,
                api_url: url_var(env, Var::TardisApiUrl, TardisConfig::DEFAULT_API_URL)?,
                api_key: nonempty(Var::TardisApiKey).and_then(|k| ApiKey::new(&k)),
                concurrency,
                retry: RetryPolicy::DEFAULT,
                export_wait,
                export_poll: Duration::from_secs(60).min(export_wait.max(Duration::from_secs(1))),
                rate_limit,
            },
            bigquery: BigQueryConfig {
                api_url: url_var(env, Var::BigqueryApiUrl, BigQueryConfig::DEFAULT_API_URL)?,
                project,
                dataset,
                location: nonempty(Var::BigqueryLocation).unwrap_or_else(|| "US".to_owned()),
                auth,
                retry: RetryPolicy::DEFAULT,
                poll_interval: Duration::from_secs(1),
                job_timeout: Duration::from_secs(600),
                page_size: 50_000,
                table_suffix: nonempty(Var::BigqueryTableSuffix).unwrap_or_default(),
            },
            database_url: DatabaseUrl::new(&database_url),
            data_dir: PathBuf::from(nonempty(Var::PipelineDataDir).unwrap_or_else(|| "data".to_owned())),
            selection,
            validation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        let mut env = Environment::default();
        for (name, value) in vars {
            env.set(Var::named(name).expect("a contract variable"), *value);
        }
        env
    }

    #[test]
    fn defaults_point_at_the_real_services() {
        let config =
            Config::from_environment(&env(&[("BIGQUERY_PROJECT", "p"), ("DATABASE_URL", "postgres://u:secret@h/db")]))
                .expect("minimal config");
        assert_eq!(config.tardis.datasets_url.as_str(), "https://datasets.tardis.dev/v1");
        assert_eq!(config.tardis.api_url.as_str(), "https://api.tardis.dev/v1");
        assert_eq!(config.bigquery.api_url.as_str(), "https://bigquery.googleapis.com/");
        assert_eq!(config.bigquery.dataset, "market_data");
        assert_eq!(config.bigquery.auth, BigQueryAuth::ApplicationDefault);
        assert_eq!(config.selection.pairs().len(), 12);
        assert!(!format!("{:?}", config.database_url).contains("secret"));
    }

    #[test]
    fn missing_and_malformed_settings_say_which_variable() {
        let err = Config::from_environment(&env(&[("DATABASE_URL", "postgres://h/db")])).expect_err("no project");
        assert!(err.to_string().starts_with("BIGQUERY_PROJECT is not set"), "{err}");
        let err = Config::from_environment(&env(&[
            ("BIGQUERY_PROJECT", "p"),
            ("DATABASE_URL", "x"),
            ("TARDIS_API_URL", "ftp://x"),
        ]))
        .expect_err("bad scheme");
        assert!(err.to_string().contains("TARDIS_API_URL"), "{err}");
        let err = Config::from_environment(&env(&[
            ("BIGQUERY_PROJECT", "p"),
            ("DATABASE_URL", "x"),
            ("PIPELINE_SYMBOLS", "bitmex"),
        ]))
        .expect_err("bad selection");
        assert!(err.to_string().contains("exchange:SYMBOL1,SYMBOL2"), "{err}");
    }

    #[test]
    fn the_tardis_rate_limit_is_a_positive_number_of_requests_per_second() {
        let with = |value: &str| {
            Config::from_environment(&env(&[
                ("BIGQUERY_PROJECT", "p"),
                ("DATABASE_URL", "x"),
                ("TARDIS_RATE_LIMIT", value),
            ]))
        };
        let base = Config::from_environment(&env(&[("BIGQUERY_PROJECT", "p"), ("DATABASE_URL", "x")])).expect("valid");
        assert_eq!(base.tardis.rate_limit, None, "no limit unless set");
        assert_eq!(with("5").expect("valid").tardis.rate_limit, Some(5.0));
        assert_eq!(with(" 0.5 ").expect("valid").tardis.rate_limit, Some(0.5));
        assert_eq!(with("  ").expect("blank is unset").tardis.rate_limit, None);
        for bad in ["0", "-2", "fast", "inf", "NaN", "5/s"] {
            let err = with(bad).expect_err(bad);
            assert!(err.to_string().starts_with(&format!("TARDIS_RATE_LIMIT={bad:?} is invalid")), "{err}");
            assert!(err.to_string().contains("positive number of requests per second"), "{err}");
        }
    }

    #[test]
    fn selections_parse_and_print_back() {
        let selection = Selection::parse("bitmex:XBTUSD, ethusd; deribit:BTC-PERPETUAL").expect("valid");
        assert_eq!(selection.to_string(), "bitmex:XBTUSD,ETHUSD;deribit:BTC-PERPETUAL");
        assert_eq!(selection.pairs().len(), 3);
    }
}
