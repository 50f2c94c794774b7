//! `pipeline preflight`: can a date range run now? A line per check with ✓ or ✗ and its cause, or JSON.

use std::fmt::Write;

use market::{DateRange, DayError};

use super::Exit;
use super::args::DaysArgs;
use crate::clock::Clock;
use crate::config::Config;
use crate::preflight::{PreflightReport, preflight_config};

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  pipeline preflight                                 # yesterday (UTC)\n  pipeline preflight --date 2024-06-03\n  pipeline preflight --from 2024-06-01 --to 2024-06-30 --json\n\nExit codes: 0 every check passed, 2 a check failed (each ✗ line says why), 3 bad input or configuration."
)]
pub struct PreflightArgs {
    /// The dates to check (default: yesterday, UTC).
    #[command(flatten)]
    pub days: DaysArgs,
    /// Print the checks as JSON.
    #[arg(long)]
    pub json: bool,
}

impl PreflightArgs {
    /// The range to check: `--date`, `--from`/`--to`, or yesterday; only complete days.
    pub fn range(&self, clock: &dyn Clock) -> Result<DateRange, DayError> {
        self.days.complete_range_or_yesterday(clock)
    }
}

pub async fn run(args: PreflightArgs, clock: &dyn Clock) -> anyhow::Result<Exit> {
    let range = args.range(clock)?;
    let report = preflight_config(&Config::from_env()?, range).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(Exit::of_preflight(&report))
}

/// A line per check with ✓ or ✗, then a total.
pub fn text(report: &PreflightReport) -> String {
    let mut out = String::new();
    let range =
        if report.from == report.to { report.from.to_string() } else { format!("{}..{}", report.from, report.to) };
    let _ = writeln!(out, "preflight {range}");
    let width = report.checks.iter().map(|c| c.label().chars().count()).max().unwrap_or(0);
    for check in &report.checks {
        let mark = if check.passed { "✓" } else { "✗" };
        let _ = writeln!(out, "  {mark} {:<width$}  {}", check.label(), check.detail);
    }
    let failed = report.failing().count();
    if failed == 0 {
        let _ = writeln!(out, "all {} checks passed", report.checks.len());
    } else {
        let _ = writeln!(out, "{failed} of {} checks failed", report.checks.len());
    }
    out
}
