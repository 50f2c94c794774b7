//! The `pipeline` command line: what the user typed (clap, parsed into typed values at the edge), the
//! library operation it asks for, how the outcome is shown, and its exit code ([`Exit`]). One module per
//! command. Nothing else in the crate uses this module; the harness uses its exit contract.

mod args;
pub mod backfill;
mod candles;
mod control;
mod exit;
mod logging;
pub mod metrics;
mod migrate;
pub mod preflight;
mod run;
mod runs;
pub mod schedule;
mod serve;
mod signals;
mod validate;
mod worker;

use std::sync::Arc;

use clap::{Parser, Subcommand};

pub use exit::{Exit, finish, parse};
pub use logging::{LogArgs, LogFormat, init_logging};

use crate::clock::Clock;

#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    version,
    about = "Daily crypto market-data pipeline: Tardis trades → 1-minute candles → BigQuery, validated and recorded",
    after_help = "Examples:\n  pipeline run                      # yesterday (UTC), all configured symbols\n  pipeline run --date 2024-06-01\n  pipeline run --date 2024-06-01 --symbols 'bitmex:XBTUSD;deribit:BTC-PERPETUAL'\n  pipeline validate --date 2024-06-01 --report-dir reports/\n  pipeline validate --from 2024-06-01 --to 2024-06-30 --json\n  pipeline runs --date 2024-06-01 --json\n  pipeline backfill 2024-06-01 2024-06-30                       # dry run: the plan\n  pipeline backfill 2024-06-01 2024-06-30 --parallel 4 --execute\n  pipeline backfill status\n  pipeline backfill list\n  pipeline backfill cancel 42 [--now]                           # from any machine\n  pipeline backfill retry 42 --only-failed --execute\n  pipeline worker --follow --parallel 2\n  pipeline schedule                                              # the 09:00 UTC service\n  pipeline preflight --from 2024-06-01 --to 2024-06-30\n  pipeline candles --input BTCUSDT.csv.gz --interval 1m      # one Tardis file into candles\n\nConfiguration comes from the environment (TARDIS_*, BIGQUERY_*, DATABASE_URL, PIPELINE_*); see the README.\nExit codes: 0 pass, 1 warn, 2 fail (a check failed or the run failed), 3 error (bad input or configuration),\n130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process one UTC date through every stage.
    Run(run::RunArgs),
    /// Validate dates again from what is in BigQuery (post-backfill verification); one date or a range.
    Validate(validate::ValidateArgs),
    /// Backfill a range of dates (dry run unless --execute); show the queue (`status`) or the backfills
    /// (`list`); cancel one (`cancel`); run an earlier one's failed dates again (`retry`).
    #[command(args_conflicts_with_subcommands = true)]
    Backfill {
        #[command(subcommand)]
        command: Option<backfill::BackfillCommand>,
        // Boxed: the backfill's arguments are several times the size of any other command's.
        #[command(flatten)]
        args: Box<backfill::BackfillArgs>,
    },
    /// Work the date queue: claim dates, run them, until the queue is empty (or forever with --follow).
    Worker(worker::WorkerArgs),
    /// Run the daily scheduler (09:00 UTC, catch-up, one active per database).
    Schedule(schedule::ScheduleArgs),
    /// Check that a date range can run now (Tardis export, BigQuery tables, database).
    Preflight(preflight::PreflightArgs),
    /// Show the recorded runs of a date.
    Runs(runs::RunsArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Turn one Tardis trades file into candles (the candles stage on one file; no servers, no database).
    Candles(candles::CandlesArgs),
}

/// Runs the command `cli` names, with `clock` for "yesterday" and "not in the future". An `Err` is bad input
/// or a failure of the tool itself (exit 3).
pub async fn run(cli: Cli, clock: Arc<dyn Clock>) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Run(args) => run::run(args, clock.as_ref()).await,
        Command::Validate(args) => validate::run(args, clock.as_ref()).await,
        Command::Backfill { command: Some(command), .. } => backfill::run_command(command, clock.as_ref()).await,
        Command::Backfill { command: None, args } => backfill::run(*args, clock.as_ref()).await,
        Command::Worker(args) => worker::run(args, clock).await,
        Command::Schedule(args) => schedule::run(args, clock).await,
        Command::Preflight(args) => preflight::run(args, clock.as_ref()).await,
        Command::Runs(args) => runs::run(args).await,
        Command::Migrate => migrate::run().await,
        Command::Candles(args) => tokio::task::spawn_blocking(move || candles::run(&args)).await?,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::env::Var;

    #[test]
    fn every_variable_an_option_falls_back_to_is_part_of_the_environment_contract() {
        fn walk(command: &clap::Command, found: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env() {
                    found.push(env.to_string_lossy().into_owned());
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, found);
            }
        }
        let mut found = Vec::new();
        walk(&Cli::command(), &mut found);
        assert!(!found.is_empty(), "the scheduler's options read the environment");
        for name in found {
            assert!(Var::named(&name).is_some(), "{name} is read but not in pipeline::env::Var");
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
