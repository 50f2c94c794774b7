//! External pipelines: `harness exec` runs any command against the fakes and a provisioned Postgres with the
//! documented environment and exits with its status; `harness run --pipeline-cmd` runs a command for one date
//! the same way, then scores what it wrote to the fake BigQuery against ground truth, like the in-process
//! pipeline (README "External pipelines").
//!
//! The environment is the whole interface and the tables are the whole output: nothing here looks inside the
//! command, installs what it needs, or reads records it may keep in Postgres.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use fakes::bigquery::FakeBigQuery;
use fakes::tardis::{MockTardis, TardisOptions};
use fixtures::{Generator, Universe};
use market::checks::{CheckOutcome, Family, Sample, Threshold};
use market::{DateRange, Exchange, Symbol, TradingDay};
use pipeline::Selection;
use pipeline::env::Environment;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

use crate::environment::{DATASET, Endpoints, PROJECT, REMOVED_VARIABLES, command_vars, describe, environment};
use crate::postgres::PostgresServer;
use crate::report::{ExternalSection, Report};
use crate::run::{RunError, RunOptions, restrict_universe, score_world, write_report};
use crate::world::World;

/// Lines of the command's output kept for the report.
const TAIL_LINES: usize = 20;
/// Between SIGTERM and SIGKILL when `--pipeline-timeout` strikes.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// How long the output of a finished command is still read (a background process it left behind may hold its
/// pipes open forever).
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// What the harness says before it starts a command: where the fakes, the database and the data are, the
/// command's environment (secrets hidden) and the command line. The caller shows it.
#[derive(Debug, Clone, Default)]
pub struct Starting {
    /// One line per service: `mock Tardis http://127.0.0.1:PORT (generated, seed 42, ...)`.
    pub services: Vec<String>,
    /// The environment, one `  NAME=value` line per variable.
    pub environment: String,
    /// The command line as a shell would read it.
    pub command_line: String,
    /// Things the user should know (a `--pipeline-cmd` without `{date}`).
    pub warnings: Vec<String>,
}

/// `command` with the environment `env` gives it (see `environment.rs`), minus [`REMOVED_VARIABLES`].
pub(crate) fn command_with_environment(mut command: Command, env: &Environment) -> Command {
    command.envs(command_vars(env));
    for var in REMOVED_VARIABLES {
        command.env_remove(var.name());
    }
    command
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// As a shell reports it: the exit code, or 128 + n when signal n ended the command.
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration: Duration,
    /// The last lines it printed (only when its output was captured).
    pub tail: Vec<String>,
}

fn shell_status(status: ExitStatus) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(signal)) => (128 + signal, Some(signal)),
        // Neither happens on Unix for a waited-for child; report it as a failure of unknown cause.
        (None, None) => (1, None),
    }
}

/// Sends `signal` to the command's process group (the command and whatever it started, `sh -c` included), or
/// to the command alone when it shares the harness's group.
fn send(pid: Option<u32>, own_group: bool, signal: rustix::process::Signal) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw) else {
        return;
    };
    // ESRCH: it is already gone, which is what a signal would have achieved.
    let _ = if own_group {
        rustix::process::kill_process_group(pid, signal)
    } else {
        rustix::process::kill_process(pid, signal)
    };
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Copies a stream of the command to our stderr, line by line, keeping the last lines.
fn tee(
    stream: impl AsyncRead + Unpin + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buffer).trim_end_matches(['\n', '\r']).to_owned();
                    eprintln!("  │ {line}");
                    let mut tail = tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        }
    })
}

/// Runs `command` until it ends, and makes SIGINT and SIGTERM reaching the harness reach it exactly once.
///
/// With `capture` (no terminal: its output is copied to our stderr and its last lines kept) or when our stdin is
/// not a terminal, it runs in a process group of its own and both signals are forwarded to that group. On a
/// terminal it stays in the foreground group and keeps the terminal: Ctrl+C reaches it from the terminal (not
/// forwarded again), SIGTERM is forwarded, and an interactive command (`harness exec -- bash`) works. After
/// `timeout` it gets SIGTERM, then SIGKILL.
pub async fn supervise(command: Command, capture: bool, timeout: Option<Duration>) -> std::io::Result<Ended> {
    supervise_until(command, capture, timeout, std::future::pending()).await
}

