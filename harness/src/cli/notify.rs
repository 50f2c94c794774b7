//! `harness notify`: the nightly message, printed and posted to SLACK_WEBHOOK_URL when set. Its exit is 0
//! whatever happened to the post (the nightly's result is the tests'); 3 only when the output cannot be
//! written.

use std::path::PathBuf;

use anyhow::Context;
use pipeline::cli::Exit;

use crate::notify::{NotifyOptions, WEBHOOK_VARIABLE, notify};
use crate::slack::{self, Poster};

/// The webhook comes from the environment only: a command line is visible to every user of the machine
/// (`ps`) and ends up in CI logs.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// Directory of the clean run's report.json (`harness run --report-dir DIR`).
    #[arg(long, value_name = "DIR")]
    pub report_dir: PathBuf,
    /// nextest's JUnit report of the test step (e.g. target/nextest/nightly/junit.xml).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Exit code of the test step; non-zero fails the tests even when the JUnit report is missing.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub tests_exit_code: Option<i32>,
    /// Report directory of a run with a deliberate defect (`harness run --defect NAME`), which the harness
    /// must have failed. Repeatable.
    #[arg(long = "defect-report", value_name = "DIR")]
    pub defect_reports: Vec<PathBuf>,
    /// `harness crash --json`'s output (the crash-consistency step), which must say CONSISTENT.
    #[arg(long, value_name = "PATH")]
    pub crash: Option<PathBuf>,
    /// `scenarios.json` of `harness scenario run --report-dir` (the fault scenarios), each of which must be met.
    #[arg(long, value_name = "PATH")]
    pub scenarios: Option<PathBuf>,
    /// `outcomes.json` of a `cargo mutants` run (`scripts/mutants.sh`: target/mutants/SCOPE/mutants.out/), for
    /// the mutation score. Repeatable, one per scope.
    #[arg(long, value_name = "PATH")]
    pub mutants: Vec<PathBuf>,
    /// Wall time of the whole nightly run, in seconds.
    #[arg(long, value_name = "N")]
    pub duration_secs: Option<u64>,
    /// Where the full report can be read: a URL (linked) or a path (default: DIR/report.html).
    #[arg(long, value_name = "URL")]
    pub report_url: Option<String>,
    /// Also write the Slack payload (JSON) to this file, posted or not.
    #[arg(long, value_name = "PATH")]
    pub save_payload: Option<PathBuf>,
    /// Print the Slack payload (JSON) rather than the text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: NotifyArgs) -> anyhow::Result<Exit> {
    let options = NotifyOptions {
        report_dir: args.report_dir,
        junit: args.junit,
        tests_exit_code: args.tests_exit_code,
        defect_reports: args.defect_reports,
        crash: args.crash,
        scenarios: args.scenarios,
        mutants: args.mutants,
        duration_secs: args.duration_secs,
        report_url: args.report_url,
        save_payload: args.save_payload,
        json: args.json,
    };
    let webhook = std::env::var(WEBHOOK_VARIABLE).ok();
    let poster = Poster::new(slack::RETRY)?;
    notify(&options, webhook.as_deref(), &poster, &mut std::io::stdout(), &mut std::io::stderr())
        .await
        .context("cannot write the message")?;
    Ok(Exit::Pass)
}
