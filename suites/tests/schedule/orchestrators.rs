//! The orchestrator examples (`deploy/airflow`, `deploy/dagster`) loaded by Airflow and Dagster themselves, from
//! the pinned venvs `scripts/setup-orchestrators.sh` builds: the DAG parses with no import error, runs the day
//! before at 09:00 UTC in the CronJob's pod and turns each exit code of the contract into the documented task
//! state; the Dagster definitions load, the schedule asks for yesterday's partition, and materializing a
//! partition runs `pipeline run` and the `pipeline validate --json` check, with the real binary against the fakes
//! and with stand-ins that exit with each code. The Python sides (`suites/orchestrators/*_probe.py`) report
//! what the orchestrators did as JSON; the assertions are here. No cluster and no network are involved.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use chrono::{DateTime, Days, Timelike};
use clap::Parser;
use pipeline::cli::{Cli, Command};
use serde_json::{Value, json};
use suites::{workspace_binary, workspace_root};

/// A probe imports Airflow or Dagster (seconds) and runs a few steps; minutes means it hangs.
const DEADLINE: Duration = Duration::from_secs(240);

/// The first date both examples process (`START_DATE` in each).
const START_DATE: &str = "2026-12-01";

/// The interpreter of `venv` (under target/), after checking `scripts/setup-orchestrators.sh` built it from the
/// current `requirements`. Panics with the command that fixes it: these tests fail, never skip.
fn venv_python(venv: &str, requirements: &str) -> PathBuf {
    let root = workspace_root();
    let python = root.join("target").join(venv).join("bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `bash scripts/setup-orchestrators.sh` (scripts/test.sh does it)",
        python.display()
    );
    let wanted = std::fs::read(root.join(requirements)).expect("the requirements are part of the repository");
    let built_from = std::fs::read(root.join("target").join(venv).join(".requirements.txt")).unwrap_or_default();
    assert!(
        built_from == wanted,
        "target/{venv} was built from other requirements than {requirements}: run `bash scripts/setup-orchestrators.sh`"
    );
    python
}

fn airflow_python() -> PathBuf {
    venv_python("airflow-venv", "deploy/airflow/requirements.txt")
}

fn dagster_python() -> PathBuf {
    venv_python("dagster-venv", "deploy/dagster/requirements.txt")
}

/// `program` from the workspace root, with no stdin, no bytecode written into the tree and no usage reporting.
fn command(program: &Path, home: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AIRFLOW_HOME", home.join("airflow"))
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("SCARF_ANALYTICS", "false")
        .env("DAGSTER_HOME", home.join("dagster"))
        .env("RUST_LOG", "warn");
    command
}

async fn output(mut command: tokio::process::Command) -> Output {
    tokio::time::timeout(DEADLINE, command.output()).await.expect("finished before the deadline").expect("it starts")
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch home for Airflow and Dagster (Dagster's with telemetry off, so it never tries to send any).
fn homes() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("airflow")).expect("airflow home");
    std::fs::create_dir_all(dir.path().join("dagster")).expect("dagster home");
    std::fs::write(dir.path().join("dagster/dagster.yaml"), "telemetry:\n  enabled: false\n").expect("dagster.yaml");
    dir
}

/// What `airflow_probe.py` reports about the DAG, loaded by Airflow's DagBag.
async fn airflow_report() -> Value {
    let home = homes();
    let report = home.path().join("report.json");
    let mut probe = command(&airflow_python(), home.path());
    probe.arg("suites/orchestrators/airflow_probe.py").arg("deploy/airflow/market_pipeline_dag.py").arg(&report);
    let out = output(probe).await;
    assert!(out.status.success(), "the Airflow probe failed: {}", describe(&out));
    serde_json::from_str(&std::fs::read_to_string(&report).expect("the probe wrote its report")).expect("JSON")
}

