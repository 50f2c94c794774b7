//! `harness load`: the load and recovery benchmark. The `pipeline` binary runs against the fakes and a real
//! Postgres, each condition in a fresh world with network fronts before both fakes (so that retries are seen):
//!
//! - `normal`: a backfill of the range with each worker count of `workers` (the speed-up over the first);
//! - `high`: `concurrent` daily runs at once, of the same date and of different dates (a date never duplicates);
//! - `faults`: a backfill under a seeded transient fault rate on every endpoint (every date must land whole);
//! - `memory`: a backfill whose process may not grow its data segment beyond a cap (`RLIMIT_DATA`).
//!
//! Each line has throughput (trades/s, dates/min), per-stage p50/p95/p99 from the run records, peak RSS and CPU
//! of the pipeline's processes (sampled from `/proc`), retries and faults from the fronts' logs, the success rate
//! and the rows lost or extra against the truth. A benchmark, not a test: it measures, it does not judge.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fakes::front::{Action, Answer, Select};
use market::{DateRange, TradingDay};
use pipeline::store::Store;
use serde::{Deserialize, Serialize};

use crate::faults::Armed;
use crate::postgres::PostgresServer;
use crate::run::{RunError, landed_candles};
use crate::scenario::{Endpoint, Expectation, Fault, JobFaults, Profile, Scenario};
use crate::world::{World, WorldOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Normal,
    High,
    Faults,
    Memory,
}

impl Condition {
    pub const ALL: [Condition; 4] = [Condition::Normal, Condition::High, Condition::Faults, Condition::Memory];