/// [`supervise`], and when `stop` resolves, its signal is sent to the command (a fault scenario's kill).
pub async fn supervise_until(
    mut command: Command,
    capture: bool,
    timeout: Option<Duration>,
    stop: impl std::future::Future<Output = rustix::process::Signal>,
) -> std::io::Result<Ended> {
    let own_group = capture || !std::io::stdin().is_terminal();
    command.kill_on_drop(true);
    if own_group {
        command.process_group(0);
    }
    if capture {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    // Registered before the spawn: from here on the signals reach us as events, not as our death.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let started = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id();
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tee(stdout, tail.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tee(stderr, tail.clone()));
    }
    let mut deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut kill_at = None;
    let mut timed_out = false;
    let mut stop = std::pin::pin!(stop);
    let mut stopped = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            signal = &mut stop, if !stopped => {
                stopped = true;
                send(pid, own_group, signal);
            }
            // On a terminal the command got this Ctrl+C from the terminal already.
            _ = interrupt.recv() => if own_group { send(pid, own_group, rustix::process::Signal::INT) },
            _ = terminate.recv() => send(pid, own_group, rustix::process::Signal::TERM),
            () = sleep_until(deadline) => {
                timed_out = true;
                deadline = None;
                kill_at = Some(tokio::time::Instant::now() + KILL_GRACE);
                send(pid, own_group, rustix::process::Signal::TERM);
            }
            () = sleep_until(kill_at) => {
                kill_at = None;
                send(pid, own_group, rustix::process::Signal::KILL);
            }
        }
    };
    let duration = started.elapsed();
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout(OUTPUT_DRAIN, reader).await.is_err() {
            abort.abort();
        }
    }
    let (exit_code, signal) = shell_status(status);
    let tail = tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect();
    Ok(Ended { exit_code, signal, timed_out, duration, tail })
}