/// What `dagster_probe.py` reports about the definitions, and about materializing each of `cases`.
async fn dagster_report(cases: &Value, env: &[(String, String)]) -> Value {
    let home = homes();
    let (cases_file, report) = (home.path().join("cases.json"), home.path().join("report.json"));
    std::fs::write(&cases_file, cases.to_string()).expect("cases written");
    let mut probe = command(&dagster_python(), home.path());
    probe.arg("suites/orchestrators/dagster_probe.py").arg("deploy/dagster/market_pipeline.py");
    probe.arg(&cases_file).arg(&report).envs(env.iter().map(|(k, v)| (k, v)));
    let out = output(probe).await;
    assert!(out.status.success(), "the Dagster probe failed: {}", describe(&out));
    serde_json::from_str(&std::fs::read_to_string(&report).expect("the probe wrote its report")).expect("JSON")
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The date `pipeline` takes from a command line (the real parser), or why it refuses it.
#[track_caller]
fn date_of(command: &[&str]) -> String {
    let cli = Cli::try_parse_from(command).unwrap_or_else(|e| panic!("{command:?} is not a pipeline command: {e}"));
    match cli.command {
        Command::Run(args) => args.date.map(|d| d.to_string()).unwrap_or_else(|| panic!("{command:?}: no --date")),
        _ => panic!("{command:?} is not `pipeline run`"),
    }
}

// --- Airflow ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn airflow_loads_the_dag_and_each_run_at_nine_utc_processes_the_day_before() {
    let report = airflow_report().await;
    assert_eq!(report["import_errors"], json!({}), "DagBag import errors");
    assert_eq!(report["warnings"], json!({}), "warnings while importing the DAG");
    assert_eq!(strings(&report["dag_ids"]), ["market_pipeline_daily"]);
    let dag = &report["dag"];
    assert_eq!(
        (&dag["timetable"], &dag["timetable_summary"]),
        (&json!("CronDataIntervalTimetable"), &json!("0 9 * * *")),
        "the interval timetable, whose logical date is the interval's start: {dag}"
    );
    assert_eq!((&dag["catchup"], &dag["max_active_runs"]), (&json!(true), &json!(1)), "{dag}");
    assert_eq!(dag["start_date"], format!("{START_DATE}T00:00:00+00:00"));

    let task = &report["task"];
    assert!(strings(&task["bases"]).contains(&"KubernetesPodOperator"), "{task}");
    assert_eq!((&task["retries"], &task["serialized_retries"]), (&json!(0), &json!(0)), "the pipeline retries itself");
    assert_eq!(strings(&task["cmds"]), ["pipeline"]);
    assert_eq!(strings(&task["arguments"]), ["run", "--date", "{{ ds }}"]);

    // Every run the scheduler makes starts at 09:00 UTC and runs the UTC date before, the first one the start date.
    let runs = report["first_runs"].as_array().expect("first runs");
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(runs[0]["ds"], START_DATE, "{runs:?}");
    for run in runs.iter().chain([&report["next_run"]]) {
        let starts = DateTime::parse_from_rfc3339(run["run_after"].as_str().expect("run_after")).expect("a time");
        assert_eq!((starts.offset().local_minus_utc(), starts.hour(), starts.minute()), (0, 9, 0), "{run}");
        let yesterday = starts.date_naive().checked_sub_days(Days::new(1)).expect("a day before").to_string();
        assert_eq!(date_of(&strings(&run["command"])), yesterday, "{run}");
    }
    assert_eq!(report["next_run"]["run_after"], "2024-06-04T09:00:00+00:00");
    assert_eq!(strings(&report["next_run"]["command"]), ["pipeline", "run", "--date", "2024-06-03"]);
    // Triggered by hand with a logical date on 2024-06-03 (15:30), it runs 2024-06-03.
    assert_eq!(date_of(&strings(&report["manual_run"]["command"])), "2024-06-03");
}

