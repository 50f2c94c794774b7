//! `pipeline run`: one date through every stage, a summary of the run, reports on request.

use std::fmt::Write;
use std::path::PathBuf;

use anyhow::Context;
use market::TradingDay;

use super::Exit;
use super::metrics::MetricsArgs;
use super::signals::stop_on_signals;
use crate::clock::{Clock, day_or_yesterday};
use crate::config::{Config, Selection};
use crate::report::{Report, write_all};
use crate::run::{Pipeline, RunOutcome};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The date to process, YYYY-MM-DD (default: yesterday, UTC). Today and later are rejected.
    #[arg(long, value_parser = TradingDay::parse)]
    pub date: Option<TradingDay>,
    /// Override PIPELINE_SYMBOLS, e.g. 'binance-futures:BTCUSDT,ETHUSDT;bitmex:XBTUSD'.
    #[arg(long, value_parser = Selection::parse)]
    pub symbols: Option<Selection>,
    /// Override PIPELINE_DATA_DIR.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Write report.json, report.md and report.html of the run's validation here.
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Print the run outcome as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

pub async fn run(args: RunArgs, clock: &dyn Clock) -> anyhow::Result<Exit> {
    let day = day_or_yesterday(args.date, clock)?;
    let mut config = Config::from_env()?;
    if let Some(selection) = args.symbols {
        config.selection = selection;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let pipeline = Pipeline::connect(config).await?;
    let exporter = args.metrics.start(pipeline.store()).await?;
    let pipeline = pipeline.observed_by(std::sync::Arc::new(exporter.metrics()));
    let (mut stop, signals) = stop_on_signals().context("cannot listen for SIGINT and SIGTERM")?;
    let since = chrono::Utc::now();
    // A stop (an evicted pod's SIGTERM, Ctrl+C) abandons the run at once rather than at the kill that follows
    // the grace period: partitions are replaced whole, so nothing half-written stays, and the run's record
    // says so instead of `running` forever.
    let outcome = tokio::select! {
        outcome = pipeline.run_day(day, "manual") => outcome.context("the run could not be recorded")?,
        Ok(_) = stop.wait_for(|stopped| *stopped) => {
            let error = "interrupted by a signal; run the same command again";
            pipeline.store().fail_abandoned_runs(day, "manual", since, error).await?;
            exporter.finish().await?;
            eprintln!("{day}: interrupted; the run is recorded as failed. Run the same command again to process the date.");
            return Ok(Exit::Interrupted);
        }
    };
    signals.abort();
    exporter.finish().await?;
    if let (Some(dir), Some(validation)) = (&args.report_dir, &outcome.validation) {
        let report = Report::for_validation(pipeline.store(), day, validation).await;
        write_all(&report, dir).context("cannot write the reports")?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", summary(&outcome));
    }
    Ok(Exit::of_run(&outcome))
}

/// A run as a person reads it: a line per stage, the counts, the validation and its failing checks.
pub fn summary(outcome: &RunOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} run {} {}", outcome.day, outcome.run_id, outcome.status.as_str());
    for s in &outcome.stages {
        let mark = if s.succeeded { "✓" } else { "✗" };
        let rows = s.rows.map_or_else(String::new, |n| format!("{n} rows"));
        let _ = writeln!(out, "  {mark} {:<12} {:>8} ms  {rows}", s.stage, s.duration_ms());
        if let Some(error) = &s.error {
            let _ = writeln!(out, "      {error}");
        }
    }
    let c = &outcome.counts;
    let _ = writeln!(
        out,
        "  files {}  trades {}  candles {}  instruments {}  rows outside the date {} before / {} after",
        c.files, c.trades, c.candles, c.instruments, outcome.rows_before_day, outcome.rows_after_day
    );
    if let Some(v) = &outcome.validation {
        let _ = writeln!(
            out,
            "  validation {}: completeness {:.4}  quality {:.4}  consistency {:.4}",
            v.status.as_str(),
            v.scores.completeness,
            v.scores.quality,
            v.scores.consistency
        );
        for check in v.failing() {
            let _ =
                writeln!(out, "    {} failed {}/{}: {}", check.id, check.failed, check.evaluated, check.description);
            for sample in check.samples.iter().take(3) {
                let _ = writeln!(out, "      {}", sample.detail);
            }
        }
    }
    out
}
