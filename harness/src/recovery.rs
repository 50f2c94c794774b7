//! Runs fault scenarios and judges them: a fresh world per scenario, the scenario armed on it, the pipeline (in
//! process, the `pipeline` binary for process faults, or any command) run for one date, then what landed scored
//! against truth and the fronts' request logs read for the behaviour checks: retries bounded, `Retry-After`
//! honoured, no retry of a non-retryable error, no row loaded twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use market::TradingDay;
use market::checks::Status;
use pipeline::Selection;
use serde_json::Value;
use tokio::process::Command;

use crate::environment::{DATASET, PROJECT};
use crate::external::{Ended, PipelineCommand, command_with_environment, shell_quote, supervise, supervise_until};
use crate::faults::{Armed, Database, Side};
use crate::postgres::PostgresServer;
use crate::report::Report;
use crate::run::{RunError, restrict_universe, score_world};
use crate::scenario::{Expectation, Outcome, Scenario, ScenarioResult, Signal, Verdict};
use crate::world::{World, WorldOptions};

/// What runs the date.
#[derive(Debug, Clone)]
pub enum Target {
    /// The reference pipeline in process; its binary (`pipeline_bin`) when the scenario kills the process.
    Reference { pipeline_bin: PathBuf },
    /// Any command (`--pipeline-cmd`), `{date}` replaced by the date.
    Command(PipelineCommand),
}

#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    pub day: TradingDay,
    pub seed: u64,
    pub activity: f64,
    pub symbols: Option<Selection>,
    pub target: Target,
    /// Each run of a command is stopped after this long.
    pub timeout: Duration,
}

/// What one run of the pipeline said.
struct Ran {
    failed: bool,
    exit_code: Option<i32>,
    cause: Option<String>,
    outcome: Option<pipeline::RunOutcome>,
}

impl Ran {
    /// A command's run; `warn_passes` for the reference binary, whose exit 1 is "passed with warnings".
    fn of(ended: &Ended, warn_passes: bool) -> Ran {
        let failed = !(ended.exit_code == 0 || (warn_passes && ended.exit_code == 1));
        let cause = failed.then(|| ended.tail.iter().rev().take(20).rev().cloned().collect::<Vec<_>>().join("\n"));
        Ran { failed, exit_code: Some(ended.exit_code), cause, outcome: None }
    }
}

/// Runs `scenario` in a fresh world on `server`; the result and the scored report of the date.
pub async fn run(
    server: Arc<PostgresServer>,
    scenario: &Scenario,
    options: &ScenarioOptions,
) -> Result<(ScenarioResult, Report), RunError> {
    let mut world_options = WorldOptions::new(options.seed, options.day).activity(options.activity);
    if let Some(symbols) = &options.symbols {
        world_options.universe = restrict_universe(&world_options.universe, symbols)?;
    }
    let mut world = World::start_on(server.clone(), world_options).await?;
    let database = Database {
        admin_url: server.admin_url().to_owned(),
        name: world.database.name().to_owned(),
        url: world.database.url().to_owned(),
    };
    let armed =
        Armed::arm(scenario, options.day, options.seed, (&world.tardis, &world.bigquery), None, Some(database)).await?;
    world.route_through(armed.via());
    for (var, value) in &scenario.environment {
        world.set_var(*var, value.clone());
    }
    let started_at = Utc::now();
    let started = Instant::now();
    let mut notes = Vec::new();
    let mut resume: Option<Duration> = None;
    let ran = match (&scenario.process, &options.target) {
        (None, Target::Reference { .. }) => in_process(&world, options.day).await,
        (None, Target::Command(command)) => {
            let ended = run_command(&world, command, options).await?;
            Ran::of(&ended, false)
        }
        (Some(process), target) => {
            let command = match target {
                Target::Command(command) => command.clone(),
                Target::Reference { pipeline_bin } => PipelineCommand {
                    template: format!(
                        "RUST_LOG=warn {} run --date {{date}}",
                        shell_quote(&pipeline_bin.display().to_string())
                    ),
                    timeout: options.timeout,
                },
            };
            let signal = match process.signal {
                Signal::Kill => rustix::process::Signal::KILL,
                Signal::Term => rustix::process::Signal::TERM,
            };
            let trigger = armed.trigger(process.when, options.seed);
            let fired = Arc::new(std::sync::Mutex::new(None));
            let (fired_at, clock) = (fired.clone(), Instant::now());
            let stop = async move {
                trigger.await;
                *fired_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(clock.elapsed());
                signal
            };
            let first = supervise_until(shell(&world, &command, options.day), true, Some(command.timeout), stop)
                .await
                .map_err(|source| RunError::Spawn { program: "sh -c".to_owned(), source })?;
            let fired = *fired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            notes.push(match fired {
                Some(at) if first.exit_code != 0 => {
                    format!(
                        "{} after {} ms; the run ended with status {}",
                        process.signal.as_str(),
                        at.as_millis(),
                        first.exit_code
                    )
                }
                Some(at) => format!(
                    "{} after {} ms, as the run was finishing (status 0)",
                    process.signal.as_str(),
                    at.as_millis()
                ),
                None => format!("the run ended (status {}) before the {}", first.exit_code, process.signal.as_str()),
            });
            let resumed = Instant::now();
            let ended = run_command(&world, &command, options).await?;
            resume = Some(resumed.elapsed());
            notes.push(format!(
                "resumed with the same command: status {} in {} ms",
                ended.exit_code,
                resumed.elapsed().as_millis()
            ));
            Ran::of(&ended, matches!(target, Target::Reference { .. }))
        }
    };
    let end = armed.elapsed();
    let duration = started.elapsed();
    // A Postgres fault still under way (a lock held, connections refused) ends before the judging.
    let mut armed = armed;
    armed.settle(Duration::from_secs(30)).await;
    notes.extend(armed.notes());
    let report = score_world(&world, options.day, ran.outcome.as_ref(), started_at)?;
    let mut result = judge(scenario, &world, &armed, &report, &ran, end, duration, notes);
    // After a kill, recovering is the resume.
    if let (Some(resume), Outcome::Recovered) = (resume, result.outcome) {
        result.recover_ms = Some(resume.as_millis() as u64);
    }
    Ok((result, report))
}

