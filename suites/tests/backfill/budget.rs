//! One Tardis request budget shared by every process on a database (`store::SharedBudget`, GitHub issue 15):
//! four `pipeline worker` processes against one mock Tardis and one database stay under `TARDIS_RATE_LIMIT`
//! together, and all of them stop for a 429's `Retry-After`, whichever of them drew it; the same four without
//! the limit go well over it (so the first test can fail). Below that, the bucket on its own: takers on many
//! connections held to the rate, a pause that stops takers elsewhere, and a budget whose database is gone
//! that never stops a request.
//!
//! Every figure is measured on the mock's request log (`TardisRequest::at`) and printed, so that it can be
//! quoted.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fakes::tardis::{Fault, FaultTarget, TardisRequest};
use market::DateRange;
use pipeline::store::{BucketRate, JobStatus, SharedBudget, Store};
use pipeline::tardis::RequestBudget;

use crate::{binary, world};

/// The limit the processes share, requests a second.
const LIMIT: f64 = 20.0;
/// A request that was already on its way when the 429 came (it took its token before the pause was written)
/// may arrive this long after the 429.
const IN_FLIGHT: Duration = Duration::from_millis(200);
/// How much earlier than `Retry-After` after the 429 a request may arrive (clocks, scheduling).
const TOLERANCE: Duration = Duration::from_millis(50);
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Worker processes, killed (and reaped) when the test ends, however it ends.
struct Processes {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Processes {
    /// Waits for every process to exit, at most `deadline` (then the test fails, and the guard kills them).
    async fn wait(&mut self, deadline: Duration) -> Vec<ExitStatus> {
        let until = Instant::now() + deadline;
        loop {
            let statuses: Vec<Option<ExitStatus>> =
                self.children.iter_mut().map(|c| c.try_wait().expect("a child's status")).collect();
            if statuses.iter().all(Option::is_some) {
                return statuses.into_iter().flatten().collect();
            }
            assert!(Instant::now() < until, "the workers did not finish within {deadline:?}:\n{}", self.stderr());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn stderr(&self) -> String {
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        self.logs.iter().map(|p| format!("--- {}\n{}", p.display(), read(p))).collect()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pipeline_command(world: &harness::World) -> Command {
    let mut command = Command::new(binary());
    command.envs(world.env()).env("PIPELINE_DATA_DIR", world.data_dir.path().join("data")).env("RUST_LOG", "warn");
    command
}

/// What the mock saw of a run.
#[derive(Debug)]
struct Figures {
    /// How many of the processes ran dates.
    workers: usize,
    requests: usize,
    seconds: f64,
    /// The most requests that arrived within any one second.
    max_window: usize,
    rate_limited: usize,
    /// For each 429, how long until the next request that was not already on its way.
    gaps: Vec<Duration>,
    /// Requests that arrived within `IN_FLIGHT` of a 429 (on their way before the pause was written).
    in_flight: usize,
    /// Requests that arrived during a pause: (offset after its 429, path).
    in_pause: Vec<(Duration, String)>,
}

impl Figures {
    fn of(requests: &[TardisRequest]) -> Figures {
        let times: Vec<Instant> = requests.iter().map(|r| r.at).collect();
        let (first, last) = (times[0], times[times.len() - 1]);
        let mut max_window = 0;
        let mut end = 0;
        for (start, at) in times.iter().enumerate() {
            while end < times.len() && times[end] < *at + Duration::from_secs(1) {
                end += 1;
            }
            max_window = max_window.max(end - start);
        }
        let mut gaps = Vec::new();
        let mut in_pause = Vec::new();
        let mut in_flight = 0;
        for limited in requests.iter().filter(|r| r.status == 429) {
            in_flight += requests.iter().filter(|r| r.at > limited.at && r.at <= limited.at + IN_FLIGHT).count();
            let after = |r: &&TardisRequest| r.at > limited.at + IN_FLIGHT;
            if let Some(next) = requests.iter().find(after) {
                gaps.push(next.at - limited.at);
            }
            for r in requests.iter().filter(after).take_while(|r| r.at < limited.at + RETRY_AFTER - TOLERANCE) {
                in_pause.push((r.at - limited.at, r.path.clone()));
            }
        }
        Figures {
            workers: 0,
            requests: requests.len(),
            seconds: (last - first).as_secs_f64(),
            max_window,
            rate_limited: requests.iter().filter(|r| r.status == 429).count(),
            gaps,
            in_flight,
            in_pause,
        }
    }

    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn print(&self, what: &str) {
        let gaps: Vec<String> = self.gaps.iter().map(|g| format!("{} ms", g.as_millis())).collect();
        eprintln!(
            "{what}: {} requests in {:.2} s = {:.1} req/s; max in any 1 s window {}; {} 429s; pause gaps [{}] \
             (the first request after each 429 but those already on their way, {} of them)",
            self.requests,
            self.seconds,
            self.rate(),
            self.max_window,
            self.rate_limited,
            gaps.join(", "),
            self.in_flight
        );
    }
}

/// Enqueues `range`, then runs four `pipeline worker` processes until the queue is empty (with
/// `TARDIS_RATE_LIMIT` = `limit` when set, and a 429 `Retry-After: 1` answering every 25th request when
/// `storm`), and returns the world and the requests the workers made.
async fn four_workers(seed: u64, range: DateRange, limit: Option<f64>, storm: bool) -> (harness::World, Figures) {
    let world = world(seed).await;
    let (start, end) = (range.start().to_string(), range.end().to_string());
    let enqueue = pipeline_command(&world).args(["backfill", &start, &end, "--enqueue-only"]).output().expect("runs");
    assert!(enqueue.status.success(), "{}", String::from_utf8_lossy(&enqueue.stderr));
    if storm {
        world.tardis.fail_every(FaultTarget::Any, 25, 6, Fault::rate_limited(RETRY_AFTER.as_secs()));
    }
    let before = world.tardis.requests().len();
    let mut processes = Processes { children: Vec::new(), logs: Vec::new() };
    for n in 1..=4 {
        let log = world.data_dir.path().join(format!("worker-{n}.log"));
        let mut command = pipeline_command(&world);
        command.args(["worker", "--worker-id", &format!("w{n}"), "--retry-delay", "0"]);
        if let Some(limit) = limit {
            command.env("TARDIS_RATE_LIMIT", limit.to_string());
        }
        let stderr = File::create(&log).expect("a log file");
        processes.children.push(command.stdout(Stdio::null()).stderr(stderr).spawn().expect("spawn"));
        processes.logs.push(log);
    }
    let statuses = processes.wait(Duration::from_secs(40)).await;
    assert!(statuses.iter().all(ExitStatus::success), "{statuses:?}\n{}", processes.stderr());
    let store = Store::connect(world.database.url()).await.expect("store");
    let jobs = store.jobs(range).await.expect("jobs");
    assert_eq!(jobs.len(), range.len() as usize);
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Completed, "{} {:?}\n{}", job.day, job.error_message, processes.stderr());
    }
    let workers: std::collections::BTreeSet<&str> = jobs.iter().filter_map(|j| j.worker_id.as_deref()).collect();
    eprintln!("dates run by {} of the 4 processes: {workers:?}", workers.len());
    let requests = world.tardis.requests().split_off(before);
    (world, Figures { workers: workers.len(), ..Figures::of(&requests) })
}

#[tokio::test]
async fn four_worker_processes_share_one_rate_limit_and_every_one_of_them_stops_for_a_429() {
    let range = DateRange::parse("2024-06-01", "2024-06-20").expect("valid");
    let (_world, figures) = four_workers(31, range, Some(LIMIT), true).await;
    figures.print(&format!("4 worker processes, TARDIS_RATE_LIMIT={LIMIT}, a 429 every 25th request"));
    let burst = BucketRate::new(LIMIT).capacity;
    // A window of one second holds at most the burst and a second's tokens; a request's way to the mock takes
    // a moment, so a window of arrivals can span a little more than a second of tokens: one more.
    let bound = (LIMIT + burst) as usize + 1;
    assert!(
        figures.max_window <= bound,
        "{} requests in one second, more than {bound}: {figures:?}",
        figures.max_window
    );
    let whole_run = burst + LIMIT * figures.seconds + 1.0;
    assert!(figures.requests as f64 <= whole_run, "{} requests, at most {whole_run:.0}: {figures:?}", figures.requests);
    assert_eq!(figures.workers, 4, "every process ran dates: {figures:?}");
    assert!(figures.rate_limited >= 3, "the storm came: {figures:?}");
    assert!(figures.in_pause.is_empty(), "requests during a pause: {:?}", figures.in_pause);
    assert!(figures.gaps.iter().all(|g| *g >= RETRY_AFTER - TOLERANCE), "{figures:?}");
}

/// The control: the same four processes without `TARDIS_RATE_LIMIT` go over what the limit would allow, so the
/// test above measures the budget and not a pipeline too slow to reach the limit.
#[tokio::test]
async fn without_the_limit_the_same_four_processes_go_over_it() {
    let range = DateRange::parse("2024-06-01", "2024-06-12").expect("valid");
    let (_world, figures) = four_workers(32, range, None, false).await;
    figures.print("4 worker processes, no TARDIS_RATE_LIMIT");
    let bound = (LIMIT + BucketRate::new(LIMIT).capacity) as usize + 1;
    assert!(figures.max_window > bound, "only {} requests in the busiest second: {figures:?}", figures.max_window);
}

async fn database() -> (harness::World, Store) {
    let world = world(33).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    (world, store)
}

/// Twelve takers on three pools (as three processes would have) for 1.5 s, from a full bucket: never more than
/// the burst and the rate allow, and not much less either (a refused taker asks again when the next token is
/// due).
#[tokio::test]
async fn concurrent_takers_get_the_burst_and_the_rate_and_no_more() {
    let (world, store) = database().await;
    SharedBudget::new(store, "test", Some(LIMIT)).acquire().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let granted = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let started = Instant::now();
    let run_for = Duration::from_millis(1500);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let store = Store::connect(world.database.url()).await.expect("store");
        let budget = Arc::new(SharedBudget::new(store, "test", Some(LIMIT)));
        for _ in 0..4 {
            let (budget, granted) = (budget.clone(), granted.clone());
            tasks.push(tokio::spawn(async move {
                while started.elapsed() < run_for {
                    budget.acquire().await;
                    granted.lock().expect("not poisoned").push(Instant::now());
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("taker");
    }
    let mut granted = granted.lock().expect("not poisoned").clone();
    granted.sort();
    let seconds = (granted[granted.len() - 1] - started).as_secs_f64();
    let first_second = granted.iter().filter(|at| **at < started + Duration::from_secs(1)).count();
    let burst = BucketRate::new(LIMIT).capacity;
    eprintln!(
        "12 takers on 3 pools, {LIMIT}/s from a full bucket: {} tokens in {seconds:.2} s, {first_second} in the first second",
        granted.len()
    );
    // The first acquire took one token a second before; the bucket was full again (capacity) when they started.
    assert!(granted.len() as f64 <= burst + LIMIT * seconds + 1.0, "{} in {seconds:.2} s", granted.len());
    assert!(first_second as f64 <= burst + LIMIT + 1.0, "{first_second} in the first second");
    assert!(
        granted.len() as f64 >= 0.8 * (burst + LIMIT * run_for.as_secs_f64()),
        "{} in {seconds:.2} s",
        granted.len()
    );
}

/// A pause written through one pool stops a taker on another, with or without a rate; a shorter pause does
/// not cut a longer one short.
#[tokio::test]
async fn a_pause_stops_takers_everywhere_for_as_long_as_asked() {
    let (world, store) = database().await;
    let elsewhere = Store::connect(world.database.url()).await.expect("store");
    let pausing = SharedBudget::new(store, SharedBudget::TARDIS, None);
    for rate in [None, Some(LIMIT)] {
        let taker = SharedBudget::new(elsewhere.clone(), SharedBudget::TARDIS, rate);
        taker.acquire().await;
        pausing.pause(Duration::from_millis(600)).await;
        pausing.pause(Duration::from_millis(100)).await;
        let started = Instant::now();
        taker.acquire().await;
        let waited = started.elapsed();
        eprintln!("rate {rate:?}: a taker elsewhere waited {} ms for a 600 ms pause", waited.as_millis());
        assert!(waited >= Duration::from_millis(550), "{rate:?}: {waited:?}");
        assert!(waited < Duration::from_millis(1500), "{rate:?}: {waited:?}");
    }
    let pauses: i64 = sqlx::query_scalar("SELECT pauses FROM request_budgets WHERE name = 'tardis'")
        .fetch_one(elsewhere.pool())
        .await
        .expect("query");
    assert_eq!(pauses, 4);
}

/// A budget that cannot reach its database lets every request go at once (and says so in the logs).
#[tokio::test]
async fn an_unreachable_budget_never_holds_a_request_back() {
    let (_world, store) = database().await;
    let budget = SharedBudget::new(store.clone(), SharedBudget::TARDIS, Some(0.5));
    store.pool().close().await;
    let started = Instant::now();
    for _ in 0..5 {
        budget.acquire().await;
        budget.pause(Duration::from_secs(60)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}
