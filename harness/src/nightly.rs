//! The nightly run's results as one typed summary, read from the files its steps leave behind (`harness
//! notify` turns it into the Slack message).
//!
//! The inputs are files the other steps of `scripts/nightly.sh` leave behind: the clean harness run's
//! `report.json` (the workspace's one report model, read back with `pipeline::report::read`), nextest's JUnit
//! report, the defect self-check's reports, plus the run's duration and where the full report is. This
//! module runs nothing (the script does) and knows nothing of Slack's format (`slack.rs`). A missing or
//! unreadable input is part of the message ("no JUnit report"), never a reason to stay silent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use market::TradingDay;
use market::checks::Status;

use crate::crash::CrashOutcome;
use crate::report::{HarnessSections, Report};
use crate::scenario::{ScenarioResult, Verdict};

/// Failed tests named in the message.
pub const TOP_TESTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum NightlyError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} is not a JUnit report: {reason}")]
    NotJunit { path: PathBuf, reason: String },
}

/// What nextest reported, from its JUnit file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestSummary {
    pub passed: u64,
    pub failed: u64,
    /// Tests reported as skipped (`#[ignore]`d ones, with the nightly profile's `report-skipped`).
    pub skipped: u64,
    /// Tests that failed, then passed on a retry (counted in `passed`).
    pub flaky: u64,
    /// The run's wall time as nextest recorded it.
    pub duration: Option<Duration>,
    /// Failed tests (and failed setup scripts) as `binary test::path`, in report order.
    pub failures: Vec<String>,
}

impl TestSummary {
    pub fn total(&self) -> u64 {
        self.passed + self.failed + self.skipped
    }

    /// Reads nextest's JUnit XML (Jenkins flavour: a `<testsuite>` per binary, a `<testcase>` per test).
    /// Setup scripts (`@setup-script:NAME` suites) are not tests: they count only when they fail.
    pub fn from_junit(xml: &str) -> Result<TestSummary, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        let root = doc.root_element();
        if !root.has_tag_name("testsuites") {
            return Err(format!("the root element is <{}>, not <testsuites>", root.tag_name().name()));
        }
        let mut summary = TestSummary {
            duration: root
                .attribute("time")
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(Duration::from_secs_f64),
            ..TestSummary::default()
        };
        for suite in root.children().filter(|n| n.has_tag_name("testsuite")) {
            let suite_name = suite.attribute("name").unwrap_or_default();
            let setup_script = suite_name.starts_with("@setup-script:");
            for case in suite.children().filter(|n| n.has_tag_name("testcase")) {
                let has = |tag: &str| case.children().any(|c| c.has_tag_name(tag));
                if has("failure") || has("error") {
                    summary.failed += 1;
                    let name = case.attribute("name").unwrap_or_default();
                    summary.failures.push(if setup_script {
                        suite_name.to_owned()
                    } else {
                        format!("{suite_name} {name}")
                    });
                } else if setup_script {
                    continue;
                } else if has("skipped") {
                    summary.skipped += 1;
                } else {
                    summary.passed += 1;
                    if has("flakyFailure") || has("flakyError") {
                        summary.flaky += 1;
                    }
                }
            }
        }
        Ok(summary)
    }

    pub fn read_junit(path: &Path) -> Result<TestSummary, NightlyError> {
        let xml = std::fs::read_to_string(path)
            .map_err(|e| NightlyError::Read { path: path.to_owned(), reason: e.to_string() })?;
        TestSummary::from_junit(&xml).map_err(|reason| NightlyError::NotJunit { path: path.to_owned(), reason })
    }
}

/// The nightly's test step: what nextest reported and how the test command exited.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRun {
    /// From the JUnit report, or why there is none (the tests could not be built or started).
    pub summary: Result<TestSummary, String>,
    /// The test command's exit code, when known.
    pub exit_code: Option<i32>,
}

impl TestRun {
    /// Fail when a test failed or the command failed; error when nothing tells how the tests went.
    pub fn status(&self) -> Status {
        let command_failed = self.exit_code.is_some_and(|code| code != 0);
        match &self.summary {
            Ok(summary) if summary.failed > 0 || command_failed => Status::Fail,
            Ok(_) => Status::Pass,
            Err(_) if command_failed => Status::Fail,
            Err(_) if self.exit_code == Some(0) => Status::Warn,
            Err(_) => Status::Error,
        }
    }
}

