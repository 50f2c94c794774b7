//! `harness crash`: crash consistency of backfills. The `pipeline` binary (or any command: `--pipeline-cmd`)
//! backfills a range cleanly in a world of its own; then, in another, it is killed with SIGKILL at seeded random
//! moments (scaled to the clean run's duration and the work that remains), each time resumed with the very
//! command an operator would type again;
//! when a run is finally let finish, every partition of the range is compared, row for row, with the clean
//! run's: nothing lost, nothing duplicated, nothing different.
//!
//! It measures and reports; whether the outcome is acceptable is the caller's judgement (the exit code of the
//! command, the assertions of a test).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use market::{DateRange, TradingDay};
use pipeline::store::{JobStatus, Store};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::environment::{DATASET, PROJECT};
use crate::postgres::PostgresServer;
use crate::run::RunError;
use crate::world::{World, WorldOptions};

/// The tables compared.
const TABLES: [&str; 2] = ["candles_1m", "instruments"];

#[derive(Debug, Clone)]
pub struct CrashOptions {
    pub range: DateRange,
    /// How many times the backfill is killed before it is let finish.
    pub kills: u32,
    /// Seeds the market and the kill moments.
    pub seed: u64,
    pub activity: f64,
    pub target: CrashTarget,
}

/// What backfills the range.
#[derive(Debug, Clone)]
pub enum CrashTarget {
    /// `pipeline backfill FROM TO --execute --parallel N` of this binary.
    Backfill { pipeline: PathBuf, parallel: usize },
    /// A shell command: `{from}` and `{to}` are replaced by the range's ends; with `{date}`, it runs once per date,
    /// in order, in one shell (killing the run kills the shell and the date's command).
    Command(String),
}

impl CrashTarget {
    /// The command line, as an operator would type it.
    pub fn command_line(&self, range: DateRange) -> String {
        match self {
            CrashTarget::Backfill { pipeline, parallel } => format!(
                "{} backfill {} {} --execute --retry-delay 0 --max-days 366 --parallel {parallel}",
                crate::external::shell_quote(&pipeline.display().to_string()),
                range.start(),
                range.end()
            ),
            CrashTarget::Command(template) => {
                let line =
                    template.replace("{from}", &range.start().to_string()).replace("{to}", &range.end().to_string());
                if line.contains("{date}") {
                    let dates: Vec<String> = range.days().map(|d| d.to_string()).collect();
                    // Every date is run; the loop's status is the last failing one's (0 when none failed).
                    format!(
                        "rc=0; for d in {}; do {} || rc=$?; done; exit $rc",
                        dates.join(" "),
                        line.replace("{date}", "\"$d\"")
                    )
                } else {
                    line
                }
            }
        }
    }
}

/// One SIGKILL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kill {
    /// How long after its start the run was killed.
    pub after_ms: u64,
    /// The dates it held at that moment.
    pub in_flight: Vec<TradingDay>,
    /// Dates completed, by this run or earlier ones, at that moment.
    pub completed: usize,
}

/// How the crashes ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrashOutcome {
    pub dates: u32,
    pub kills: Vec<Kill>,
    /// Runs that finished before their kill moment came (the range was done).
    pub finished_early: u32,
    /// The final run, let finish: its exit code and how long it took.
    pub final_exit_code: Option<i32>,
    pub final_seconds: f64,
    /// Rows of the clean run, over both tables and every date.
    pub rows_expected: u64,
    /// Rows of the clean run missing after the crashes.
    pub rows_lost: u64,
    /// Rows present after the crashes beyond the clean run's (duplicates, or rows it does not have).
    pub rows_extra: u64,
}

impl CrashOutcome {
    /// The final run succeeded and every partition equals the clean run's.
    pub fn consistent(&self) -> bool {
        self.final_exit_code == Some(0) && self.rows_lost == 0 && self.rows_extra == 0
    }
}

/// What a crash run reports as it goes.
#[derive(Debug)]
pub enum CrashEvent<'a> {
    Killed(&'a Kill),
    /// A run finished before its kill moment.
    FinishedEarly,
    Resumed {
        exit_code: Option<i32>,
        seconds: f64,
    },
}

fn backfill(options: &CrashOptions, world: &World, logs: &std::path::Path) -> tokio::process::Command {
    let mut line = options.target.command_line(options.range);
    if let CrashTarget::Backfill { .. } = options.target {
        line.push_str(&format!(" --log-dir {}", crate::external::shell_quote(&logs.display().to_string())));
    }
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(line)
        .envs(crate::environment::command_vars(&world.environment()))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a kill reaches the shell and whatever it started.
        .process_group(0)
        .kill_on_drop(true);
    for var in crate::environment::REMOVED_VARIABLES {
        command.env_remove(var.name());
    }
    command
}

