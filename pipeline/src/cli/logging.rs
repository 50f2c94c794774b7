//! Where log lines go and how they look: standard error, filtered by `RUST_LOG`, as text (coloured only on a
//! terminal, never when `NO_COLOR` is set) or as one JSON object per line for a log collector. Both binaries
//! take `--log-format` (or `PIPELINE_LOG_FORMAT`) before or after their subcommand.

use std::io::IsTerminal;

use crate::env::Var;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-05T09:00:01Z  INFO pipeline::run: Run started. day=2024-06-01 run_id=7`.
    #[default]
    Text,
    /// `{"timestamp":"…","level":"INFO","target":"pipeline::run","message":"Run started.","day":"2024-06-01"}`.
    Json,
}

/// The logging options every command of `pipeline` and `harness` takes.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LogArgs {
    /// Log lines on standard error as `text` (coloured only on a terminal, and never when NO_COLOR is set) or
    /// `json` (one object per line).
    #[arg(long, global = true, value_enum, value_name = "FORMAT", env = Var::PipelineLogFormat.name(), default_value_t)]
    pub log_format: LogFormat,
}

/// Whether text logs are coloured: only on a terminal, and not when `NO_COLOR` is set to anything
/// (no-color.org: present and not empty).
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Logs go to standard error, filtered by `RUST_LOG` (default `default_filter`), in `args`' format.
pub fn init_logging(default_filter: &str, args: LogArgs) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => {
            let ansi = colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
            builder.with_ansi(ansi).init();
        }
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_ansi(false).init(),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color_set() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset");
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None), "a file, a pipe, journald");
    }
}