/// What `run_many` reports as it goes.
#[derive(Debug)]
pub enum ScenarioEvent<'a> {
    Starting { scenario: &'a Scenario, index: usize, of: usize },
    Finished(&'a ScenarioResult),
}

/// Runs every scenario in turn, each in a fresh world on one Postgres server.
pub async fn run_many(
    scenarios: &[Scenario],
    options: &ScenarioOptions,
    on_event: &dyn Fn(ScenarioEvent<'_>),
) -> Result<Vec<(ScenarioResult, Report)>, RunError> {
    let server = Arc::new(PostgresServer::provision().await?);
    let mut results = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        on_event(ScenarioEvent::Starting { scenario, index, of: scenarios.len() });
        let (result, mut report) = run(server.clone(), scenario, options).await?;
        on_event(ScenarioEvent::Finished(&result));
        report.sections.scenario = Some(result.clone());
        results.push((result, report));
    }
    Ok(results)
}

/// The reference pipeline in process; a failure to connect or to record is a failed run, not an error of the
/// harness (it is what some scenarios do to it).
async fn in_process(world: &World, day: TradingDay) -> Ran {
    let pipeline = match world.pipeline().await {
        Ok(pipeline) => pipeline,
        Err(err) => return Ran { failed: true, exit_code: None, cause: Some(format!("{err:#}")), outcome: None },
    };
    match pipeline.run_day(day, "harness").await {
        // As the exit contract has it: a run fails unless it succeeded and its validation did not fail.
        Ok(outcome) => {
            let (failed, cause) = match (&outcome.error, &outcome.validation) {
                (Some(error), _) => (true, Some(error.clone())),
                (None, Some(v)) if v.status >= Status::Fail => {
                    let failing: Vec<&str> =
                        v.checks.iter().filter(|c| c.status >= Status::Fail).map(|c| c.id.as_str()).collect();
                    (true, Some(format!("validation {}: {}", v.status.as_str(), failing.join(", "))))
                }
                (None, Some(_)) => (false, None),
                (None, None) => (true, Some("the run recorded no validation".to_owned())),
            };
            Ran { failed, exit_code: None, cause, outcome: Some(outcome) }
        }
        Err(err) => Ran { failed: true, exit_code: None, cause: Some(err.to_string()), outcome: None },
    }
}

fn shell(world: &World, command: &PipelineCommand, day: TradingDay) -> Command {
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(command.for_day(day)).env("NO_COLOR", "1");
    command_with_environment(shell, &world.environment())
}

async fn run_command(world: &World, command: &PipelineCommand, options: &ScenarioOptions) -> Result<Ended, RunError> {
    supervise(shell(world, command, options.day), true, Some(command.timeout))
        .await
        .map_err(|source| RunError::Spawn { program: "sh -c".to_owned(), source })
}

/// A failed answer: an injected fault, no answer, or a status a client retries (a 404 on an existence check
/// is an answer, not a failure).
fn failed(request: &fakes::front::FrontRequest) -> bool {
    request.fault.is_some() || request.status.is_none_or(|s| matches!(s, 408 | 429) || s >= 500)
}

#[allow(clippy::too_many_arguments)]
fn judge(
    scenario: &Scenario,
    world: &World,
    armed: &Armed,
    report: &Report,
    ran: &Ran,
    end: Duration,
    duration: Duration,
    notes: Vec<String>,
) -> ScenarioResult {
    let day = report.date;
    let candles = world.bigquery.partition_rows(PROJECT, DATASET, "candles_1m", &day.compact());
    let instruments = world.bigquery.partition_rows(PROJECT, DATASET, "instruments", &day.compact());
    let clean = candles.is_empty() && instruments.is_empty();
    let outcome = match (report.status == Status::Pass && !ran.failed, ran.failed, clean) {
        (true, _, _) => Outcome::Recovered,
        (false, true, true) => Outcome::FailedCleanly,
        (false, true, false) => Outcome::FailedDirty,
        (false, false, _) => Outcome::WrongData,
    };
    let mut findings = Vec::new();
    match scenario.expect {
        Expectation::Recovers if outcome != Outcome::Recovered => {
            let why = ran.cause.as_deref().map(|c| format!(": {}", last_line(c))).unwrap_or_default();
            let failing: Vec<&str> =
                report.checks.iter().filter(|c| c.status != Status::Pass).map(|c| c.id.as_str()).collect();
            findings.push(format!(
                "expected to recover, {} (checks not passing: {}){why}",
                outcome.as_str(),
                if failing.is_empty() { "none".to_owned() } else { failing.join(", ") }
            ));
        }
        Expectation::FailsCleanly if outcome != Outcome::FailedCleanly => {
            let left =
                format!("{} candle and {} instrument rows in the date's partitions", candles.len(), instruments.len());
            findings.push(format!("expected to fail cleanly, {} ({left})", outcome.as_str()));
        }
        Expectation::FailsCleanly => {
            let said = ran.cause.clone().unwrap_or_default().to_lowercase();
            if !scenario.cause.is_empty() && !scenario.cause.iter().any(|word| said.contains(&word.to_lowercase())) {
                findings.push(format!(
                    "the failure does not name its cause ({}): {}",
                    scenario.cause.join(" or "),
                    last_line(ran.cause.as_deref().unwrap_or("nothing was said"))
                ));
            }
        }
        Expectation::Recovers => {}
    }
    let requests = armed.requests();
    findings.extend(behaviour(scenario, &requests));
    findings.extend(duplicates(&candles, &["exchange", "symbol", "open_time"], "candles_1m"));
    findings.extend(duplicates(&instruments, &["exchange", "dataset_id"], "instruments"));
    let injected = requests.iter().filter(|(_, r)| r.fault.is_some()).count() as u64;
    let retries = retries(&requests);
    let first_fault = requests.iter().find(|(_, r)| r.fault.is_some()).map(|(_, r)| r.at);
    // Whether anything was done to the pipeline at all: a fault on a call it never makes, or on a database it
    // does not keep, tells nothing about it.
    let missed_postgres = scenario.postgres.is_some() && armed.postgres_met() == Some(false);
    let struck = injected > 0
        || scenario.export_lag.is_some()
        || scenario.jobs.running_polls > 0
        || !scenario.jobs.job_errors.is_empty()
        || (scenario.postgres.is_some() && !missed_postgres)
        || scenario.process.is_some();
    let mut notes = notes;
    let verdict = if !struck {
        if missed_postgres {
            notes.push("the pipeline had no connection to the database when the Postgres fault struck".to_owned());
        } else {
            let endpoints: Vec<&str> = scenario.faults.iter().map(|f| f.endpoint.name()).collect();
            notes.push(format!("no call to {} was made: nothing was injected", endpoints.join(", ")));
        }
        notes.extend(findings.drain(..).map(|f| format!("(not judged) {f}")));
        Verdict::NotApplicable
    } else if findings.is_empty() {
        Verdict::Met
    } else {
        Verdict::NotMet
    };
    ScenarioResult {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        expectation: scenario.expect,
        outcome,
        verdict,
        faults_injected: injected,
        retries,
        recover_ms: (outcome == Outcome::Recovered)
            .then(|| first_fault.map(|at| end.saturating_sub(at).as_millis() as u64))
            .flatten(),
        duration_ms: duration.as_millis() as u64,
        exit_code: ran.exit_code,
        cause: ran.cause.as_deref().map(last_line),
        findings,
        notes,
    }
}

fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().chars().take(300).collect()
}

