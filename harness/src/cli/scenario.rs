//! `harness scenario list|run`: the fault scenario catalogue, and scenarios run against the reference pipeline
//! or any command. Exit 0 when every expectation is met (or cannot apply), 2 when one is not, 3 on bad input
//! (an unknown name, a malformed file: nothing is started).

use std::path::PathBuf;
use std::time::Duration;

use market::TradingDay;
use pipeline::cli::Exit;
use pipeline::{Clock, Selection, SystemClock};

use crate::external::PipelineCommand;
use crate::recovery::{ScenarioEvent, ScenarioOptions, Target};
use crate::run::write_report;
use crate::scenario::{Profile, Scenario, ScenarioResult, Verdict};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ScenarioCommand {
    /// The built-in scenarios: name, expectation, profile and what each does.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run scenarios (built-in names or TOML files), each in a fresh world, and judge them.
    #[command(
        after_help = "Examples:\n  harness scenario run tardis-429-short bigquery-job-running\n  harness scenario run --all                      # the default profile\n  harness scenario run --all --profile all --json\n  harness scenario run my-bad-day.toml --pipeline-cmd \"python3 pipeline.py --date {date}\""
    )]
    Run(ScenarioRunArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// The quick scenarios (every test run).
    Default,
    /// The slow ones (the nightly).
    Nightly,
    All,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ScenarioRunArgs {
    /// Built-in scenario names or scenario files (*.toml).
    #[arg(value_name = "NAME|FILE", required_unless_present = "all", conflicts_with = "all")]
    pub scenarios: Vec<String>,
    /// Every built-in scenario of --profile.
    #[arg(long)]
    pub all: bool,
    /// With --all: which scenarios.
    #[arg(long, value_enum, default_value_t = Which::Default, requires = "all")]
    pub profile: Which,
    /// YYYY-MM-DD (default: yesterday, UTC).
    #[arg(long, value_parser = TradingDay::parse)]
    pub date: Option<TradingDay>,
    /// Seeds the generated market and the scenarios' random draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Trade-rate multiplier of the generated market, in (0, 100].
    #[arg(long, default_value_t = 0.2, value_parser = super::activity)]
    pub activity: f64,
    /// Only these pairs of the generated market, `exchange:SYM1,SYM2;exchange2:SYM3`.
    #[arg(long, value_parser = Selection::parse)]
    pub symbols: Option<Selection>,
    /// Run this command instead of the reference pipeline (`sh -c`, `{date}` replaced, the fakes' environment).
    #[arg(long, value_name = "COMMAND")]
    pub pipeline_cmd: Option<String>,
    /// Stop each run of a command after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub pipeline_timeout: u64,
    /// The `pipeline` binary, for process scenarios against the reference (default: the one beside `harness`).
    #[arg(long, value_name = "PATH", conflicts_with = "pipeline_cmd")]
    pub pipeline_bin: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write each scenario's report (report.json, report.md and report.html, with its scenario section) into DIR/NAME/, and
    /// every result into DIR/scenarios.json.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

pub async fn run(command: ScenarioCommand) -> anyhow::Result<Exit> {
    match command {
        ScenarioCommand::List { json } => {
            let scenarios = Scenario::catalogue();
            if json {
                let list: Vec<serde_json::Value> = scenarios
                    .iter()
                    .map(|s| {
                        serde_json::json!({"name": s.name, "expect": s.expect, "profile": s.profile,
                            "does": s.summary(), "description": s.description})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:<30} {:<14} {:<8} what it does", "scenario", "expects", "profile");
                for s in &scenarios {
                    let profile = if s.profile == Profile::Nightly { "nightly" } else { "default" };
                    println!("{:<30} {:<14} {:<8} {}", s.name, s.expect.as_str(), profile, s.summary());
                }
                println!("\n{} scenarios; `harness scenario run NAME` runs one.", scenarios.len());
            }
            Ok(Exit::Pass)
        }
        ScenarioCommand::Run(args) => run_scenarios(args).await,
    }
}

/// The reference pipeline's binary, checked before anything starts.
pub(super) fn reference(pipeline_bin: Option<PathBuf>) -> anyhow::Result<Target> {
    let pipeline_bin = match pipeline_bin {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("pipeline"),
    };
    Ok(Target::Reference { pipeline_bin })
}

/// Checks, before anything starts, that a process scenario against the reference has its binary.
pub(super) fn check_binary(target: &Target, scenarios: &[Scenario]) -> anyhow::Result<()> {
    if let Target::Reference { pipeline_bin } = target
        && scenarios.iter().any(|s| s.process.is_some())
    {
        anyhow::ensure!(
            pipeline_bin.is_file(),
            "{} is not a file, and the process scenarios run the pipeline binary: build it (cargo build -p pipeline) or give --pipeline-bin",
            pipeline_bin.display()
        );
    }
    Ok(())
}

async fn run_scenarios(args: ScenarioRunArgs) -> anyhow::Result<Exit> {
    let scenarios: Vec<Scenario> = if args.all {
        Scenario::catalogue()
            .into_iter()
            .filter(|s| match args.profile {
                Which::All => true,
                Which::Default => s.profile == Profile::Default,
                Which::Nightly => s.profile == Profile::Nightly,
            })
            .collect()
    } else {
        args.scenarios.iter().map(|name| Scenario::resolve(name)).collect::<Result<_, _>>()?
    };
    let timeout = Duration::from_secs(args.pipeline_timeout);
    let target = match args.pipeline_cmd {
        Some(template) => Target::Command(PipelineCommand { template, timeout }),
        None => reference(args.pipeline_bin)?,
    };
    check_binary(&target, &scenarios)?;
    let options = ScenarioOptions {
        day: args.date.unwrap_or_else(|| SystemClock.yesterday()),
        seed: args.seed,
        activity: args.activity,
        symbols: args.symbols,
        target,
        timeout,
    };
    let results = crate::recovery::run_many(&scenarios, &options, &|event| match event {
        ScenarioEvent::Starting { scenario, index, of } => {
            eprintln!("[{}/{of}] {} ({})", index + 1, scenario.name, scenario.summary());
        }
        ScenarioEvent::Finished(result) => eprintln!("      {}", line(result)),
    })
    .await?;
    let only: Vec<&ScenarioResult> = results.iter().map(|(r, _)| r).collect();
    if let Some(dir) = &args.report_dir {
        for (result, report) in &results {
            write_report(report, &dir.join(&result.name))?;
        }
        std::fs::write(dir.join("scenarios.json"), serde_json::to_string_pretty(&only)?)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&only)?);
    } else {
        print!("{}", table(&only));
    }
    Ok(if only.iter().any(|r| r.verdict == Verdict::NotMet) { Exit::Fail } else { Exit::Pass })
}

fn line(r: &ScenarioResult) -> String {
    let mut out = format!("{}: expected {}, {}", r.verdict.as_str(), r.expectation.as_str(), r.outcome.as_str());
    for finding in &r.findings {
        out.push_str(&format!("\n        ✗ {finding}"));
    }
    out
}

/// The results table: scenario, expectation, outcome, retries seen, time to recover, verdict.
pub fn table(results: &[&ScenarioResult]) -> String {
    let mut out = format!(
        "{:<30} {:<14} {:<18} {:>7} {:>8} {:>10} {:>9}  verdict\n",
        "scenario", "expectation", "outcome", "faults", "retries", "recover", "duration"
    );
    for r in results {
        out.push_str(&format!(
            "{:<30} {:<14} {:<18} {:>7} {:>8} {:>10} {:>9}  {}\n",
            r.name,
            r.expectation.as_str(),
            r.outcome.as_str(),
            r.faults_injected,
            r.retries,
            r.recover_ms.map_or_else(|| "-".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
            format!("{:.1} s", r.duration_ms as f64 / 1000.0),
            r.verdict.as_str()
        ));
        for finding in &r.findings {
            out.push_str(&format!("    ✗ {finding}\n"));
        }
    }
    let met = results.iter().filter(|r| r.verdict == Verdict::Met).count();
    let na = results.iter().filter(|r| r.verdict == Verdict::NotApplicable).count();
    out.push_str(&format!(
        "{met} met, {} not met, {na} not applicable, of {}\n",
        results.len() - met - na,
        results.len()
    ));
    out
}
