//! `harness exec -- COMMAND ARGS...`: any command with the fakes, a fresh database and their environment;
//! the harness exits with the command's own status.

use std::path::PathBuf;

use market::{DateRange, TradingDay};
use pipeline::cli::Exit;
use pipeline::{Clock, Selection, SystemClock};

use crate::external::{ExecOptions, ExecOutcome, Starting};

#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// Seed of the generated market.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First day served (default: --to).
    #[arg(long, value_parser = TradingDay::parse)]
    pub from: Option<TradingDay>,
    /// Last day served, i.e. Tardis' exportedUntil (default: yesterday, UTC).
    #[arg(long, value_parser = TradingDay::parse)]
    pub to: Option<TradingDay>,
    /// Trade-rate multiplier of the generated market (1.0 is a realistic day), in (0, 100].
    #[arg(long, default_value_t = 1.0, value_parser = super::activity)]
    pub activity: f64,
    /// Edge-case episodes per symbol and day of the generated market (see `harness run --help`); 0 for none.
    #[arg(long, value_name = "PER_DAY", default_value_t = fixtures::DEFAULT_EDGE_CASES_PER_DAY, value_parser = super::edge_cases)]
    pub edge_cases: f64,
    /// Only these pairs of the generated market, `exchange:SYM1,SYM2;exchange2:SYM3`; also PIPELINE_SYMBOLS.
    #[arg(long, value_parser = Selection::parse)]
    pub symbols: Option<Selection>,
    /// Serve captured Tardis files from DIR instead of generated ones (layout as for `harness mocks serve
    /// --replay-dir`); --seed, --from, --to and --activity are then ignored.
    #[arg(long, value_name = "DIR")]
    pub replay_dir: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The exit is the command's status: its exit code, 128 + n when signal n ended it, 127 when it cannot be
/// found, 126 when it cannot be executed; 3 when the harness could not start.
pub async fn run(args: ExecArgs) -> anyhow::Result<Exit> {
    let to = args.to.unwrap_or_else(|| SystemClock.yesterday());
    let options = ExecOptions {
        seed: args.seed,
        days: DateRange::new(args.from.unwrap_or(to), to)?,
        activity: args.activity,
        edge_cases: args.edge_cases,
        symbols: args.symbols,
        replay_dir: args.replay_dir,
        command: args.command,
    };
    let outcome = crate::external::exec(&options, &show).await?;
    Ok(match outcome {
        ExecOutcome::Ended(ended) => {
            match ended.signal {
                Some(signal) => eprintln!("harness exec: killed by signal {signal} (status {})", ended.exit_code),
                None => eprintln!("harness exec: exited with status {}", ended.exit_code),
            }
            Exit::Child(u8::try_from(ended.exit_code).unwrap_or(u8::MAX))
        }
        ExecOutcome::NotFound { program, reason } => {
            eprintln!("harness exec: cannot run {program}: {reason}");
            Exit::Child(127)
        }
        ExecOutcome::NotExecutable { program, reason } => {
            eprintln!("harness exec: cannot run {program}: {reason}");
            Exit::Child(126)
        }
    })
}

fn show(starting: &Starting) {
    for service in &starting.services {
        eprintln!("harness exec: {service}");
    }
    eprint!("harness exec: environment:\n{}", starting.environment);
    eprintln!("harness exec: $ {}", starting.command_line);
}