/// One run of the harness with a deliberate defect: the harness must fail it (the nightly self-check).
#[derive(Debug, Clone, PartialEq)]
pub struct DefectCheck {
    pub defect: String,
    /// The harness's status for the run, or why its report could not be read.
    pub outcome: Result<Status, String>,
}

impl DefectCheck {
    pub fn caught(&self) -> bool {
        self.outcome == Ok(Status::Fail)
    }

    /// Reads a defect run's report directory; the defect's name comes from the report (else the directory).
    pub fn read(dir: &Path) -> DefectCheck {
        let fallback = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match pipeline::report::read::<HarnessSections>(dir) {
            Ok(report) => {
                DefectCheck { defect: report.sections.defect.unwrap_or(fallback), outcome: Ok(report.status) }
            }
            Err(err) => DefectCheck { defect: fallback, outcome: Err(err.to_string()) },
        }
    }
}

/// A step of the nightly that reports in a file of its own: crash consistency (`crash.json`), fault scenarios
/// (`scenarios.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: &'static str,
    pub status: Status,
    /// One line: what it found, or why its file could not be read.
    pub summary: String,
}

impl Step {
    fn unreadable(name: &'static str, path: &Path, reason: impl std::fmt::Display) -> Step {
        Step { name, status: Status::Error, summary: format!("cannot read {}: {reason}", path.display()) }
    }

    /// `harness crash --json`'s output: pass when it ended consistent.
    pub fn crash(path: &Path) -> Step {
        const NAME: &str = "Crash consistency";
        let outcome = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<CrashOutcome>(&bytes).map_err(|e| e.to_string()));
        match outcome {
            Ok(o) => Step {
                name: NAME,
                status: if o.consistent() { Status::Pass } else { Status::Fail },
                summary: format!(
                    "{} kills over {} dates, final run exit {}, {} rows: {} lost, {} extra",
                    o.kills.len(),
                    o.dates,
                    o.final_exit_code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    o.rows_expected,
                    o.rows_lost,
                    o.rows_extra
                ),
            },
            Err(reason) => Step::unreadable(NAME, path, reason),
        }
    }

    /// `harness scenario run --report-dir`'s `scenarios.json`: pass when every expectation was met (or could not
    /// apply); the scenarios not met are named.
    pub fn scenarios(path: &Path) -> Step {
        const NAME: &str = "Fault scenarios";
        let results = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<Vec<ScenarioResult>>(&bytes).map_err(|e| e.to_string()));
        match results {
            Ok(results) => {
                let not_met: Vec<&str> =
                    results.iter().filter(|r| r.verdict == Verdict::NotMet).map(|r| r.name.as_str()).collect();
                let na = results.iter().filter(|r| r.verdict == Verdict::NotApplicable).count();
                let met = results.len() - not_met.len() - na;
                let mut summary = format!("{met} of {} met, {na} n/a", results.len());
                if !not_met.is_empty() {
                    summary.push_str(&format!("; NOT MET: {}", not_met.join(", ")));
                }
                Step { name: NAME, status: if not_met.is_empty() { Status::Pass } else { Status::Fail }, summary }
            }
            Err(reason) => Step::unreadable(NAME, path, reason),
        }
    }
}

/// The score the issue of mutation testing set: at least this share of viable mutants caught.
pub const MUTATION_TARGET: f64 = 0.90;

/// The counts of one `cargo mutants` run, as its `outcomes.json` gives them.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct MutantCounts {
    caught: u64,
    missed: u64,
    timeout: u64,
}