type Url<'a> = (Side, &'a str, String, Option<&'a str>);

/// The job a BigQuery request creates, from the `jobReference.jobId` near the start of its body: two uploads to
/// the same URL are one request tried twice only when they carry the same job.
fn job_id(body: &str) -> Option<&str> {
    let at = body.find("\"jobId\"")? + "\"jobId\"".len();
    let rest = body[at..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    rest.split('"').next()
}

/// What a request asks for: its URL without the attempt counter some clients add (`retryAttempt=N`, as the
/// official Tardis clients do), and the job it creates, if any. The same key twice is one request tried again.
fn url_of(side: Side, request: &fakes::front::FrontRequest) -> Url<'_> {
    let path = match request.path.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query.split('&').filter(|pair| !pair.starts_with("retryAttempt=")).collect();
            if kept.is_empty() { path.to_owned() } else { format!("{path}?{}", kept.join("&")) }
        }
        None => request.path.clone(),
    };
    (side, request.method.as_str(), path, job_id(&request.body_head))
}

/// Requests that repeat a URL whose previous answer failed.
pub(crate) fn retries(requests: &[(Side, fakes::front::FrontRequest)]) -> u64 {
    let mut last_failed: HashMap<Url<'_>, bool> = HashMap::new();
    let mut retries = 0;
    for (side, r) in requests {
        let url = url_of(*side, r);
        if last_failed.get(&url).copied().unwrap_or(false) {
            retries += 1;
        }
        last_failed.insert(url, failed(r));
    }
    retries
}

