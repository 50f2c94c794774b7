//! `harness run`: one date of generated data through the in-process pipeline (or an external command),
//! scored against ground truth; the summary, the report files and the verdict as the exit code.

use std::path::PathBuf;
use std::time::Duration;

use market::TradingDay;
use pipeline::cli::Exit;
use pipeline::{Clock, Selection, SystemClock};

use crate::defects::Defect;
use crate::external::{PipelineCommand, Starting};
use crate::postgres::PostgresServer;
use crate::recovery::{ScenarioOptions, Target};
use crate::run::{RunOptions, write_report};
use crate::scenario::{Scenario, Verdict};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// YYYY-MM-DD (default: yesterday, UTC).
    #[arg(long, value_parser = TradingDay::parse)]
    pub date: Option<TradingDay>,
    /// Seed of the generated market.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where report.json, report.md and report.html go.
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// Trade-rate multiplier of the generated market (1.0 is a realistic day), in (0, 100].
    #[arg(long, default_value_t = 1.0, value_parser = super::activity)]
    pub activity: f64,
    /// Edge-case episodes per symbol and day of the generated market (ties of exchange time at minute edges,
    /// trades on a boundary, arrivals out of order across and inside minute edges, minimum and largest sizes,
    /// an unknown side); 0 for the plain random market.
    #[arg(long, value_name = "PER_DAY", default_value_t = fixtures::DEFAULT_EDGE_CASES_PER_DAY, value_parser = super::edge_cases)]
    pub edge_cases: f64,
    /// Run a deliberately broken pipeline, to see the harness catch it (`harness coverage` lists every
    /// defect, the rule it breaks and the check that catches it).
    #[arg(long, value_parser = Defect::parse)]
    pub defect: Option<Defect>,
    /// Run this command instead of the in-process pipeline, through `sh -c` with `{date}` replaced by the date
    /// and the fakes' environment; what it writes to the fake BigQuery is scored the same way.
    #[arg(long, value_name = "COMMAND", conflicts_with = "defect")]
    pub pipeline_cmd: Option<String>,
    /// With --pipeline-cmd: stop the command (SIGTERM, then SIGKILL 10 s later) after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, requires = "pipeline_cmd")]
    pub pipeline_timeout: u64,
    /// Only these pairs of the generated market, `exchange:SYM1,SYM2;exchange2:SYM3` (default: 3 exchanges × 4
    /// symbols); also what PIPELINE_SYMBOLS says.
    #[arg(long, value_parser = Selection::parse)]
    pub symbols: Option<Selection>,
    /// Run under a fault scenario (a built-in name or a TOML file; `harness scenario list`). The exit code is
    /// then the scenario's verdict: 0 when its expectation is met, 2 when not.
    #[arg(long, value_name = "NAME|FILE", conflicts_with = "defect")]
    pub faults: Option<String>,
    /// With --faults: the `pipeline` binary, for process scenarios (default: the one beside `harness`).
    #[arg(long, value_name = "PATH", requires = "faults", conflicts_with = "pipeline_cmd")]
    pub pipeline_bin: Option<PathBuf>,
}

pub async fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let day = args.date.unwrap_or_else(|| SystemClock.yesterday());
    let options = RunOptions {
        day,
        seed: args.seed,
        activity: args.activity,
        edge_cases: args.edge_cases,
        report_dir: None,
        defect: args.defect,
        symbols: args.symbols,
    };
    if let Some(faults) = &args.faults {
        let scenario = Scenario::resolve(faults)?;
        let timeout = Duration::from_secs(args.pipeline_timeout);
        let target = match args.pipeline_cmd {
            Some(template) => Target::Command(PipelineCommand { template, timeout }),
            None => super::scenario::reference(args.pipeline_bin)?,
        };
        super::scenario::check_binary(&target, std::slice::from_ref(&scenario))?;
        let options = ScenarioOptions {
            day,
            seed: args.seed,
            activity: args.activity,
            symbols: options.symbols,
            target,
            timeout,
        };
        let server = std::sync::Arc::new(PostgresServer::provision().await?);
        let (result, mut report) = crate::recovery::run(server, &scenario, &options).await?;
        report.sections.scenario = Some(result.clone());
        print!("{}", report.text());
        let path = write_report(&report, &args.report_dir)?;
        println!("report: {}", path.display());
        return Ok(if result.verdict == Verdict::NotMet { Exit::Fail } else { Exit::Pass });
    }
    let report = match args.pipeline_cmd {
        Some(template) => {
            let command = PipelineCommand { template, timeout: Duration::from_secs(args.pipeline_timeout) };
            crate::external::run(&options, &command, &|starting| show(starting)).await?
        }
        None => crate::run::run(&options).await?,
    };
    print!("{}", report.text());
    let path = write_report(&report, &args.report_dir)?;
    println!("report: {}", path.display());
    Ok(Exit::of_status(report.status))
}

/// What the harness tells before it starts an external command, on standard error.
fn show(starting: &Starting) {
    for warning in &starting.warnings {
        eprintln!("harness run: warning: {warning}");
    }
    eprint!("harness run: environment of the command:\n{}", starting.environment);
    eprintln!("harness run: $ {}", starting.command_line);
}