#[tokio::test]
async fn airflow_runs_the_pipeline_in_the_pod_of_the_kubernetes_cronjob() {
    let report = airflow_report().await;
    let pod = &report["pod"]["spec"];
    let manifest = std::fs::read_to_string(workspace_root().join("deploy/kubernetes/schedule-cronjob.yaml"))
        .expect("the CronJob manifest");
    let cronjob: Value = serde_norway::from_str(&manifest).expect("YAML");
    let cron_pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    for key in ["serviceAccountName", "automountServiceAccountToken", "securityContext", "volumes"] {
        assert!(!cron_pod[key].is_null(), "the CronJob sets {key}");
        assert_eq!(pod[key], cron_pod[key], "pod.spec.{key}");
    }
    let (container, cron_container) = (&pod["containers"][0], &cron_pod["containers"][0]);
    for key in ["image", "command", "securityContext", "resources", "envFrom", "volumeMounts"] {
        assert!(!cron_container[key].is_null(), "the CronJob's container sets {key}");
        assert_eq!(container[key], cron_container[key], "container.{key}");
    }
    assert_eq!(pod["restartPolicy"], "Never", "a failed date is a verdict, not a restart");
    assert_eq!(container["terminationMessagePolicy"], "FallbackToLogsOnError", "the error line reaches Airflow");
    assert!(pod["activeDeadlineSeconds"].as_u64().is_some_and(|s| s >= 3600), "{pod}");
}

/// The task state of one exit code: what the provider's cleanup of a pod that exited with it raised.
#[track_caller]
fn check_task_state(report: &Value, code: u8, state: &str, says: &str) {
    let outcome = &report["exit_codes"][code.to_string()];
    assert_eq!(outcome["state"], state, "exit {code}: {outcome}");
    assert_eq!(outcome["retried"], false, "exit {code} is never retried: {outcome}");
    let message = outcome["message"].as_str().expect("message");
    assert!(message.starts_with(says), "exit {code}: the message should start with {says:?}: {message}");
}

#[tokio::test]
async fn airflow_task_state_follows_the_exit_code_contract() {
    let report = airflow_report().await;
    for (code, state, says) in [
        (0, "success", ""),
        (1, "success", ""),
        (2, "failed", "pipeline exited 2: fail: a check failed, or the run failed"),
        (3, "failed", "pipeline exited 3: error: bad input or configuration"),
        (130, "failed", "pipeline exited 130: interrupted"),
        (137, "failed", "pipeline exited 137: killed by signal 9"),
    ] {
        check_task_state(&report, code, state, says);
    }
    // The exit codes are the pipeline's own (`pipeline::cli::Exit`).
    use pipeline::cli::Exit;
    assert_eq!([Exit::Pass, Exit::Warn, Exit::Fail, Exit::Error, Exit::Interrupted].map(Exit::code), [0, 1, 2, 3, 130]);
}

// --- Dagster ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn dagster_loads_the_definitions_and_the_schedule_asks_for_yesterday_at_nine_utc() {
    // Dagster's own loader, as its webserver and daemon load a code location.
    let home = homes();
    let dagster = dagster_python().with_file_name("dagster");
    let mut validate = command(&dagster, home.path());
    validate.args(["definitions", "validate", "-f", "deploy/dagster/market_pipeline.py"]);
    let out = output(validate).await;
    let said = describe(&out);
    assert!(out.status.success() && said.contains("All code locations passed validation"), "{said}");

    let report = dagster_report(&json!([]), &[]).await;
    assert_eq!(strings(&report["assets"]), ["market_data"]);
    assert_eq!(strings(&report["checks"]), ["market_data_validates"]);
    assert_eq!(strings(&report["job"]["checks"]), ["market_data_validates"], "the job runs the check");
    let schedule = &report["schedule"];
    assert_eq!(
        (&schedule["cron"], &schedule["timezone"], &schedule["job"]),
        (&json!("0 9 * * *"), &json!("UTC"), &json!("market_data_daily"))
    );
    let partitions = &report["partitions"];
    assert_eq!(partitions["first"], START_DATE);
    // A partition is a UTC date, there from the moment it is over.
    assert_eq!(
        partitions["newest_at"],
        json!({"2026-12-03T23:59:59Z": "2026-12-02", "2026-12-04T00:00:00Z": "2026-12-03",
               "2026-12-04T08:59:59Z": "2026-12-03"})
    );
    assert_eq!(
        partitions["requested_at"],
        json!({"2026-12-04T09:00:00Z": ["2026-12-03"], "2026-12-10T09:00:00Z": ["2026-12-09"]})
    );
}

