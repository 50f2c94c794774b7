//! `.github/workflows/*.yml`: valid YAML with the structure each workflow promises, and no logic of their own:
//! every `run:` is one call of a script in this repository (`bash scripts/…` or `bash .ci/run STEP`), so what CI
//! does is what a person can run. (`.ci/run workflows` also runs jactionlint over them.)

use serde_json::Value;

use super::{read, root};

fn workflow(name: &str) -> Value {
    let text = read(&format!(".github/workflows/{name}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"))
}

fn workflow_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join(".github/workflows"))
        .expect(".github/workflows")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

/// Every step of every job.
fn steps(workflow: &Value) -> Vec<&Value> {
    workflow["jobs"]
        .as_object()
        .expect("jobs")
        .values()
        .flat_map(|job| job["steps"].as_array().expect("steps").iter())
        .collect()
}

fn runs(workflow: &Value) -> Vec<&str> {
    steps(workflow).into_iter().filter_map(|s| s["run"].as_str()).map(str::trim).collect()
}

/// The `path` inputs of the upload-artifact steps, one path a line.
fn uploaded(workflow: &Value) -> Vec<&str> {
    steps(workflow)
        .into_iter()
        .filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact@")))
        .flat_map(|s| s["with"]["path"].as_str().expect("upload path").lines().map(str::trim))
        .filter(|l| !l.is_empty())
        .collect()
}

/// The steps `.ci/run` knows, from its `case`.
fn ci_run_steps() -> Vec<String> {
    read(".ci/run")
        .lines()
        .filter_map(|l| l.trim().split_once(") ").map(|(step, _)| step.trim().to_owned()))
        .filter(|s| s.chars().all(|c| c.is_ascii_lowercase()) && !s.is_empty())
        .collect()
}

#[test]
fn every_run_step_is_one_call_of_a_script_in_the_repository() {
    let known_steps = ci_run_steps();
    assert_eq!(known_steps, ["fmt", "clippy", "workflows", "deps", "test", "image"], "the steps of .ci/run");
    for name in workflow_files() {
        let workflow = workflow(&name);
        for run in runs(&workflow) {
            assert!(
                !run.contains('\n') && !run.contains("&&") && !run.contains(';'),
                "{name}: one command per step: {run:?}"
            );
            let words: Vec<&str> = run.split_whitespace().collect();
            assert_eq!(words.first(), Some(&"bash"), "{name}: {run:?} calls a script with bash");
            let script = words.get(1).copied().unwrap_or_default();
            assert!(
                script == ".ci/run" || (script.starts_with("scripts/") && script.ends_with(".sh")),
                "{name}: {run:?} runs a script of the repository"
            );
            assert!(root().join(script).is_file(), "{name}: {script} exists");
            if script == ".ci/run" {
                for step in &words[2..] {
                    assert!(known_steps.iter().any(|s| s == step), "{name}: .ci/run has no step {step:?}");
                }
            }
        }
    }
}

#[test]
fn ci_runs_on_push_and_pull_requests_and_uploads_the_junit_report() {
    let ci = workflow("ci.yml");
    assert!(ci["on"]["push"].is_object(), "on.push: {:#}", ci["on"]);
    assert!(ci["on"].as_object().expect("on").contains_key("pull_request"), "on.pull_request");
    let runs = runs(&ci);
    let steps: Vec<&str> = runs.iter().filter_map(|r| r.strip_prefix("bash .ci/run ")).collect();
    // Every step of `.ci/run`, in its order: the workflow is `.ci/run` split into visible steps.
    assert_eq!(steps, ci_run_steps().iter().map(String::as_str).collect::<Vec<_>>());
    assert!(uploaded(&ci).contains(&"target/nextest/ci/junit.xml"), "{:?}", uploaded(&ci));
    assert!(ci["jobs"]["ci"]["timeout-minutes"].as_u64().is_some_and(|m| m <= 90), "bounded like CI's 90 minutes");
}

#[test]
fn the_nightly_runs_after_the_0900_utc_pipeline_with_slack_from_a_secret() {
    let nightly = workflow("nightly.yml");
    let cron = nightly["on"]["schedule"][0]["cron"].as_str().expect("on.schedule[0].cron");
    let fields: Vec<&str> = cron.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{cron}");
    let (minute, hour): (u32, u32) =
        (fields[0].parse().expect("a fixed minute"), fields[1].parse().expect("a fixed hour"));
    assert!(minute < 60 && (hour * 60 + minute) > 9 * 60 && hour < 24, "{cron} fires after 09:00 UTC");
    assert_eq!(&fields[2..], ["*", "*", "*"], "{cron} fires daily");
    assert!(nightly["on"].as_object().expect("on").contains_key("workflow_dispatch"), "can be started by hand");

    let steps = steps(&nightly);
    let nightly_step = steps.iter().find(|s| s["run"] == "bash scripts/nightly.sh").expect("runs scripts/nightly.sh");
    assert_eq!(nightly_step["env"]["SLACK_WEBHOOK_URL"], "${{ secrets.SLACK_WEBHOOK_URL }}");
    let bench = steps.iter().find(|s| s["run"] == "bash scripts/bench.sh").expect("runs scripts/bench.sh");
    assert_eq!(bench["if"], "${{ !cancelled() }}", "benchmarks run even when the tests failed");
    let restore =
        steps.iter().position(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/cache/restore@")));
    let save = steps.iter().position(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/cache/save@")));
    let bench_at = steps.iter().position(|s| s["run"] == "bash scripts/bench.sh");
    assert!(restore < bench_at && bench_at < save, "the previous baseline is restored before, this one saved after");
    for step in [restore, save].into_iter().flatten() {
        assert_eq!(steps[step]["with"]["path"], "target/criterion");
    }
    let uploaded = uploaded(&nightly);
    for path in ["reports/nightly/", "target/nextest/nightly/junit.xml", "target/criterion/"] {
        assert!(uploaded.contains(&path), "{path} uploaded: {uploaded:?}");
    }
}

#[test]
fn no_workflow_holds_a_webhook_or_a_key() {
    for name in workflow_files() {
        let text = read(&format!(".github/workflows/{name}"));
        assert!(!text.contains("hooks.slack.com"), "{name} holds a webhook URL");
        for line in text.lines().filter(|l| l.contains("SLACK_WEBHOOK_URL:")) {
            assert!(line.trim_end().ends_with("${{ secrets.SLACK_WEBHOOK_URL }}"), "{name}: {line}");
        }
    }
}

#[test]
fn the_nightly_profile_writes_the_junit_report_the_workflow_uploads() {
    let config = read(".config/nextest.toml");
    let profile = config.split("[profile.nightly]").nth(1).expect("a nightly profile");
    assert!(profile.contains("inherits = \"ci\"") && profile.contains("retries = 0"), "{profile}");
    let junit = profile.split("[profile.nightly.junit]").nth(1).expect("nightly JUnit");
    assert!(junit.contains("path = \"junit.xml\""), "target/nextest/nightly/junit.xml: {junit}");
    assert!(read("scripts/nightly.sh").contains("nextest/nightly/junit.xml"));
}