/// `arg` as a POSIX shell would need it written (for the command line `harness exec` prints).
pub(crate) fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b));
    if plain { arg.to_owned() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

// --- harness run --pipeline-cmd --------------------------------------------------------------------------------

/// The command of `harness run --pipeline-cmd`.
#[derive(Debug, Clone)]
pub struct PipelineCommand {
    /// A shell command line; `{date}` is replaced by the date (YYYY-MM-DD).
    pub template: String,
    pub timeout: Duration,
}

impl PipelineCommand {
    pub fn for_day(&self, day: TradingDay) -> String {
        self.template.replace("{date}", &day.to_string())
    }
}

/// Runs `command` for `options.day` in a fresh world and scores what it wrote, like [`crate::run::run`] does
/// for the in-process pipeline. A command that fails (any exit status but 0, a signal, the timeout) is still
/// scored: whatever it left behind is judged by every check, and the status is at least a warning.
pub async fn run(
    options: &RunOptions,
    command: &PipelineCommand,
    on_start: &dyn Fn(&Starting),
) -> Result<Report, RunError> {
    let started_at = Utc::now();
    let world = World::start(options.world_options()?).await?;
    let data_dir = world.data_dir.path().join("pipeline");
    std::fs::create_dir_all(&data_dir).map_err(|source| RunError::Io {
        what: "create",
        path: data_dir.clone(),
        source,
    })?;
    let mut env = world.environment();
    env.set(pipeline::env::Var::PipelineDataDir, data_dir.display().to_string());
    let line = command.for_day(options.day);
    let mut starting = Starting {
        services: Vec::new(),
        environment: describe(&env, &command_vars(&env)),
        command_line: line.clone(),
        warnings: Vec::new(),
    };
    if !command.template.contains("{date}") {
        starting.warnings.push(format!("the command has no {{date}}; it must process {} on its own", options.day));
    }
    on_start(&starting);
    let mut shell = Command::new("sh");
    // Its output goes to a log and the report: no colour codes.
    shell.arg("-c").arg(&line).env("NO_COLOR", "1");
    let ended = supervise(command_with_environment(shell, &env), true, Some(command.timeout))
        .await
        .map_err(|source| RunError::Spawn { program: "sh -c".to_owned(), source })?;
    let mut report = score_world(&world, options.day, None, started_at)?;
    attach(&mut report, &line, &ended);
    if let Some(dir) = &options.report_dir {
        write_report(&report, dir)?;
    }
    Ok(report)
}

/// The advisory check on the command's exit status: a non-zero status warns even when everything landed (a
/// scheduler would see a failed run and retry or page), and never fails by itself (what landed decides that).
pub fn exit_status_check(ended: &Ended) -> CheckOutcome {
    let mut check = CheckOutcome::new(
        crate::scoring::ids::COMMAND_EXIT_STATUS,
        Family::Consistency,
        "the external command exited with status 0 (advisory: what it wrote is judged by the other checks)",
        Threshold { fail_below: 0.0, warn_below: 1.0 },
    );
    if ended.exit_code == 0 {
        check.pass_one();
    } else {
        let how = match (ended.timed_out, ended.signal) {
            (true, _) => format!("timed out and was stopped (status {})", ended.exit_code),
            (false, Some(signal)) => format!("was killed by signal {signal} (status {})", ended.exit_code),
            (false, None) => format!("exited with status {}", ended.exit_code),
        };
        let last = ended.tail.last().map(|l| format!("; last output: {l}")).unwrap_or_default();
        check.fail_one(|| Sample::general(format!("the command {how}{last}")));
    }
    check
}

fn attach(report: &mut Report, command: &str, ended: &Ended) {
    let check = exit_status_check(ended);
    report.status = report.status.max(check.status);
    report.checks.push(check);
    report.sections.external = Some(ExternalSection {
        command: command.to_owned(),
        exit_code: ended.exit_code,
        signal: ended.signal,
        timed_out: ended.timed_out,
        duration_ms: i64::try_from(ended.duration.as_millis()).unwrap_or(i64::MAX),
        output_tail: ended.tail.clone(),
    });
}

// --- harness exec ----------------------------------------------------------------------------------------------

/// The pairs with trades files in a replay directory (`{exchange}/trades/{YYYY}/{MM}/{DD}/{SYMBOL}.csv[.gz]`).
pub fn replay_selection(dir: &Path) -> Option<Selection> {
    fn entries(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir).map(|it| it.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default()
    }
    let mut pairs = Vec::new();
    for exchange_dir in entries(dir).into_iter().filter(|p| p.is_dir()) {
        let Some(exchange) = exchange_dir.file_name().and_then(|n| Exchange::parse(&n.to_string_lossy()).ok()) else {
            continue;
        };
        let mut level = vec![exchange_dir.join("trades")];
        for _ in 0..3 {
            level = level.iter().flat_map(|d| entries(d)).filter(|p| p.is_dir()).collect();
        }
        for file in level.iter().flat_map(|d| entries(d)) {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let stem = name.strip_suffix(".csv.gz").or_else(|| name.strip_suffix(".csv"));
            // Like the mock, only file names already in Tardis' normalised form count.
            if let Some(symbol) = stem.and_then(|s| Symbol::parse(s).ok().filter(|symbol| symbol.as_str() == s)) {
                pairs.push((exchange.clone(), symbol));
            }
        }
    }
    pairs.sort();
    pairs.dedup();
    (!pairs.is_empty()).then(|| Selection::from_pairs(pairs))
}

/// What `harness exec` runs, against what.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub seed: u64,
    /// The days served; Tardis' `exportedUntil` is the end of the last.
    pub days: DateRange,
    pub activity: f64,
    /// Edge-case episodes per symbol and day of the generated market.
    pub edge_cases: f64,
    /// Only these pairs of the generated market (also PIPELINE_SYMBOLS); all of it when `None`.
    pub symbols: Option<Selection>,
    /// Serve captured Tardis files from this directory instead of generated ones.
    pub replay_dir: Option<PathBuf>,
    /// The program and its arguments (not run through a shell).
    pub command: Vec<String>,
}

/// How `harness exec`'s command ended, or why it never started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    Ended(Ended),
    /// The program does not exist (a shell's 127).
    NotFound {
        program: String,
        reason: String,
    },
    /// The program cannot be executed (a shell's 126).
    NotExecutable {
        program: String,
        reason: String,
    },
}

