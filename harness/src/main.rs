//! `harness`: see `harness --help` and the README.

use std::process::ExitCode;

use harness::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    pipeline::cli::init_logging("warn");
    match pipeline::cli::parse::<Cli>() {
        Ok(args) => pipeline::cli::finish(cli::run(args).await),
        Err(exit) => exit.into(),
    }
}
