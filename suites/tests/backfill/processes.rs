use std::process::{Command, Stdio};
use std::time::Duration;

use market::TradingDay;
use pipeline::store::{JobStatus, Store};

use crate::{binary, eventually, world};

fn pipeline_command(world: &harness::World) -> Command {
    let mut command = Command::new(binary());
    command.envs(world.env()).env("PIPELINE_DATA_DIR", world.data_dir.path().join("data")).env("RUST_LOG", "warn");
    command
}

#[tokio::test]
async fn a_future_date_is_rejected_and_nothing_is_written() {
    let world = world(21).await;
    let logs = world.data_dir.path().join("logs");
    let out = pipeline_command(&world)
        .args(["backfill", "2024-06-01", "2099-01-01", "--execute", "--max-days", "100000", "--log-dir"])
        .arg(&logs)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("End date 2099-01-01 is in the future or today"), "{stderr}");
    assert!(!logs.exists(), "no log directory, no log file");
    // Nothing reached the database: not even its tables exist.
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'backfill_jobs'")
            .fetch_one(
                &mut <sqlx::PgConnection as sqlx::Connection>::connect(world.database.url()).await.expect("connect"),
            )
            .await
            .expect("query");
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn start_after_end_is_rejected_before_any_run_and_no_log_file() {
    let world = world(22).await;
    let logs = world.data_dir.path().join("logs");
    let out = pipeline_command(&world)
        .args(["backfill", "2024-06-30", "2024-06-01", "--execute", "--log-dir"])
        .arg(&logs)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr.contains("Start date 2024-06-30 is after end date 2024-06-01"), "{stderr}");
    assert!(!logs.exists());
}

#[tokio::test]
async fn the_dry_run_is_the_default_and_prints_the_plan() {
    let world = world(23).await;
    let logs = world.data_dir.path().join("logs");
    let out = pipeline_command(&world)
        .args(["backfill", "2024-06-01", "2024-06-03", "--log-dir"])
        .arg(&logs)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Backfill plan 2024-06-01 → 2024-06-03: 3 dates in 1 chunk(s), 3 to run"), "{stdout}");
    assert!(stdout.contains("This was a dry run: add --execute to run it."), "{stdout}");
    assert!(!logs.exists(), "a dry run writes no log file");
    assert!(world.bigquery.requests().iter().all(|r| !r.path.contains("/upload/")), "and uploads nothing");
}

/// A backfill of some symbols replaces the dates' partitions with only those: the plan says so, and only then.
#[tokio::test]
async fn a_dry_run_of_some_symbols_warns_that_the_partitions_will_hold_only_them() {
    let world = world(25).await;
    let note = "Note: the dates' partitions are replaced whole and will hold only these symbols.";
    for (symbols, warned) in [(Some("XBTUSD"), true), (None, false)] {
        let mut command = pipeline_command(&world);
        command.args(["backfill", "2024-06-01", "2024-06-02", "--log-dir"]).arg(world.data_dir.path().join("logs"));
        if let Some(symbols) = symbols {
            command.args(["--symbols", symbols]);
        }
        let out = command.output().expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout.contains(note), warned, "{symbols:?}:\n{stdout}");
    }
}

