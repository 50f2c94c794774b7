//! Fault scenarios: the built-in catalogue (its default profile; the nightly runs all of it) against the
//! reference pipeline, a handful against the Python example through `--pipeline-cmd`, and `harness scenario` as
//! a process. Each scenario runs in a fresh world; what it judges is read from the fronts' request logs, the
//! fake BigQuery's partitions and the truth.

use std::sync::Arc;
use std::time::Duration;

use harness::external::PipelineCommand;
use harness::postgres::PostgresServer;
use harness::recovery::{ScenarioOptions, Target};
use harness::scenario::{Expectation, Outcome, Profile, Scenario, ScenarioResult, Verdict};
use market::TradingDay;

fn day() -> TradingDay {
    TradingDay::parse("2024-06-04").expect("valid day")
}

fn options(target: Target) -> ScenarioOptions {
    ScenarioOptions {
        day: day(),
        seed: 5,
        activity: 0.05,
        symbols: Some(
            pipeline::Selection::parse("binance-futures:BTCUSDT,ETHUSDT;bitmex:XBTUSD;deribit:ETH-PERPETUAL")
                .expect("valid pairs"),
        ),
        target,
        timeout: Duration::from_secs(120),
    }
}

fn reference() -> Target {
    Target::Reference { pipeline_bin: suites::workspace_binary("pipeline") }
}

fn python_example() -> Target {
    python_script("examples/python-pipeline/pipeline.py")
}

fn python_script(path: &str) -> Target {
    let python = suites::conformance_python();
    let script = suites::workspace_root().join(path);
    Target::Command(PipelineCommand {
        template: format!("{} {} --date {{date}}", python.display(), script.display()),
        timeout: Duration::from_secs(120),
    })
}

async fn run(name: &str, target: Target) -> ScenarioResult {
    let server = Arc::new(PostgresServer::provision().await.expect("Postgres"));
    let scenario = Scenario::resolve(name).expect("a built-in scenario");
    let (result, _) = harness::recovery::run(server, &scenario, &options(target)).await.expect("the scenario runs");
    result
}

/// Every scenario of `profile` whose name starts with `family`, against the reference pipeline: each
/// expectation met, each fault injected (nothing "not applicable" for the pipeline the catalogue is made for,
/// but the resumable upload it never uses).
async fn family(family: &str) {
    of_profile(family, Profile::Default).await;
}

