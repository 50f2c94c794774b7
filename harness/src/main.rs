//! `harness`: see `harness --help` and the README.

use std::process::ExitCode;

use harness::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    match pipeline::cli::parse::<Cli>() {
        Ok(args) => {
            pipeline::cli::init_logging("warn", args.log);
            pipeline::cli::finish(cli::run(args).await)
        }
        Err(exit) => exit.into(),
    }
}
