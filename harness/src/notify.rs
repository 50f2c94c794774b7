//! `harness notify`: gathers the nightly's results ([`crate::nightly`]), prints the message, and posts it to
//! the Slack webhook when one is configured ([`crate::slack`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::nightly::{DefectCheck, Nightly, Step, TestRun, TestSummary};
use crate::slack::{self, Poster, Webhook};

/// The environment variable holding the incoming-webhook URL. Only ever read, never printed.
pub const WEBHOOK_VARIABLE: &str = "SLACK_WEBHOOK_URL";

/// What `harness notify` reads and where it writes. The webhook is not among them: it comes from the
/// environment only ([`WEBHOOK_VARIABLE`]), since a command line is visible to every user of the machine
/// (`ps`) and ends up in CI logs.
#[derive(Debug, Clone, Default)]
pub struct NotifyOptions {
    /// Directory of the clean run's report.json (`harness run --report-dir DIR`).
    pub report_dir: PathBuf,
    /// nextest's JUnit report of the test step (e.g. target/nextest/nightly/junit.xml).
    pub junit: Option<PathBuf>,
    /// Exit code of the test step; non-zero fails the tests even when the JUnit report is missing.
    pub tests_exit_code: Option<i32>,
    /// Report directory of a run with a deliberate defect (`harness run --defect NAME`), which the harness
    /// must have failed. Repeatable.
    pub defect_reports: Vec<PathBuf>,
    /// `harness crash --json`'s output, when the crash-consistency step ran.
    pub crash: Option<PathBuf>,
    /// `scenarios.json` of `harness scenario run --report-dir`, when the fault scenarios ran.
    pub scenarios: Option<PathBuf>,
    /// `cargo mutants`' `outcomes.json` of each scope, when mutation testing ran (`scripts/mutants.sh`).
    pub mutants: Vec<PathBuf>,
    /// Wall time of the whole nightly run, in seconds.
    pub duration_secs: Option<u64>,
    /// Where the full report can be read: a URL (linked) or a path (default: DIR/report.html).
    pub report_url: Option<String>,
    /// Also write the Slack payload (JSON) to this file, posted or not.
    pub save_payload: Option<PathBuf>,
    /// Print the Slack payload (JSON) rather than the text.
    pub json: bool,
}

impl NotifyOptions {
    /// The nightly summary from the files the arguments name. Never fails: what cannot be read is said.
    pub fn gather(&self) -> Nightly {
        let tests = (self.junit.is_some() || self.tests_exit_code.is_some()).then(|| TestRun {
            summary: match &self.junit {
                Some(path) => TestSummary::read_junit(path).map_err(|e| e.to_string()),
                None => Err("no JUnit report given".to_owned()),
            },
            exit_code: self.tests_exit_code,
        });
        Nightly {
            harness: pipeline::report::read(&self.report_dir).map_err(|e| e.to_string()),
            tests,
            defects: self.defect_reports.iter().map(|dir| DefectCheck::read(dir)).collect(),
            steps: self
                .crash
                .iter()
                .map(|path| Step::crash(path))
                .chain(self.scenarios.iter().map(|path| Step::scenarios(path)))
                .chain((!self.mutants.is_empty()).then(|| Step::mutants(&self.mutants)))
                .collect(),
            duration: self.duration_secs.map(Duration::from_secs),
            report_location: Some(
                self.report_url.clone().unwrap_or_else(|| self.report_dir.join("report.html").display().to_string()),
            ),
        }
    }
}

/// What `notify` did with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// No webhook configured: printed only.
    Printed,
    Posted {
        attempts: u32,
    },
    /// The post failed; the warning (already redacted) was written.
    Failed {
        warning: String,
    },
}

/// `harness notify` with its environment made explicit: prints the message to `out` (the result), posts it
/// when a webhook is given, and writes what happened to the post, and warnings, to `err` (the log). Posting problems are warnings, never errors: the
/// nightly's result is the tests', and a Slack outage must not turn a green night red or hide a red one.
pub async fn notify(
    args: &NotifyOptions,
    webhook: Option<&str>,
    poster: &Poster,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<Delivery> {
    let nightly = args.gather();
    let payload = slack::payload(&nightly);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&payload).unwrap_or_default())?;
    } else {
        write!(out, "{}", slack::text(&nightly))?;
    }
    if let Some(path) = &args.save_payload {
        let json = serde_json::to_vec_pretty(&payload).unwrap_or_default();
        if let Err(e) = std::fs::write(path, json) {
            writeln!(err, "warning: cannot write {}: {e}", path.display())?;
        }
    }
    let Some(url) = webhook.filter(|u| !u.trim().is_empty()) else {
        writeln!(err, "slack: {WEBHOOK_VARIABLE} is not set; the message was printed, not posted")?;
        return Ok(Delivery::Printed);
    };
    let delivery = match Webhook::parse(url) {
        Err(e) => Delivery::Failed { warning: e.to_string() },
        Ok(webhook) => match poster.post(&webhook, &payload).await {
            Ok(attempts) => Delivery::Posted { attempts },
            Err(e) => Delivery::Failed { warning: e.to_string() },
        },
    };
    match &delivery {
        Delivery::Posted { attempts } => {
            let plural = if *attempts == 1 { "" } else { "s" };
            writeln!(err, "slack: posted ({attempts} attempt{plural})")?;
        }
        Delivery::Failed { warning } => writeln!(err, "warning: the Slack message was not posted: {warning}")?,
        Delivery::Printed => {}
    }
    Ok(delivery)
}