async fn of_profile(family: &str, profile: Profile) {
    let scenarios: Vec<Scenario> =
        Scenario::catalogue().into_iter().filter(|s| s.name.starts_with(family) && s.profile == profile).collect();
    assert!(!scenarios.is_empty(), "{family}");
    let mut failures = Vec::new();
    for scenario in &scenarios {
        let result = run(&scenario.name, reference()).await;
        // The reference pipeline never uploads resumably and runs no SQL: those faults strike nothing.
        let never_called = ["bigquery-resumable-half-way", "bigquery-query-backend-error"];
        let applicable = result.verdict == Verdict::Met
            || (never_called.contains(&scenario.name.as_str()) && result.verdict == Verdict::NotApplicable);
        let expected_outcome = match scenario.expect {
            Expectation::Recovers => Outcome::Recovered,
            Expectation::FailsCleanly => Outcome::FailedCleanly,
        };
        if !applicable || result.outcome != expected_outcome {
            failures.push(format!("{result:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_pipeline_meets_every_tardis_scenario() {
    family("tardis-").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_pipeline_meets_every_bigquery_scenario() {
    family("bigquery-").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_pipeline_meets_every_postgres_and_process_scenario() {
    family("postgres-").await;
    family("process-").await;
}

/// The slow scenarios (a drip, a late first byte, an export that lands mid-run): the nightly profile only (the
/// `nightly_` prefix is filtered out of the default and ci profiles).
#[tokio::test(flavor = "multi_thread")]
async fn nightly_the_reference_pipeline_meets_every_slow_scenario() {
    of_profile("", Profile::Nightly).await;
}

/// The numbers behind a verdict: one 429 with `Retry-After: 1` costs one retry, at least a second later.
#[tokio::test(flavor = "multi_thread")]
async fn a_short_429_is_retried_once_after_the_wait_it_asked_for() {
    let result = run("tardis-429-short", reference()).await;
    assert_eq!((result.verdict, result.faults_injected, result.retries), (Verdict::Met, 1, 1), "{result:#?}");
    assert!(result.recover_ms.is_some_and(|ms| ms >= 1000), "{result:#?}");
}

/// A SIGKILL at the upload leaves the first run dead mid-date; the same command again completes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_killed_at_its_upload_is_completed_by_the_same_command() {
    let result = run("process-sigkill-at-upload", reference()).await;
    assert_eq!((result.verdict, result.outcome), (Verdict::Met, Outcome::Recovered), "{result:#?}");
    assert!(result.notes.iter().any(|n| n.starts_with("SIGKILL after") && n.contains("status 137")), "{result:#?}");
    assert!(result.notes.iter().any(|n| n.starts_with("resumed with the same command: status 0")), "{result:#?}");
}

/// Scenarios the Python example survives, through `--pipeline-cmd` as any team's pipeline would run.
#[rstest::rstest]
#[case::throttled("tardis-429-short")]
#[case::reset("tardis-reset-mid-body")]
#[case::slow_first_byte("tardis-slow-first-byte")]
#[case::backend_error("bigquery-insert-backend-error")]
#[case::revoked_key("tardis-401")]
#[case::killed("process-sigkill-at-upload")]
#[tokio::test(flavor = "multi_thread")]
async fn the_python_example_meets(#[case] name: &str) {
    let result = run(name, python_example()).await;
    assert_eq!(result.verdict, Verdict::Met, "{result:#?}");
    assert!(result.faults_injected > 0 || name.starts_with("process-"), "{result:#?}");
}

/// The pandas example moves its rows with SQL: the query endpoints' faults reach it, and it recovers.
#[tokio::test(flavor = "multi_thread")]
async fn the_pandas_example_recovers_from_query_endpoint_faults() {
    let result =
        run("bigquery-query-backend-error", python_script("examples/python-pandas-pipeline/pipeline.py")).await;
    assert_eq!((result.verdict, result.outcome), (Verdict::Met, Outcome::Recovered), "{result:#?}");
    assert_eq!(result.faults_injected, 2, "{result:#?}");
}

/// And one it does not: a 200 with zero bytes is taken for a quiet day, so a file's candles are missing while
/// the run says it succeeded. The harness says so.
#[tokio::test(flavor = "multi_thread")]
async fn the_python_example_takes_an_empty_body_for_a_quiet_day() {
    let result = run("tardis-empty-file", python_example()).await;
    assert_eq!((result.verdict, result.outcome), (Verdict::NotMet, Outcome::WrongData), "{result:#?}");
    assert!(result.findings[0].contains("completeness.symbols_landed"), "{result:#?}");
}

/// `harness scenario run` as a process: the results table or JSON, and the exit code of the verdicts.
#[tokio::test(flavor = "multi_thread")]
async fn harness_scenario_run_prints_the_verdicts_and_exits_by_them() {
    let reports = tempfile::tempdir().expect("temp dir");
    let out = tokio::process::Command::new(suites::workspace_binary("harness"))
        .current_dir(suites::workspace_root())
        .args(["scenario", "run", "bigquery-job-retryable-error", "tardis-404", "--json", "--activity", "0.05"])
        .args(["--date", "2024-06-04", "--symbols", "bitmex:XBTUSD", "--report-dir"])
        .arg(reports.path())
        .env("RUST_LOG", "error")
        .output()
        .await
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let results: Vec<ScenarioResult> = serde_json::from_slice(&out.stdout).expect("JSON results");
    let seen: Vec<(&str, Outcome, Verdict)> = results.iter().map(|r| (r.name.as_str(), r.outcome, r.verdict)).collect();
    assert_eq!(
        seen,
        [
            ("bigquery-job-retryable-error", Outcome::Recovered, Verdict::Met),
            ("tardis-404", Outcome::FailedCleanly, Verdict::Met)
        ]
    );
    let html = std::fs::read_to_string(reports.path().join("tardis-404/report.html")).expect("a report per scenario");
    assert!(html.contains("<section id=\"scenario\">") && html.contains("failed cleanly"), "{html}");
    assert!(reports.path().join("scenarios.json").is_file());
}
