//! `harness`: see `harness --help` and the README.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    // Argument errors are harness errors: exit 3 as documented (clap's own default is 2).
    match harness::cli::Cli::try_parse() {
        Ok(cli) => harness::cli::main(cli).await,
        Err(err) => {
            let _ = err.print();
            ExitCode::from(if err.use_stderr() { harness::cli::EXIT_ERROR } else { 0 })
        }
    }
}
