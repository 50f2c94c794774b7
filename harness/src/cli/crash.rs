//! `harness crash`: a backfill killed with SIGKILL at seeded random moments and resumed each time, then compared
//! row for row with a clean run of the same dates. Exit 0 when the final run succeeded and nothing was lost,
//! duplicated or different; 2 otherwise.

use std::path::PathBuf;

use market::{DateRange, TradingDay};
use pipeline::cli::Exit;
use pipeline::{Clock, SystemClock};

use crate::crash::{CrashEvent, CrashOptions, CrashOutcome, CrashTarget};

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  harness crash                                  # 6 dates, 3 kills, seed 42\n  harness crash --dates 10 --kills 20 --seed 7 --last-day 2024-06-30 --json\n  harness crash --dates 3 --kills 5 --pipeline-cmd \"python3 pipeline.py --date {date}\""
)]
pub struct CrashArgs {
    /// Number of dates backfilled, ending yesterday (UTC) unless --last-day.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=31))]
    pub dates: u32,
    /// The last date of the range (YYYY-MM-DD).
    #[arg(long, value_parser = TradingDay::parse)]
    pub last_day: Option<TradingDay>,
    /// SIGKILLs before the backfill is let finish.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub kills: u32,
    /// Seeds the generated market and the kill moments.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Trade-rate multiplier of the generated market, in (0, 100].
    #[arg(long, default_value_t = 0.2, value_parser = super::activity)]
    pub activity: f64,
    /// Workers of each backfill run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// The `pipeline` binary (default: the one beside this `harness`).
    #[arg(long, value_name = "PATH", conflicts_with = "pipeline_cmd")]
    pub pipeline_bin: Option<PathBuf>,
    /// Crash this command instead of `pipeline backfill` (through `sh -c`, with the fakes' environment): `{from}`
    /// and `{to}` are replaced by the range's ends; with `{date}` it runs once per date, in order. Resuming is
    /// running the same command line again.
    #[arg(long, value_name = "COMMAND")]
    pub pipeline_cmd: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: CrashArgs) -> anyhow::Result<Exit> {
    let last_day = args.last_day.unwrap_or_else(|| SystemClock.yesterday());
    let first = (1..args.dates).fold(last_day, |d, _| d.pred());
    let target = match args.pipeline_cmd {
        Some(template) => {
            anyhow::ensure!(
                ["{date}", "{from}", "{to}"].iter().any(|p| template.contains(p)),
                "--pipeline-cmd needs {{date}} (run once per date) or {{from}} and {{to}} (the range) in it"
            );
            CrashTarget::Command(template)
        }
        None => {
            let pipeline = match args.pipeline_bin {
                Some(path) => path,
                None => std::env::current_exe()?.with_file_name("pipeline"),
            };
            anyhow::ensure!(
                pipeline.is_file(),
                "{} is not a file: build it (cargo build -p pipeline) or give --pipeline-bin",
                pipeline.display()
            );
            CrashTarget::Backfill { pipeline, parallel: usize::from(args.parallel) }
        }
    };
    let options = CrashOptions {
        range: DateRange::new(first, last_day)?,
        kills: args.kills,
        seed: args.seed,
        activity: args.activity,
        target,
    };
    eprintln!("crashing: {}", options.target.command_line(options.range));
    let outcome = crate::crash::run(&options, &|event| match event {
        CrashEvent::Killed(kill) => eprintln!(
            "killed after {} ms: {} in flight ({}), {} completed",
            kill.after_ms,
            kill.in_flight.len(),
            kill.in_flight.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            kill.completed
        ),
        CrashEvent::FinishedEarly => eprintln!("a run finished before its kill moment"),
        CrashEvent::Resumed { exit_code, seconds } => {
            eprintln!(
                "resumed: exit {} after {seconds:.1} s",
                exit_code.map_or_else(|| "-".to_owned(), |c| c.to_string())
            )
        }
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", text(&outcome));
    }
    Ok(if outcome.consistent() { Exit::Pass } else { Exit::Fail })
}

fn text(outcome: &CrashOutcome) -> String {
    format!(
        "{} dates, {} kills ({} runs finished before their kill), final run exit {} in {:.1} s\n\
         rows: {} expected, {} lost, {} extra: {}\n",
        outcome.dates,
        outcome.kills.len(),
        outcome.finished_early,
        outcome.final_exit_code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
        outcome.final_seconds,
        outcome.rows_expected,
        outcome.rows_lost,
        outcome.rows_extra,
        if outcome.consistent() { "CONSISTENT" } else { "INCONSISTENT" }
    )
}