/// The behaviour checks read from the request log.
fn behaviour(scenario: &Scenario, requests: &[(Side, fakes::front::FrontRequest)]) -> Vec<String> {
    let mut findings = Vec::new();
    // Bounded: failed answers per URL.
    let mut failures: BTreeMap<Url<'_>, u32> = BTreeMap::new();
    for (side, r) in requests.iter().filter(|(_, r)| failed(r)) {
        *failures.entry(url_of(*side, r)).or_default() += 1;
    }
    if let Some(((_, method, path, _), n)) =
        failures.iter().filter(|(_, n)| **n > scenario.max_attempts).max_by_key(|(_, n)| **n)
    {
        findings.push(format!(
            "retries not bounded: {method} {path} failed {n} times (a good client stops after {})",
            scenario.max_attempts
        ));
    }
    // Retry-After honoured, and no retry of what is not retryable.
    let not_retryable: HashSet<String> = scenario
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.retryable)
        .map(|(i, f)| format!("{} #{}", f.endpoint.name(), i + 1))
        .collect();
    for (i, (side, r)) in requests.iter().enumerate() {
        let url = url_of(*side, r);
        let next = requests[i + 1..].iter().find(|(s, n)| url_of(*s, n) == url);
        let Some((_, next)) = next else { continue };
        if let Some(seconds) = r.retry_after.filter(|_| failed(r)) {
            let waited = next.at.saturating_sub(r.at);
            // The front logs arrivals: the client cannot have waited less than the gap between them, less a
            // little for the first answer's travel.
            if waited + Duration::from_millis(20) < Duration::from_secs(seconds) {
                findings.push(format!(
                    "Retry-After not honoured: {} {} was retried after {} ms, the server asked for {seconds} s",
                    r.method,
                    r.path,
                    waited.as_millis()
                ));
            }
        }
        if let Some(rule) = r.fault.as_deref().and_then(|f| f.split(':').next())
            && not_retryable.contains(rule)
        {
            findings.push(format!(
                "a non-retryable error was retried: {} {} after {}",
                r.method,
                r.path,
                r.fault.as_deref().unwrap_or_default()
            ));
        }
    }
    findings.sort();
    findings.dedup_by(|a, b| a.split(':').next() == b.split(':').next());
    findings
}