    pub fn parse(text: &str) -> Result<Condition, String> {
        Condition::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| format!("unknown condition {text:?}; one of normal, high, faults, memory"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Normal => "normal",
            Condition::High => "high",
            Condition::Faults => "faults",
            Condition::Memory => "memory",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The dates backfilled; the fakes have exported through the last.
    pub range: DateRange,
    pub conditions: Vec<Condition>,
    /// Worker counts of the normal condition, each at least 1 (the other backfills use the last).
    pub workers: Vec<usize>,
    /// Daily runs at once in the high condition.
    pub concurrent: usize,
    /// The share of calls of every endpoint that fail in the faults condition.
    pub fault_rate: f64,
    /// The data-segment limit of the memory condition, in bytes.
    pub memory_cap: u64,
    pub activity: f64,
    pub seed: u64,
    /// The `pipeline` binary.
    pub pipeline: PathBuf,
}

/// Latencies of one stage over the runs of a line, in milliseconds (nearest rank).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLatency {
    pub stage: String,
    pub runs: usize,
    pub p50_ms: i64,
    pub p95_ms: i64,
    pub p99_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadLine {
    pub condition: Condition,
    /// What ran: `backfill, 2 workers`, `4 runs of 2024-06-30`...
    pub label: String,
    pub workers: usize,
    pub dates: u32,
    pub seconds: f64,
    /// Trades of the dates (inside the day), per second of the line.
    pub trades_per_second: f64,
    pub dates_per_minute: f64,
    /// Over the first line of the normal condition (normal only).
    pub speed_up: Option<f64>,
    pub stages: Vec<StageLatency>,
    /// The largest resident set of the pipeline's processes at once (sampled every 50 ms), in MiB.
    pub peak_rss_mib: f64,
    /// User and system CPU of the pipeline's processes.
    pub cpu_seconds: f64,
    /// Requests that repeated one whose answer failed, and requests a fault rule acted on.
    pub retries: u64,
    pub faults_injected: u64,
    /// Processes that exited 0 (or 1, "passed with warnings") and dates whose partitions equal the truth.
    pub succeeded: u32,
    pub failed: u32,
    pub success_rate: f64,
    /// Candles of the truth missing, and landed candles beyond the truth (duplicates, strays).
    pub rows_lost: u64,
    pub rows_extra: u64,
    pub memory_cap_mib: Option<f64>,
}

/// What the benchmark reports as it goes.
#[derive(Debug)]
pub enum LoadEvent<'a> {
    Starting { condition: Condition, label: &'a str },
    Finished(&'a LoadLine),
}

/// Runs the benchmark: one line per worker count (normal), two (high), one each (faults, memory).
pub async fn run(options: &LoadOptions, on_event: &dyn Fn(LoadEvent<'_>)) -> Result<Vec<LoadLine>, RunError> {
    let server = Arc::new(PostgresServer::provision().await?);
    let workers = options.workers.last().copied().unwrap_or(2).max(1);
    let mut lines: Vec<LoadLine> = Vec::new();
    for &condition in &options.conditions {
        let mut plans: Vec<(String, Plan)> = Vec::new();
        match condition {
            Condition::Normal => {
                for &w in &options.workers {
                    plans.push((format!("backfill, {w} worker{}", if w == 1 { "" } else { "s" }), Plan::Backfill(w)));
                }
            }
            Condition::High => {
                let last = options.range.end();
                plans.push((
                    format!("{} runs of {last}", options.concurrent),
                    Plan::Daily(vec![last; options.concurrent]),
                ));
                let days: Vec<TradingDay> = options.range.days().rev().take(options.concurrent).collect();
                plans.push((format!("{} runs of {} dates", days.len(), days.len()), Plan::Daily(days)));
            }
            Condition::Faults => plans.push((
                format!("backfill, {workers} workers, {:.0}% of calls fail", options.fault_rate * 100.0),
                Plan::Backfill(workers),
            )),
            Condition::Memory => plans.push((
                format!("backfill, {workers} workers, data ≤ {} MiB", options.memory_cap >> 20),
                Plan::Backfill(workers),
            )),
        }
        for (label, plan) in plans {
            on_event(LoadEvent::Starting { condition, label: &label });
            let mut line = measure(&server, options, condition, &label, &plan).await?;
            if condition == Condition::Normal {
                let first = lines.iter().find(|l| l.condition == Condition::Normal).map(|l| l.dates_per_minute);
                line.speed_up = Some(line.dates_per_minute / first.unwrap_or(line.dates_per_minute));
            }
            on_event(LoadEvent::Finished(&line));
            lines.push(line);
        }
    }
    Ok(lines)
}

enum Plan {
    /// `pipeline backfill` of the range with this many workers.
    Backfill(usize),
    /// `pipeline run --date D` for each date, all at once.
    Daily(Vec<TradingDay>),
}

/// The faults condition's scenario: every endpoint fails `rate` of its calls with a transient 503.
fn transient_faults(rate: f64, seed: u64) -> Scenario {
    let endpoints = [
        Endpoint::TardisDatasets,
        Endpoint::TardisExchanges,
        Endpoint::TardisInstruments,
        Endpoint::BigQueryDatasets,
        Endpoint::BigQueryTables,
        Endpoint::BigQueryUpload,
        Endpoint::BigQueryJobsGet,
        Endpoint::BigQueryTabledata,
    ];
    let faults = endpoints
        .into_iter()
        .enumerate()
        .map(|(i, endpoint)| Fault {
            endpoint,
            select: Select::Probability { p: rate, seed: seed.wrapping_add(i as u64) },
            action: Action::Answer(Answer {
                status: 503,
                retry_after: None,
                body: endpoint.error_body(503, Some("backendError")),
                after_forwarding: false,
            }),
            retryable: true,
        })
        .collect();
    Scenario {
        name: "load-transient-faults".to_owned(),
        description: format!("{:.0}% of the calls of every endpoint answer 503", rate * 100.0),
        expect: Expectation::Recovers,
        profile: Profile::Nightly,
        cause: Vec::new(),
        max_attempts: 8,
        faults,
        export_lag: None,
        jobs: JobFaults::default(),
        postgres: None,
        process: None,
        environment: Vec::new(),
    }
}

async fn measure(
    server: &Arc<PostgresServer>,
    options: &LoadOptions,
    condition: Condition,
    label: &str,
    plan: &Plan,
) -> Result<LoadLine, RunError> {
    let range = options.range;
    let mut world =
        World::start_on(server.clone(), WorldOptions::new(options.seed, range.end()).activity(options.activity))
            .await?;
    let rate = if condition == Condition::Faults { options.fault_rate } else { 0.0 };
    let scenario = transient_faults(rate, options.seed);
    let scenario = if rate > 0.0 { scenario } else { Scenario { faults: Vec::new(), ..scenario } };
    let armed = Armed::arm(&scenario, range.end(), options.seed, (&world.tardis, &world.bigquery), None, None).await?;
    world.route_through(armed.via());
    // The tables exist before the clock starts: concurrent first runs would otherwise race to create them.
    let store = Store::connect(world.database.url()).await?;
    let logs = world.data_dir.path().join("logs");
    let mut commands: Vec<tokio::process::Command> = match plan {
        Plan::Backfill(workers) => vec![pipeline_command(&world, &options.pipeline, |c| {
            c.arg("backfill")
                .arg(range.start().to_string())
                .arg(range.end().to_string())
                .args(["--execute", "--retry-delay", "0", "--max-days", "366", "--parallel"])
                .arg(workers.to_string())
                .arg("--log-dir")
                .arg(&logs);
        })],
        Plan::Daily(days) => days
            .iter()
            .map(|day| {
                pipeline_command(&world, &options.pipeline, |c| {
                    c.arg("run").arg("--date").arg(day.to_string());
                })
            })
            .collect(),
    };
    let cap = (condition == Condition::Memory).then_some(options.memory_cap);
    let started = Instant::now();
    let mut children = Vec::new();
    for command in &mut commands {
        let child = command
            .spawn()
            .map_err(|source| RunError::Spawn { program: options.pipeline.display().to_string(), source })?;
        if let (Some(cap), Some(pid)) = (cap, child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32))) {
            let limit = rustix::process::Rlimit { current: Some(cap), maximum: Some(cap) };
            rustix::process::prlimit(Some(pid), rustix::process::Resource::Data, limit).map_err(|e| RunError::Io {
                what: "limit the data segment of",
                path: options.pipeline.clone(),
                source: e.into(),
            })?;
        }
        children.push(child);
    }
    let pids: Vec<u32> = children.iter().filter_map(tokio::process::Child::id).collect();
    let usage = Arc::new(std::sync::Mutex::new(Usage::default()));
    let sampler = tokio::spawn(sample(pids, usage.clone()));
    let mut exits = Vec::new();
    for mut child in children {
        exits.push(child.wait().await.ok().and_then(|s| s.code()));
    }
    let seconds = started.elapsed().as_secs_f64();
    sampler.abort();
    let _ = sampler.await;
    let usage = totals(&usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner));

    let days: Vec<TradingDay> = match plan {
        Plan::Backfill(_) => range.days().collect(),
        Plan::Daily(days) => days.iter().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
    };
    let (mut trades, mut lost, mut extra, mut whole) = (0, 0, 0, 0u32);
    for &day in &days {
        let truth = world.generator.day_truth(day);
        trades += crate::scoring::ExpectedCounts::of(&truth).trades_in_day;
        let landed = landed_candles(&world.bigquery, day).map_err(RunError::Landed)?;
        let expected: HashSet<(String, String, i64)> =
            truth.candles().map(|c| (c.exchange.to_string(), c.symbol.to_string(), c.open_time_us)).collect();
        let mut seen = HashSet::new();
        let (mut matched, mut stray) = (0u64, 0u64);
        for c in &landed {
            let key = (c.exchange.to_string(), c.symbol.to_string(), c.open_time_us);
            if expected.contains(&key) && seen.insert(key) {
                matched += 1;
            } else {
                stray += 1;
            }
        }
        let day_lost = expected.len() as u64 - matched;
        lost += day_lost;
        extra += stray;
        if day_lost == 0 && stray == 0 {
            whole += 1;
        }
    }
    let ok_exits = exits.iter().filter(|c| matches!(c, Some(0 | 1))).count() as u32;
    let (succeeded, attempts) = match plan {
        // A backfill is one process; its dates are what succeeded or not.
        Plan::Backfill(_) => (if ok_exits == 1 { whole } else { 0 }, days.len() as u32),
        Plan::Daily(runs) => (if whole == days.len() as u32 { ok_exits } else { 0 }, runs.len() as u32),
    };
    let mut durations: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for &day in &days {
        for run in store.runs_of_day(day).await? {
            for (stage, status, ms) in run.stages {
                if status == "succeeded" {
                    durations.entry(stage).or_default().push(ms);
                }
            }
        }
    }
    let requests = armed.requests();
    Ok(LoadLine {
        condition,
        label: label.to_owned(),
        workers: match plan {
            Plan::Backfill(w) => *w,
            Plan::Daily(runs) => runs.len(),
        },
        dates: days.len() as u32,
        seconds,
        trades_per_second: trades as f64 / seconds,
        dates_per_minute: days.len() as f64 / seconds * 60.0,
        speed_up: None,
        stages: durations.into_iter().map(|(stage, ms)| latency(stage, ms)).collect(),
        peak_rss_mib: usage.0 as f64 / 1024.0,
        cpu_seconds: usage.1,
        retries: crate::recovery::retries(&requests),
        faults_injected: requests.iter().filter(|(_, r)| r.fault.is_some()).count() as u64,
        succeeded,
        failed: attempts - succeeded,
        success_rate: f64::from(succeeded) / f64::from(attempts.max(1)),
        rows_lost: lost,
        rows_extra: extra,
        memory_cap_mib: cap.map(|c| c as f64 / f64::from(1u32 << 20)),
    })
}

fn pipeline_command(
    world: &World,
    pipeline: &Path,
    args: impl FnOnce(&mut tokio::process::Command),
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(pipeline);
    args(&mut command);
    command
        .envs(crate::environment::command_vars(&world.environment()))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Nearest-rank percentiles.
fn latency(stage: String, mut ms: Vec<i64>) -> StageLatency {
    ms.sort_unstable();
    let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    StageLatency { stage, runs: ms.len(), p50_ms: rank(0.50), p95_ms: rank(0.95), p99_ms: rank(0.99) }
}

/// What `/proc` said of each process: its high-water resident set (KiB) and CPU ticks, and the largest resident
/// set seen (one process's high-water mark, or the sum of all at one sample).
#[derive(Debug, Default)]
struct Usage {
    rss_kib: HashMap<u32, u64>,
    ticks: HashMap<u32, u64>,
    peak_kib: u64,
}

/// The peak resident set (KiB) and the CPU seconds (CLK_TCK is 100 on Linux).
fn totals(usage: &Usage) -> (u64, f64) {
    (usage.peak_kib, usage.ticks.values().sum::<u64>() as f64 / 100.0)
}

/// Samples the processes into `usage` every 50 ms, until aborted.
async fn sample(pids: Vec<u32>, usage: Arc<std::sync::Mutex<Usage>>) {
    loop {
        {
            let mut u = usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut now = 0;
            for &pid in &pids {
                if let Some((rss, hwm)) = status_kib(pid) {
                    u.rss_kib.insert(pid, hwm);
                    now += rss;
                }
                if let Some(ticks) = cpu_ticks(pid) {
                    u.ticks.insert(pid, ticks);
                }
            }
            let single = u.rss_kib.values().copied().max().unwrap_or(0);
            u.peak_kib = u.peak_kib.max(now).max(single);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `VmRSS` and `VmHWM` of a live process, in KiB.
fn status_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User plus system CPU ticks of a process (`/proc/PID/stat`, fields 14 and 15).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = latency("download".to_owned(), (1..=100).rev().collect());
        assert_eq!((l.runs, l.p50_ms, l.p95_ms, l.p99_ms), (100, 50, 95, 99));
        let one = latency("upload".to_owned(), vec![7]);
        assert_eq!((one.p50_ms, one.p99_ms), (7, 7));
    }

    #[test]
    fn this_process_is_readable_in_proc() {
        let (rss, hwm) = status_kib(std::process::id()).expect("our own status");
        assert!(rss > 0 && hwm >= rss);
        assert!(cpu_ticks(std::process::id()).is_some());
    }
}