/// `harness exec`: the fakes and a fresh database, the command with their environment (after `on_start` has
/// heard where everything is), until it ends. `Err` when the harness itself cannot start.
pub async fn exec(options: &ExecOptions, on_start: &dyn Fn(&Starting)) -> Result<ExecOutcome, RunError> {
    let universe = match &options.symbols {
        Some(symbols) if options.replay_dir.is_none() => restrict_universe(&Universe::default_universe(), symbols)?,
        _ => Universe::default_universe(),
    };
    let (program, arguments) = options.command.split_first().ok_or(RunError::NoCommand)?;
    let days = options.days;

    let server = PostgresServer::provision().await?;
    let database = server.fresh_database().await?;
    let (tardis, source, symbols) = match &options.replay_dir {
        Some(dir) => {
            let tardis = MockTardis::start_replay(None, dir, TardisOptions::exported_through(days.end()))
                .await
                .map_err(|source| RunError::Replay { path: dir.clone(), source })?;
            let symbols = options.symbols.clone().or_else(|| replay_selection(dir));
            (tardis, format!("replaying {}", dir.display()), symbols)
        }
        None => {
            let generator = Arc::new(
                Generator::new(options.seed, universe.clone())
                    .with_activity(options.activity)
                    .with_edge_cases(options.edge_cases),
            );
            let mut tardis_options = TardisOptions::exported_through(days.end());
            tardis_options.available_from = Some(days.start());
            let tardis = MockTardis::start(generator, tardis_options).await;
            let described = format!(
                "generated, seed {}, days {}..{}, activity {}",
                options.seed,
                days.start(),
                days.end(),
                options.activity
            );
            (tardis, described, Some(Selection::from_pairs(universe.pairs())))
        }
    };
    let bigquery = FakeBigQuery::start().await;
    let scratch = tempfile::Builder::new().prefix("harness-exec-").tempdir().map_err(|source| RunError::Io {
        what: "create a temporary data directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    let env = environment(Endpoints {
        tardis: &tardis,
        bigquery: &bigquery,
        via: None,
        database_url: Some(database.url()),
        symbols: symbols.as_ref(),
        data_dir: Some(scratch.path()),
    });
    on_start(&Starting {
        services: vec![
            format!("mock Tardis {} ({source})", tardis.uri()),
            format!("fake BigQuery {} (project {PROJECT}, dataset {DATASET})", bigquery.uri()),
            format!("Postgres ({}), database {}", server.backend().as_str(), database.name()),
        ],
        environment: describe(&env, &command_vars(&env)),
        command_line: options.command.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "),
        warnings: Vec::new(),
    });
    let mut command = Command::new(program);
    command.args(arguments);
    match supervise(command_with_environment(command, &env), false, None).await {
        Ok(ended) => Ok(ExecOutcome::Ended(ended)),
        Err(err) => {
            let (program, reason) = (program.clone(), err.to_string());
            match err.kind() {
                std::io::ErrorKind::NotFound => Ok(ExecOutcome::NotFound { program, reason }),
                std::io::ErrorKind::PermissionDenied => Ok(ExecOutcome::NotExecutable { program, reason }),
                _ => Err(RunError::Spawn { program, source: err }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("plain-arg_1.py", "plain-arg_1.py")]
    #[case("--date=2024-06-03", "--date=2024-06-03")]
    #[case("two words", "'two words'")]
    #[case("it's", r"'it'\''s'")]
    #[case("$HOME", "'$HOME'")]
    #[case("", "''")]
    fn arguments_are_printed_as_a_shell_would_need_them(#[case] arg: &str, #[case] printed: &str) {
        assert_eq!(shell_quote(arg), printed);
    }

    fn ended(exit_code: i32, signal: Option<i32>, timed_out: bool) -> Ended {
        Ended { exit_code, signal, timed_out, duration: Duration::ZERO, tail: vec!["last words".to_owned()] }
    }

    #[rstest]
    #[case(ended(0, None, false), market::checks::Status::Pass, None)]
    #[case(ended(2, None, false), market::checks::Status::Warn, Some("exited with status 2; last output: last words"))]
    #[case(ended(137, Some(9), false), market::checks::Status::Warn, Some("killed by signal 9 (status 137)"))]
    #[case(ended(143, Some(15), true), market::checks::Status::Warn, Some("timed out and was stopped"))]
    fn the_exit_status_check_warns_and_never_fails(
        #[case] ended: Ended,
        #[case] status: market::checks::Status,
        #[case] detail: Option<&str>,
    ) {
        let check = exit_status_check(&ended);
        assert_eq!(check.status, status);
        assert!(check.is_advisory(), "it never moves a family score");
        match detail {
            Some(detail) => assert!(check.samples[0].detail.contains(detail), "{:?}", check.samples),
            None => assert!(check.samples.is_empty()),
        }
    }

    #[test]
    fn replayed_pairs_come_from_the_trades_files_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in [
            "bitmex/trades/2024/06/03/XBTUSD.csv.gz",
            "bitmex/trades/2024/06/04/ETHUSD.csv",
            "deribit/trades/2024/06/03/BTC-PERPETUAL.csv.gz",
            "deribit/quotes/2024/06/03/ETH-PERPETUAL.csv.gz",
            "deribit/trades/2024/06/03/notes.txt",
            "deribit/trades/2024/06/03/eth-perpetual.csv.gz",
            "Not An Exchange/trades/2024/06/03/X.csv.gz",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(path, b"").expect("file");
        }
        let selection = replay_selection(dir.path()).expect("pairs");
        assert_eq!(selection.to_string(), "bitmex:ETHUSD,XBTUSD;deribit:BTC-PERPETUAL");
        assert_eq!(replay_selection(&dir.path().join("bitmex/trades/2024")), None);
    }
}