/// With the default 600 s lease: the rerun takes the killed process's dates at once, because their claims
/// died with its database sessions (a rerun that waited for the leases would run into the test's timeout).
#[tokio::test]
async fn a_killed_backfill_is_completed_by_running_it_again_without_duplicates() {
    let world = world(24).await;
    // Slow one file down so that the first process is surely killed in the middle of the range.
    wiremock::Mock::given(wiremock::matchers::path("/v1/bitmex/trades/2024/06/05/XBTUSD.csv.gz"))
        .respond_with(wiremock::ResponseTemplate::new(503).set_delay(Duration::from_secs(30)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let logs = world.data_dir.path().join("logs");
    let args =
        ["backfill", "2024-06-01", "2024-06-08", "--execute", "--parallel", "2", "--retry-delay", "0", "--log-dir"];
    let mut first = pipeline_command(&world)
        .args(args)
        .arg(&logs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let store = Store::connect(world.database.url()).await.expect("store");
    let stuck = TradingDay::parse("2024-06-05").expect("valid");
    eventually("the slow date to be in progress and another completed", Duration::from_secs(60), || async {
        let range = market::DateRange::parse("2024-06-01", "2024-06-08").expect("valid");
        let jobs = store.jobs(range).await.unwrap_or_default();
        jobs.iter().any(|j| j.day == stuck && j.status == JobStatus::Processing)
            && jobs.iter().any(|j| j.status == JobStatus::Completed)
    })
    .await;
    first.kill().expect("kill -9");
    first.wait().expect("reaped");

    let out = pipeline_command(&world).args(args).arg(&logs).output().expect("second run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("0 failed"), "{stdout}");
    let range = market::DateRange::parse("2024-06-01", "2024-06-08").expect("valid");
    for job in store.jobs(range).await.expect("jobs") {
        assert_eq!(job.status, JobStatus::Completed, "{}", job.day);
    }
    for day in range.days() {
        let landed = harness::run::landed_candles(&world.bigquery, day).expect("rows");
        assert_eq!(
            landed.len(),
            world.generator.day_truth(day).candles().count(),
            "{day}: no duplicates, nothing missing"
        );
    }
}

/// The rescuer runs with the default 600 s lease and does not wait for the dead worker's: the claim is free
/// the moment the killed worker's session ends.
#[tokio::test]
async fn a_worker_killed_mid_date_has_its_date_completed_by_another_at_once() {
    let world = world(25).await;
    let day = TradingDay::parse("2024-06-07").expect("valid");
    let store = Store::connect(world.database.url()).await.expect("store");
    store.seed(market::DateRange::single(day), None).await.expect("seed");
    wiremock::Mock::given(wiremock::matchers::path("/v1/bitmex/trades/2024/06/07/XBTUSD.csv.gz"))
        .respond_with(wiremock::ResponseTemplate::new(503).set_delay(Duration::from_secs(30)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(world.tardis.server())
        .await;
    let mut doomed = pipeline_command(&world)
        .args(["worker", "--worker-id", "doomed"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    eventually("the doomed worker to hold the date", Duration::from_secs(30), || async {
        matches!(store.job(day).await, Ok(Some(job)) if job.worker_id.as_deref() == Some("doomed"))
    })
    .await;
    doomed.kill().expect("kill -9");
    doomed.wait().expect("reaped");
    let out = pipeline_command(&world).args(["worker", "--worker-id", "rescuer"]).output().expect("rescuer");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let job = store.job(day).await.expect("job").expect("exists");
    assert_eq!((job.status, job.worker_id.as_deref()), (JobStatus::Completed, Some("rescuer")));
    assert_eq!(
        harness::run::landed_candles(&world.bigquery, day).expect("rows").len(),
        world.generator.day_truth(day).candles().count()
    );
}

#[tokio::test]
async fn two_worker_processes_share_a_range_and_run_each_date_once() {
    let world = world(26).await;
    let store = Store::connect(world.database.url()).await.expect("store");
    let range = market::DateRange::parse("2024-06-01", "2024-06-06").expect("valid");
    let enqueue = pipeline_command(&world)
        .args(["backfill", "2024-06-01", "2024-06-06", "--enqueue-only"])
        .output()
        .expect("enqueue");
    let stdout = String::from_utf8_lossy(&enqueue.stdout);
    assert!(
        enqueue.status.success() && stdout.contains("6 date(s) of 2024-06-01 → 2024-06-06 in the queue"),
        "{stdout}"
    );
    assert!(store.jobs(range).await.expect("jobs").iter().all(|j| j.status == JobStatus::Pending), "enqueued, not run");
    let spawn = |id: &str| {
        pipeline_command(&world).args(["worker", "--worker-id", id]).stdout(Stdio::piped()).spawn().expect("spawn")
    };
    let (a, b) = (spawn("a"), spawn("b"));
    let (a, b) = (a.wait_with_output().expect("a"), b.wait_with_output().expect("b"));
    assert!(a.status.success() && b.status.success());
    let jobs = store.jobs(range).await.expect("jobs");
    assert!(jobs.iter().all(|j| j.status == JobStatus::Completed));
    for day in range.days() {
        let runs = store.runs_of_day(day).await.expect("runs");
        assert_eq!(runs.len(), 1, "{day} processed once");
    }
    let pipeline = world.pipeline().await.expect("pipeline");
    let status = std::process::Command::new(binary())
        .args(["backfill", "status", "--json"])
        .envs(world.env())
        .output()
        .expect("status");
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(json["completed"], 6);
    assert_eq!(json["success_rate"], 1.0);
    drop(pipeline);
}

/// `harness crash` in its default-profile size: a backfill killed twice at seeded moments and resumed, then
/// every partition compared row for row with a clean run of the same dates.
#[tokio::test]
async fn a_backfill_killed_at_random_moments_ends_row_for_row_equal_to_a_clean_run() {
    let options = harness::crash::CrashOptions {
        range: market::DateRange::parse("2024-06-10", "2024-06-13").expect("valid"),
        kills: 2,
        seed: 5,
        activity: 0.05,
        target: harness::crash::CrashTarget::Backfill { pipeline: binary(), parallel: 2 },
    };
    let outcome = harness::crash::run(&options, &|_| {}).await.expect("crash run");
    assert_eq!(outcome.kills.len() + outcome.finished_early as usize, 2);
    assert!(outcome.rows_expected > 0, "{outcome:?}");
    assert!(outcome.consistent(), "{outcome:?}");
}

/// `harness crash --pipeline-cmd`: any command, here the reference pipeline's daily run once per date, killed and
/// run again the same way, ends row for row equal to a clean run.
#[tokio::test]
async fn a_daily_command_killed_at_random_moments_ends_row_for_row_equal_to_a_clean_run() {
    // Exit 1 is "passed with warnings" (a sparse market's returns can warn): the operator's script accepts it.
    let template = format!("{} run --date {{date}} || [ $? -eq 1 ]", binary().display());
    let options = harness::crash::CrashOptions {
        range: market::DateRange::parse("2024-06-10", "2024-06-12").expect("valid"),
        kills: 2,
        seed: 9,
        activity: 0.05,
        target: harness::crash::CrashTarget::Command(template),
    };
    assert!(
        options.target.command_line(options.range).starts_with("rc=0; for d in 2024-06-10 2024-06-11 2024-06-12; do ")
    );
    let outcome = harness::crash::run(&options, &|_| {}).await.expect("crash run");
    assert_eq!(outcome.kills.len() + outcome.finished_early as usize, 2);
    assert!(outcome.rows_expected > 0, "{outcome:?}");
    assert!(outcome.consistent(), "{outcome:?}");
}