/// Rows of a partition that share a key: a load that landed twice.
fn duplicates(rows: &[serde_json::Map<String, Value>], key: &[&str], table: &str) -> Option<String> {
    let mut seen = HashSet::new();
    let twice = rows
        .iter()
        .filter(|row| {
            !seen.insert(key.iter().map(|k| row.get(*k).map(Value::to_string).unwrap_or_default()).collect::<Vec<_>>())
        })
        .count();
    (twice > 0).then(|| format!("duplicate load: {twice} {table} rows share a key with another row of the date"))
}

#[cfg(test)]
mod tests {
    use fakes::front::FrontRequest;

    use super::*;

    fn request(
        at_ms: u64,
        path: &str,
        status: u16,
        retry_after: Option<u64>,
        fault: Option<&str>,
    ) -> (Side, FrontRequest) {
        let request = FrontRequest {
            at: Duration::from_millis(at_ms),
            method: "GET".to_owned(),
            path: path.to_owned(),
            status: Some(status),
            retry_after,
            fault: fault.map(str::to_owned),
            body_head: String::new(),
        };
        (Side::Tardis, request)
    }

    fn scenario(text: &str) -> Scenario {
        Scenario::parse(&format!("description = \"x\"\nexpect = \"recovers\"\n{text}"), "test", "test").expect("valid")
    }

    const FILE: &str = "/v1/bitmex/trades/2024/06/03/XBTUSD.csv.gz";

    #[test]
    fn a_retry_before_retry_after_is_a_finding_and_one_after_it_is_not() {
        let s = scenario("[[fault]]\nendpoint = \"tardis.datasets\"\nfirst = 1\nstatus = 429\nretry_after = 2\n");
        let fault = Some("tardis.datasets #1: status 429, retry after 2 s");
        let early =
            [request(0, FILE, 429, Some(2), fault), request(500, &format!("{FILE}?retryAttempt=1"), 200, None, None)];
        let findings = behaviour(&s, &early);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].contains("retried after 500 ms, the server asked for 2 s"), "{findings:?}");
        let patient =
            [request(0, FILE, 429, Some(2), fault), request(2001, &format!("{FILE}?retryAttempt=1"), 200, None, None)];
        assert_eq!(behaviour(&s, &patient), Vec::<String>::new());
        assert_eq!(retries(&patient), 1, "the attempt counter does not make it another URL");
    }

    #[test]
    fn a_retried_non_retryable_error_and_unbounded_retries_are_findings() {
        let s = scenario("max_attempts = 2\n[[fault]]\nendpoint = \"tardis.datasets\"\nstatus = 401\n");
        let fault = Some("tardis.datasets #1: status 401");
        let log: Vec<_> = (0..3).map(|i| request(i * 10, FILE, 401, None, fault)).collect();
        let findings = behaviour(&s, &log);
        assert!(findings.iter().any(|f| f.starts_with("a non-retryable error was retried")), "{findings:?}");
        assert!(findings.iter().any(|f| f.contains("failed 3 times (a good client stops after 2)")), "{findings:?}");
        assert_eq!(behaviour(&s, &log[..1]), Vec::<String>::new(), "one attempt is what a good client makes");
    }

    #[test]
    fn two_uploads_to_one_url_are_one_request_only_when_they_carry_the_same_job() {
        let upload = |job: &str| {
            let (side, mut r) = request(0, "/upload/bigquery/v2/projects/p/jobs?uploadType=multipart", 503, None, None);
            r.body_head =
                format!("--b\r\ncontent-type: application/json\r\n\r\n{{\"jobReference\": {{\"jobId\": \"{job}\"}}}}");
            (side, r)
        };
        assert_eq!(retries(&[upload("candles_1"), upload("instruments_1")]), 0);
        assert_eq!(retries(&[upload("candles_1"), upload("candles_1")]), 1);
    }

    #[test]
    fn rows_sharing_a_key_are_a_duplicate_load() {
        let row = |minute: i64| serde_json::json!({"exchange": "bitmex", "symbol": "XBTUSD", "open_time": minute});
        let rows: Vec<serde_json::Map<String, Value>> =
            [row(0), row(60), row(0)].into_iter().filter_map(|v| v.as_object().cloned()).collect();
        let finding = duplicates(&rows, &["exchange", "symbol", "open_time"], "candles_1m").expect("a duplicate");
        assert!(finding.contains("1 candles_1m rows"), "{finding}");
        assert_eq!(duplicates(&rows[..2], &["exchange", "symbol", "open_time"], "candles_1m"), None);
    }
}