/// SIGKILL to the run's whole process group.
fn kill(child: &tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn spawn_error(source: std::io::Error) -> RunError {
    RunError::Spawn { program: "sh -c".to_owned(), source }
}

fn spawn(command: &mut tokio::process::Command) -> Result<tokio::process::Child, RunError> {
    command.spawn().map_err(spawn_error)
}

/// Runs a backfill to its end.
async fn run_to_end(
    options: &CrashOptions,
    world: &World,
    logs: &std::path::Path,
) -> Result<std::process::ExitStatus, RunError> {
    spawn(&mut backfill(options, world, logs))?.wait().await.map_err(spawn_error)
}

/// Dates of the range with rows in the candles table.
fn landed_dates(world: &World, range: DateRange) -> usize {
    range
        .days()
        .filter(|d| !world.bigquery.partition_rows(PROJECT, DATASET, TABLES[0], &d.compact()).is_empty())
        .count()
}

/// Every row of the range's partitions of both tables, as canonical JSON text, counted.
fn rows(world: &World, range: DateRange) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for day in range.days() {
        for table in TABLES {
            for row in world.bigquery.partition_rows(PROJECT, DATASET, table, &day.compact()) {
                *counts.entry(format!("{table} {}", serde_json::Value::Object(row))).or_default() += 1;
            }
        }
    }
    counts
}

/// Runs the clean backfill, then the crashes, and compares them.
pub async fn run(options: &CrashOptions, on_event: &dyn Fn(CrashEvent<'_>)) -> Result<CrashOutcome, RunError> {
    let server = Arc::new(PostgresServer::provision().await?);
    let world_options = WorldOptions::new(options.seed, options.range.end()).activity(options.activity);
    // The clean run first: its duration scales the kill moments, so that kills land while work remains.
    let clean = World::start_on(server.clone(), world_options.clone()).await?;
    let clean_logs = clean.data_dir.path().join("logs");
    let clean_started = Instant::now();
    run_to_end(options, &clean, &clean_logs).await?;
    let clean_duration = clean_started.elapsed();
    let crashed = World::start_on(server, world_options).await?;
    let logs = crashed.data_dir.path().join("logs");
    let store = Store::connect(crashed.database.url()).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let mut kills = Vec::new();
    let mut finished_early = 0;
    for _ in 0..options.kills {
        // A moment within the work that remains, early-biased so that most runs are cut with dates in flight.
        let unfinished = match options.target {
            CrashTarget::Backfill { .. } => store.unfinished(Some(options.range), pipeline::store::Lanes::All).await?,
            CrashTarget::Command(_) => {
                i64::from(options.range.len()) - i64::try_from(landed_dates(&crashed, options.range)).unwrap_or(0)
            }
        };
        let remaining = if kills.is_empty() && finished_early == 0 {
            1.0
        } else {
            unfinished as f64 / f64::from(options.range.len())
        };
        let moment = clean_duration.mul_f64(remaining.max(0.05) * rng.random_range(0.02..0.6));
        let started = Instant::now();
        let mut child = spawn(&mut backfill(options, &crashed, &logs))?;
        if tokio::time::timeout(moment, child.wait()).await.is_ok() {
            finished_early += 1;
            on_event(CrashEvent::FinishedEarly);
            continue;
        }
        kill(&child);
        let _ = child.wait().await;
        let after_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let kill = match options.target {
            CrashTarget::Backfill { .. } => {
                let jobs = store.jobs(options.range).await?;
                Kill {
                    after_ms,
                    in_flight: jobs.iter().filter(|j| j.status == JobStatus::Processing).map(|j| j.day).collect(),
                    completed: jobs.iter().filter(|j| j.status == JobStatus::Completed).count(),
                }
            }
            // A command keeps no queue the harness can read: dates whose partitions hold rows count as done.
            CrashTarget::Command(_) => {
                Kill { after_ms, in_flight: Vec::new(), completed: landed_dates(&crashed, options.range) }
            }
        };
        on_event(CrashEvent::Killed(&kill));
        kills.push(kill);
    }
    let started = Instant::now();
    let status = run_to_end(options, &crashed, &logs).await?;
    let (final_exit_code, final_seconds) = (status.code(), started.elapsed().as_secs_f64());
    on_event(CrashEvent::Resumed { exit_code: final_exit_code, seconds: final_seconds });
    let (expected, got) = (rows(&clean, options.range), rows(&crashed, options.range));
    let (rows_lost, rows_extra) = difference(&expected, &got);
    Ok(CrashOutcome {
        dates: options.range.len(),
        kills,
        finished_early,
        final_exit_code,
        final_seconds,
        rows_expected: expected.values().sum(),
        rows_lost,
        rows_extra,
    })
}

/// Rows of `expected` missing from `got`, and rows of `got` beyond `expected` (both as multisets).
fn difference(expected: &BTreeMap<String, u64>, got: &BTreeMap<String, u64>) -> (u64, u64) {
    let count = |map: &BTreeMap<String, u64>, key: &str| map.get(key).copied().unwrap_or(0);
    let lost = expected.iter().map(|(row, n)| n.saturating_sub(count(got, row))).sum();
    let extra = got.iter().map(|(row, n)| n.saturating_sub(count(expected, row))).sum();
    (lost, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[(&str, u64)]) -> BTreeMap<String, u64> {
        list.iter().map(|(row, n)| ((*row).to_owned(), *n)).collect()
    }

    #[test]
    fn lost_duplicated_and_different_rows_are_all_counted() {
        let clean = rows(&[("a", 1), ("b", 1), ("c", 1)]);
        assert_eq!(difference(&clean, &clean), (0, 0));
        assert_eq!(difference(&clean, &rows(&[("a", 1), ("b", 1)])), (1, 0), "a lost row");
        assert_eq!(difference(&clean, &rows(&[("a", 2), ("b", 1), ("c", 1)])), (0, 1), "a duplicated row");
        assert_eq!(difference(&clean, &rows(&[("a", 1), ("b", 1), ("c'", 1)])), (1, 1), "a different row");
    }
}
