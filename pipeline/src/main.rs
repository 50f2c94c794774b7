//! `pipeline`: see `pipeline --help` and the README.

use std::process::ExitCode;
use std::sync::Arc;

use pipeline::SystemClock;
use pipeline::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    match cli::parse::<Cli>() {
        Ok(args) => {
            cli::init_logging("info", args.log);
            cli::finish(cli::run(args, Arc::new(SystemClock)).await)
        }
        Err(exit) => exit.into(),
    }
}
