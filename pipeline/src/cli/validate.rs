//! `pipeline validate`: every date of a range validated again from what is in BigQuery, a line per date,
//! range totals, reports on request.

use std::fmt::Write;
use std::path::PathBuf;

use anyhow::Context;
use market::TradingDay;
use market::checks::{Status, Validation};

use super::Exit;
use super::args::DaysArgs;
use crate::clock::Clock;
use crate::config::Config;
use crate::report::{Report, write_all};
use crate::run::Pipeline;

#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub days: DaysArgs,
    /// Write report.json, report.md and report.html per date (under a folder per date for a range).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ValidateArgs, clock: &dyn Clock) -> anyhow::Result<Exit> {
    let range = args.days.range()?.context("give --date, or --from and --to")?;
    range.end().ensure_complete(clock.today())?;
    let pipeline = Pipeline::connect(Config::from_env()?).await?;
    let mut results = Vec::new();
    for day in range.days() {
        let validation = pipeline.revalidate(day).await.with_context(|| format!("cannot validate {day}"))?;
        if let Some(dir) = &args.report_dir {
            let dir = if range.len() > 1 { dir.join(day.to_string()) } else { dir.clone() };
            let report = Report::for_validation(pipeline.store(), day, &validation).await;
            write_all(&report, &dir).context("cannot write the reports")?;
        }
        results.push((day, validation));
    }
    let worst = results.iter().map(|(_, v)| v.status).max().unwrap_or(Status::Pass);
    if args.json {
        let list: Vec<serde_json::Value> = results
            .iter()
            .map(
                |(day, v)| serde_json::json!({"date": day, "status": v.status, "scores": v.scores, "checks": v.checks}),
            )
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"dates": list, "status": worst}))?);
    } else {
        print!("{}", range_table(&results));
    }
    Ok(Exit::of_status(worst))
}

/// The per-date table of `pipeline validate` and the range totals.
pub fn range_table(results: &[(TradingDay, Validation)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10}  {:<6} {:>12} {:>8} {:>11} {:>9}  failing checks",
        "date", "status", "completeness", "quality", "consistency", "candles"
    );
    let mut candles_total = 0u64;
    for (day, v) in results {
        let candles = v.metrics.iter().filter(|m| m.metric == "candle_count").map(|m| m.value as u64).sum::<u64>();
        candles_total += candles;
        let failing: Vec<String> =
            v.failing().filter(|c| c.status != Status::Pass).map(|c| format!("{} ({})", c.id, c.failed)).collect();
        let _ = writeln!(
            out,
            "{day}  {:<6} {:>12.4} {:>8.4} {:>11.4} {:>9}  {}",
            v.status.as_str(),
            v.scores.completeness,
            v.scores.quality,
            v.scores.consistency,
            candles,
            if failing.is_empty() { "-".to_owned() } else { failing.join(", ") }
        );
    }
    let count = |s: Status| results.iter().filter(|(_, v)| v.status == s).count();
    let _ = writeln!(
        out,
        "{} dates: {} pass, {} warn, {} fail; {} candles",
        results.len(),
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail) + count(Status::Error),
        candles_total
    );
    out
}