impl Step {
    /// `cargo mutants`' `outcomes.json` of each scope (`scripts/mutants.sh`, the scope named by the directory
    /// above `mutants.out`): the share of viable mutants the tests caught (a timeout counts as caught: the
    /// mutant made a test hang), per scope and in all. Pass at the target or above, warn below.
    pub fn mutants(paths: &[PathBuf]) -> Step {
        const NAME: &str = "Mutation score";
        let mut scopes = Vec::new();
        let (mut caught, mut viable, mut missed) = (0, 0, 0);
        for path in paths {
            let counts = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<MutantCounts>(&bytes).map_err(|e| e.to_string()));
            let counts = match counts {
                Ok(counts) => counts,
                Err(reason) => return Step::unreadable(NAME, path, reason),
            };
            let scope = path
                .ancestors()
                .find(|p| p.file_name().is_some_and(|n| n == "mutants.out"))
                .and_then(|p| p.parent()?.file_name())
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            let scope_viable = counts.caught + counts.missed + counts.timeout;
            let scope_caught = counts.caught + counts.timeout;
            scopes.push(format!("{scope} {} ({scope_caught}/{scope_viable})", percent(scope_caught, scope_viable)));
            caught += scope_caught;
            viable += scope_viable;
            missed += counts.missed;
        }
        let score = if viable == 0 { 1.0 } else { caught as f64 / viable as f64 };
        Step {
            name: NAME,
            status: if score >= MUTATION_TARGET { Status::Pass } else { Status::Warn },
            summary: format!(
                "{} of {viable} viable mutants caught, {missed} missed (target {:.0}%): {}",
                percent(caught, viable),
                MUTATION_TARGET * 100.0,
                scopes.join(", ")
            ),
        }
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 { "100%".to_owned() } else { format!("{:.1}%", 100.0 * part as f64 / whole as f64) }
}

/// Everything the nightly message says.
#[derive(Debug, Clone, PartialEq)]
pub struct Nightly {
    /// The clean harness run's report, or why it could not be read.
    pub harness: Result<Report, String>,
    /// `None` when the tests were not run (`NIGHTLY_SKIP_TESTS=1`).
    pub tests: Option<TestRun>,
    pub defects: Vec<DefectCheck>,
    /// Crash consistency and fault scenarios, when they ran.
    pub steps: Vec<Step>,
    /// Wall time of the whole nightly run.
    pub duration: Option<Duration>,
    /// Where the full report is: a URL or a path.
    pub report_location: Option<String>,
}

impl Nightly {
    /// The worst of the tests, the clean harness run, the defect self-check (a missed defect fails) and the
    /// other steps.
    pub fn status(&self) -> Status {
        let harness = self.harness.as_ref().map_or(Status::Error, |r| r.status);
        let tests = self.tests.as_ref().map_or(Status::Pass, TestRun::status);
        let defects = if self.defects.iter().all(DefectCheck::caught) { Status::Pass } else { Status::Fail };
        let steps = self.steps.iter().map(|s| s.status).max().unwrap_or(Status::Pass);
        harness.max(tests).max(defects).max(steps)
    }

    pub fn date(&self) -> Option<TradingDay> {
        self.harness.as_ref().ok().map(|r| r.date)
    }
}

/// `1h 02m`, `14m 03s`, `42s`.
pub fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="6" failures="1" errors="0" uuid="0" timestamp="2024-06-06T10:30:00Z" time="312.5">
    <testsuite name="@setup-script:postgres" tests="1" disabled="0" errors="0" failures="0">
        <testcase name="postgres" classname="@setup-script:postgres" time="0.4"/>
    </testsuite>
    <testsuite name="suites::stages" tests="4" disabled="0" errors="0" failures="1">
        <testcase name="upload::a_passing_test" classname="suites::stages" time="1.0"/>
        <testcase name="upload::a_failing_test" classname="suites::stages" time="1.0">
            <failure type="test failure">thread panicked: &lt;oops&gt;</failure>
            <rerunFailure type="test failure"/>
        </testcase>
        <testcase name="upload::a_flaky_test" classname="suites::stages" time="1.0">
            <flakyFailure type="test failure"/>
        </testcase>
        <testcase name="upload::an_ignored_test" classname="suites::stages" time="0"><skipped/></testcase>
    </testsuite>
    <testsuite name="market" tests="1" disabled="0" errors="0" failures="0">
        <testcase name="checks::tests::ohlc" classname="market" time="0.01"/>
    </testsuite>
