//! `pipeline schedule`: the daily service, or one catch-up pass (`--once`) with a line per date.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use market::checks::Status;

use super::Exit;
use super::control::ControlArgs;
use super::metrics::MetricsArgs;
use super::signals::stop_on_signals;
use crate::clock::Clock;
use crate::config::Config;
use crate::run::Pipeline;
use crate::schedule::{CronSchedule, DEFAULT_CRON, DateOutcome, Pass, ScheduleError, ScheduleOptions, Scheduler};
use crate::worker;

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  pipeline schedule                                  # service: 09:00 UTC daily, catch-up on start\n  pipeline schedule --cron '30 7 * * *' --catch-up-days 3\n  pipeline schedule --once                           # one catch-up pass now, then exit (timer, CronJob)\n  pipeline schedule --once --enqueue-only            # preflight and enqueue; `pipeline worker` runs them\n\nOne scheduler is active per database (a Postgres advisory lock); others wait passively and take over.\nSIGTERM or SIGINT: claim nothing more, let the current date finish, release the lock, exit 0;\na second signal exits at once with 130 (the date's queue lease expires and it runs again).\nExit codes: 0 stopped cleanly (service), or every date completed or enqueued (--once; also when another\nscheduler is active); 1 a date's validation warned (--once); 2 a date failed or was not run (--once);\n3 bad input or configuration, or the database failed; 130 stopped by a second signal."
)]
pub struct ScheduleArgs {
    /// When to run, a cron expression evaluated in UTC (5 fields; a leading 6th is seconds).
    #[arg(long, env = "PIPELINE_SCHEDULE_CRON", default_value = DEFAULT_CRON)]
    pub cron: String,
    /// Catch up at most this many dates per pass, yesterday included: the dates after the latest
    /// completed one, or yesterday alone when nothing ever completed.
    #[arg(long, env = "PIPELINE_CATCH_UP_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub catch_up_days: u32,
    /// One pass now over the dates through yesterday (whatever the cron says; the timer or CronJob that
    /// starts it is the schedule), with its preflight retries, then exit.
    #[arg(long)]
    pub once: bool,
    /// Preflight and enqueue the dates, leaving the runs to `pipeline worker` processes.
    #[arg(long)]
    pub enqueue_only: bool,
    /// Seconds between attempts to take the lock while another scheduler is active.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub lock_retry_secs: u64,
    /// Seconds before a date held back by a failed preflight (e.g. not exported yet) is checked again.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub preflight_retry_secs: u64,
    /// How many times per fire a held-back date is checked again before waiting for the next fire.
    #[arg(long, default_value_t = 8)]
    pub preflight_retries: u32,
    /// This scheduler's name in the queue and the logs (default: schedule-HOSTNAME-PID).
    #[arg(long)]
    pub scheduler_id: Option<String>,
    /// With --once: print the dates' outcomes as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Not with --once: the backfill control API.
    #[command(flatten)]
    pub control: ControlArgs,
}

impl ScheduleArgs {
    /// Resolves the arguments into options (a bad cron expression is bad input).
    pub fn options(&self) -> Result<ScheduleOptions, ScheduleError> {
        let cron = CronSchedule::parse(&self.cron)?;
        let id = self
            .scheduler_id
            .clone()
            .unwrap_or_else(|| format!("schedule-{}-{}", worker::hostname(), std::process::id()));
        let mut options = ScheduleOptions::new(cron, &id);
        options.catch_up_days = self.catch_up_days;
        options.enqueue_only = self.enqueue_only;
        options.lock_retry = Duration::from_secs(self.lock_retry_secs);
        options.preflight_retry = Duration::from_secs(self.preflight_retry_secs);
        options.preflight_retries = self.preflight_retries;
        Ok(options)
    }
}

pub async fn run(args: ScheduleArgs, clock: Arc<dyn Clock>) -> anyhow::Result<Exit> {
    let options = args.options()?;
    if args.control.control_listen.is_some() && args.once {
        anyhow::bail!("--control-listen (PIPELINE_CONTROL_LISTEN) is for the service, not with --once");
    }
    let control = args.control.bind().await?;
    let pipeline = Pipeline::connect(Config::from_env()?).await?;
    let exporter = args.metrics.start(pipeline.store()).await?;
    let pipeline = pipeline.observed_by(std::sync::Arc::new(exporter.metrics()));
    let _control = control.map(|c| c.serve(pipeline.clone(), Arc::clone(&clock))).transpose()?;
    let scheduler = Scheduler::new(pipeline, options, clock);
    let (stop, signals) = stop_on_signals().context("cannot listen for SIGINT and SIGTERM")?;
    let exit = if args.once {
        let pass = scheduler.once(stop).await;
        signals.abort();
        match pass? {
            None => {
                println!("Another scheduler is active on this database; nothing done.");
                Exit::Pass
            }
            Some(pass) => {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&pass)?);
                } else {
                    print!("{}", pass_table(&pass));
                }
                Exit::worst(pass.dates.iter().map(|d| Exit::of_date(&d.outcome)))
            }
        }
    } else {
        let served = scheduler.run(stop).await;
        signals.abort();
        served?;
        Exit::Pass
    };
    exporter.finish().await?;
    Ok(exit)
}

/// A line per date of a `--once` pass.
pub fn pass_table(pass: &Pass) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if pass.dates.is_empty() {
        let _ = writeln!(out, "Nothing to do: every date through yesterday is completed.");
    }
    for report in &pass.dates {
        let line = match &report.outcome {
            DateOutcome::Completed { run_id, validation } => format!(
                "completed    run {}  validation {}",
                run_id.map_or_else(|| "-".to_owned(), |id| id.to_string()),
                validation.map_or("-", Status::as_str)
            ),
            DateOutcome::Failed { error, queue } => format!("failed       queue {}: {error}", queue.as_str()),
            DateOutcome::NotRun { cause } => format!("not run      {cause}"),
            DateOutcome::Enqueued => "enqueued".to_owned(),
            DateOutcome::GaveUp { error } => format!("given up     the queue gave up earlier: {error}"),
            DateOutcome::Interrupted { queue } => format!("interrupted  still queued ({})", queue.as_str()),
        };
        let _ = writeln!(out, "{}  {line}", report.day);
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// How the command line wires the command: a subcommand holding the arguments.
    #[derive(Debug, Parser)]
    enum Wired {
        Schedule(ScheduleArgs),
    }

    #[test]
    fn schedule_arguments_default_to_nine_utc_and_reject_an_empty_window() {
        let Wired::Schedule(args) = Wired::try_parse_from(["pipeline", "schedule", "--once"]).expect("parses");
        let options = args.options().expect("valid");
        assert_eq!((options.cron.expression(), options.catch_up_days, args.once), (DEFAULT_CRON, 7, true));
        assert_eq!(options.preflight_retry, Duration::from_secs(900));
        let err = Wired::try_parse_from(["pipeline", "schedule", "--catch-up-days", "0"]).expect_err("0 days");
        assert!(err.to_string().contains("--catch-up-days"), "{err}");
        let Wired::Schedule(args) =
            Wired::try_parse_from(["pipeline", "schedule", "--cron", "0 25 * * *"]).expect("parses");
        assert!(args.options().is_err(), "a bad cron expression is rejected before anything runs");
        let mut help = Vec::new();
        <Wired as clap::CommandFactory>::command()
            .find_subcommand_mut("schedule")
            .expect("subcommand")
            .write_long_help(&mut help)
            .expect("help");
        let help = String::from_utf8(help).expect("utf-8");
        assert!(help.contains("pipeline schedule --once") && help.contains("Exit codes"), "{help}");
    }
}