#[tokio::test]
async fn dagster_materializes_a_partition_with_the_pipeline_and_its_check_passes() {
    let day = "2026-12-03";
    let world = super::world(61, day).await;
    let cases = json!([{"name": "real", "partition": day,
                        "env": {"PIPELINE_BIN": workspace_binary("pipeline").to_string_lossy()}}]);
    let report = dagster_report(&cases, &world.env()).await;
    let case = &report["cases"][0];
    assert_eq!(case["failures"], json!([]), "{case}");
    assert_eq!(case["success"], true, "{case}");
    let materialized = &case["materializations"][0];
    assert_eq!(materialized["partition"], day, "{case}");
    let metadata = &materialized["metadata"];
    assert_eq!((&metadata["exit_code"], &metadata["validation_status"]), (&json!(0), &json!("pass")), "{metadata}");
    assert!(metadata["candles"].as_u64().is_some_and(|n| n > 0), "{metadata}");
    assert!(metadata["run_id"].as_i64().is_some(), "{metadata}");
    let check = &case["checks"][0];
    assert_eq!((&check["passed"], &check["metadata"]["status"]), (&json!(true), &json!("pass")), "{check}");
    for family in ["completeness", "quality", "consistency"] {
        assert_eq!(check["metadata"][family], 1.0, "{family}: {check}");
    }
    assert_eq!(super::landed_partitions(&world), ["20261203"], "the run loaded the date's partition");
}

/// A stand-in for `pipeline` in `dir`: records its arguments in `dir/calls`, prints `dir/run.out` or
/// `dir/validate.out` and exits with the code in `dir/run.code` or `dir/validate.code`.
fn stand_in(dir: &Path, run: (u8, &Value), validate: (u8, &Value)) -> PathBuf {
    std::fs::create_dir_all(dir).expect("stand-in dir");
    for (name, (code, out)) in [("run", run), ("validate", validate)] {
        std::fs::write(dir.join(format!("{name}.code")), code.to_string()).expect("code written");
        std::fs::write(dir.join(format!("{name}.out")), if out.is_null() { String::new() } else { out.to_string() })
            .expect("output written");
    }
    let script = dir.join("pipeline");
    std::fs::write(
        &script,
        "#!/bin/sh\ndir=$(dirname \"$0\")\nprintf '%s\\n' \"$*\" >> \"$dir/calls\"\ncat \"$dir/$1.out\"\n\
         exit \"$(cat \"$dir/$1.code\")\"\n",
    )
    .expect("script written");
    let mut permissions = std::fs::metadata(&script).expect("script").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&script, permissions).expect("executable");
    script
}

/// `pipeline validate --json` for one date, in the shape the command prints (`dates[]` and the worst status).
fn validation(date: &str, status: &str, completeness: f64, failing: &[&str]) -> Value {
    let checks: Vec<Value> = failing
        .iter()
        .map(|id| {
            json!({"id": id, "family": "completeness", "description": "a check", "evaluated": 100,
                         "failed": 3, "threshold": {"fail": 0.95, "warn": 0.99}, "status": status, "samples": []})
        })
        .collect();
    json!({"dates": [{"date": date, "status": status, "checks": checks,
                      "scores": {"completeness": completeness, "quality": 1.0, "consistency": 1.0}}],
           "status": status})
}

/// What the asset and its check did for one case.
struct Expected<'a> {
    success: bool,
    materialized: bool,
    /// The start of each step failure's description.
    failures: Vec<&'a str>,
    /// The check's (passed, severity), when it ran.
    check: Option<(bool, &'a str)>,
}