</testsuites>"#;

    #[test]
    fn junit_counts_tests_not_setup_scripts_and_names_the_failures() {
        let summary = TestSummary::from_junit(JUNIT).expect("valid JUnit");
        assert_eq!(
            summary,
            TestSummary {
                passed: 3,
                failed: 1,
                skipped: 1,
                flaky: 1,
                duration: Some(Duration::from_millis(312_500)),
                failures: vec!["suites::stages upload::a_failing_test".to_owned()],
            }
        );
        assert_eq!(summary.total(), 5);
    }

    #[test]
    fn a_failed_setup_script_counts_as_a_failure_under_its_own_name() {
        let xml = r#"<testsuites name="nextest-run" tests="1" failures="1" errors="0" time="1.0">
            <testsuite name="@setup-script:postgres" tests="1" failures="1" errors="0">
                <testcase name="postgres" classname="@setup-script:postgres"><failure/></testcase>
            </testsuite></testsuites>"#;
        let summary = TestSummary::from_junit(xml).expect("valid JUnit");
        assert_eq!((summary.passed, summary.failed), (0, 1));
        assert_eq!(summary.failures, ["@setup-script:postgres"]);
    }

    #[test]
    fn something_else_than_junit_is_refused_with_the_reason() {
        assert!(TestSummary::from_junit("<html></html>").expect_err("not JUnit").contains("<html>"));
        assert!(TestSummary::from_junit("not xml at all").is_err());
    }

    #[test]
    fn test_run_status_follows_failures_and_the_exit_code() {
        let ok = TestSummary { passed: 3, ..TestSummary::default() };
        let failing = TestSummary { passed: 2, failed: 1, ..TestSummary::default() };
        let check = |summary: Result<TestSummary, String>, exit_code, expected| {
            assert_eq!(TestRun { summary, exit_code }.status(), expected);
        };
        check(Ok(ok.clone()), Some(0), Status::Pass);
        check(Ok(ok.clone()), None, Status::Pass);
        check(Ok(ok), Some(101), Status::Fail);
        check(Ok(failing), Some(100), Status::Fail);
        check(Err("no JUnit".into()), Some(101), Status::Fail);
        check(Err("no JUnit".into()), Some(0), Status::Warn);
        check(Err("no JUnit".into()), None, Status::Error);
    }

    #[test]
    fn the_mutation_score_counts_timeouts_as_caught_and_names_each_scope() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |scope: &str, text: &str| {
            let path = dir.path().join(scope).join("mutants.out").join("outcomes.json");
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("created");
            std::fs::write(&path, text).expect("written");
            path
        };
        let market =
            write("market", r#"{"total_mutants": 100, "caught": 90, "missed": 5, "timeout": 2, "unviable": 3}"#);
        let pipeline =
            write("pipeline", r#"{"total_mutants": 12, "caught": 9, "missed": 1, "timeout": 0, "unviable": 2}"#);
        let step = Step::mutants(&[market.clone(), pipeline]);
        assert_eq!(step.status, Status::Pass, "{step:?}");
        assert_eq!(
            step.summary,
            "94.4% of 107 viable mutants caught, 6 missed (target 90%): market 94.8% (92/97), pipeline 90.0% (9/10)"
        );
        let low = write("low", r#"{"caught": 8, "missed": 2, "timeout": 0, "unviable": 0}"#);
        assert_eq!(Step::mutants(&[low]).status, Status::Warn);
        let broken = write("broken", "not json");
        assert_eq!(Step::mutants(&[market, broken]).status, Status::Error);
    }

    #[test]
    fn steps_read_their_files_and_name_what_is_not_met() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("scenarios.json");
        let result = |name: &str, verdict: Verdict| {
            serde_json::json!({"name": name, "description": "", "expectation": "recovers", "outcome": "recovered",
                "verdict": verdict, "faults_injected": 1, "retries": 1, "recover_ms": null, "duration_ms": 5,
                "exit_code": null, "cause": null, "findings": [], "notes": []})
        };
        let all = [result("a", Verdict::Met), result("b", Verdict::NotApplicable), result("c", Verdict::NotMet)];
        std::fs::write(&path, serde_json::to_vec(&all).expect("JSON")).expect("written");
        let step = Step::scenarios(&path);
        assert_eq!((step.status, step.summary.as_str()), (Status::Fail, "1 of 3 met, 1 n/a; NOT MET: c"));
        std::fs::write(&path, serde_json::to_vec(&all[..2]).expect("JSON")).expect("written");
        assert_eq!(Step::scenarios(&path).status, Status::Pass);
        let missing = Step::crash(&dir.path().join("crash.json"));
        assert_eq!(missing.status, Status::Error);
        assert!(missing.summary.starts_with("cannot read "), "{}", missing.summary);
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        for (secs, text) in [(0, "0s"), (42, "42s"), (60, "1m 00s"), (843, "14m 03s"), (3720, "1h 02m")] {
            assert_eq!(human_duration(Duration::from_secs(secs)), text, "{secs} s");
        }
    }
}