#[track_caller]
fn check_case(case: &Value, expected: &Expected) {
    let failures: Vec<&str> = case["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["description"].as_str().expect("description"))
        .collect();
    assert_eq!(failures.len(), expected.failures.len(), "{}: {failures:#?}", case["name"]);
    for (failure, start) in failures.iter().zip(&expected.failures) {
        assert!(failure.contains(start), "{}: {failure:?} should say {start:?}", case["name"]);
    }
    let check = case["checks"]
        .get(0)
        .map(|c| (c["passed"].as_bool().expect("passed"), c["severity"].as_str().expect("severity")));
    let materialized = case["materializations"].as_array().is_some_and(|m| !m.is_empty());
    assert_eq!(
        (case["success"] == true, materialized, check),
        (expected.success, expected.materialized, expected.check),
        "{}: (run succeeded, materialized, check): {case:#}",
        case["name"]
    );
}

#[tokio::test]
async fn dagster_turns_each_exit_code_into_a_materialization_failure_or_check_verdict() {
    let dir = tempfile::tempdir().expect("temp dir");
    let day = "2026-12-03";
    let landed = json!({"run_id": 7, "counts": {"files": 2, "trades": 900, "candles": 120, "instruments": 5},
                        "validation": {"status": "pass"}});
    let pass = validation(day, "pass", 1.0, &[]);
    let warn = validation(day, "warn", 0.98, &["completeness.hourly_coverage"]);
    let fail = validation(day, "fail", 0.9, &["completeness.candle_per_traded_minute"]);
    let none = Value::Null;
    let cases = [
        ("pass", (0, &landed), (0, &pass)),
        ("warn", (1, &landed), (1, &warn)),
        ("validation-fails", (0, &landed), (2, &fail)),
        ("run-fails", (2, &none), (0, &pass)),
        ("bad-input", (3, &none), (0, &pass)),
        ("interrupted", (130, &none), (0, &pass)),
        ("killed", (137, &none), (0, &pass)),
        ("validate-cannot-work", (0, &landed), (3, &none)),
    ];
    let mut requests: Vec<Value> = cases
        .iter()
        .map(|(name, run, validate)| {
            let bin = stand_in(&dir.path().join(name), *run, *validate);
            json!({"name": name, "partition": day, "env": {"PIPELINE_BIN": bin.to_string_lossy()}})
        })
        .collect();
    requests.push(json!({"name": "no-binary", "partition": day,
                         "env": {"PIPELINE_BIN": dir.path().join("missing/pipeline").to_string_lossy()}}));
    let report = dagster_report(&Value::Array(requests), &[]).await;
    let cases = report["cases"].as_array().expect("cases");
    let case = |name: &str| cases.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("case {name}"));
    let expect = |success, materialized, failures: &[&'static str], check| Expected {
        success,
        materialized,
        failures: failures.to_vec(),
        check,
    };
    let blocked = "1 blocking asset check failed with ERROR severity";
    let table = [
        ("pass", expect(true, true, &[], Some((true, "ERROR")))),
        // A warning: the data is there, the check says so at WARN, nothing downstream is blocked.
        ("warn", expect(true, true, &[], Some((false, "WARN")))),
        ("validation-fails", expect(false, true, &[blocked], Some((false, "ERROR")))),
        ("run-fails", expect(false, false, &["pipeline run --date 2026-12-03 exited 2: fail: a check failed"], None)),
        ("bad-input", expect(false, false, &["exited 3: error: bad input or configuration"], None)),
        ("interrupted", expect(false, false, &["exited 130: interrupted"], None)),
        ("killed", expect(false, false, &["exited 137: killed by signal 9"], None)),
        ("validate-cannot-work", expect(false, true, &["pipeline validate --date 2026-12-03 exited 3: error"], None)),
        ("no-binary", expect(false, false, &["(set PIPELINE_BIN to the pipeline binary)"], None)),
    ];
    for (name, expected) in &table {
        check_case(case(name), expected);
    }

    // The check reports the validation's scores and failing checks.
    let failed = &case("validation-fails")["checks"][0];
    assert_eq!(failed["metadata"]["completeness"], 0.9, "{failed}");
    assert_eq!(strings(&failed["metadata"]["failing_checks"]), ["completeness.candle_per_traded_minute (3/100 fail)"]);
    assert_eq!(case("pass")["materializations"][0]["metadata"]["candles"], 120);
    // What the stand-ins were asked: the partition's date, JSON output.
    let calls = std::fs::read_to_string(dir.path().join("pass/calls")).expect("the stand-in was called");
    assert_eq!(calls, format!("run --date {day} --json\nvalidate --date {day} --json\n"));
    let calls = std::fs::read_to_string(dir.path().join("run-fails/calls")).expect("the stand-in was called");
    assert_eq!(calls, format!("run --date {day} --json\n"), "no validation after a failed run");
}
