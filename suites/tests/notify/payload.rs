//! What the message says, from typed inputs: verdict at a glance, scores with thresholds, the worst checks,
//! test counts, duration, where the report is.

use harness::nightly::DefectCheck;
use harness::report::{HarnessSections, ReportInput};
use harness::scoring::ids::{CANDLES_EQUAL_TRUTH, SYMBOLS_LANDED};
use harness::slack::{payload, text};
use market::checks::Status;
use market::checks::ids::{
    CANDLE_PER_TRADED_MINUTE, OHLC_INVARIANTS, PRICE_SPIKES, ROLLUPS_MATCH_DIRECT, STALE_PRICES, VOLUME_ANOMALIES,
};
use serde_json::Value;

use super::{check, day, digest, green, tests};

fn header(payload: &Value) -> &str {
    assert_eq!(payload["blocks"][0]["type"], "header");
    payload["blocks"][0]["text"]["text"].as_str().expect("header text")
}

/// Every mrkdwn or plain text of the blocks, in order.
fn texts(payload: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(text)) = map.get("text") {
                    out.push(text.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&payload["blocks"], &mut out);
    out
}

fn section_starting(payload: &Value, prefix: &str) -> String {
    texts(payload).into_iter().find(|t| t.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in {payload:#}"))
}

#[test]
fn a_green_night_says_pass_with_the_three_scores_their_thresholds_and_the_test_counts() {
    let payload = payload(&green());
    assert_eq!(header(&payload), "✅ Nightly PASS — 2024-06-05");
    let fields = payload["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .find_map(|b| b["fields"].as_array())
        .expect("score fields");
    let fields: Vec<&str> = fields.iter().map(|f| f["text"].as_str().expect("text")).collect();
    assert_eq!(
        fields,
        [
            "*completeness*\n✅ 1.0000 (fail &lt; 0.95, warn &lt; 0.99)",
            "*quality*\n✅ 1.0000 (fail &lt; 0.9, warn &lt; 0.99)",
            "*consistency*\n✅ 1.0000 (fail &lt; 0.95, warn &lt; 0.99)",
        ]
    );
    assert_eq!(
        section_starting(&payload, "*Tests*"),
        "*Tests* ✅ 0 failed, 410 passed, 1 skipped of 411 in 5m 12s\n*Harness* ✅ pass (seed 42, 3 checks in 1s)"
    );
    assert_eq!(section_starting(&payload, "*All"), "*All 3 checks pass.*");
    assert_eq!(section_starting(&payload, "Duration"), "Duration 14m 03s");
    assert_eq!(
        section_starting(&payload, "Full report"),
        "Full report: <https://github.com/acme/market/actions/runs/7|https://github.com/acme/market/actions/runs/7>"
    );
}

#[test]
fn failing_checks_are_the_five_worst_by_severity_then_count() {
    let mut night = green();
    night.harness = Ok(digest(vec![
        check(PRICE_SPIKES, Status::Warn, 900, 17_280),
        check(SYMBOLS_LANDED, Status::Fail, 1, 12),
        check(CANDLES_EQUAL_TRUTH, Status::Fail, 1440, 17_280),
        check(OHLC_INVARIANTS, Status::Pass, 0, 17_280),
        check(STALE_PRICES, Status::Warn, 3, 17_280),
        check(ROLLUPS_MATCH_DIRECT, Status::Fail, 60, 1_000),
        check(CANDLE_PER_TRADED_MINUTE, Status::Fail, 1440, 17_280),
        check(VOLUME_ANOMALIES, Status::Warn, 1, 12),
    ]));
    let payload = payload(&night);
    assert_eq!(header(&payload), "❌ Nightly FAIL — 2024-06-05");
    let listed = section_starting(&payload, "*Failing checks");
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "*Failing checks (top 5 of 7):*",
            "❌ `completeness.candle_per_traded_minute` fail — 1440/17280 failed",
            "❌ `consistency.candles_equal_truth` fail — 1440/17280 failed",
            "❌ `consistency.rollups_match_direct` fail — 60/1000 failed",
            "❌ `completeness.symbols_landed` fail — 1/12 failed",
            "⚠️ `quality.price_spikes` warn — 900/17280 failed",
        ]
    );
    let scores =
        payload["blocks"].as_array().expect("blocks").iter().find_map(|b| b["fields"].as_array()).expect("scores");
    assert!(scores[0]["text"].as_str().expect("text").starts_with("*completeness*\n❌ 0.9"), "{scores:?}");
}

#[test]
fn a_warning_only_night_is_a_warning_not_a_failure() {
    let mut night = green();
    night.harness = Ok(digest(vec![check(VOLUME_ANOMALIES, Status::Warn, 1, 12)]));
    assert_eq!(header(&payload(&night)), "⚠️ Nightly WARN — 2024-06-05");
}

#[test]
fn failed_tests_fail_the_night_and_are_named() {
    let mut night = green();
    night.tests = Some(tests(400, 7, 0));
    let payload = payload(&night);
    assert_eq!(header(&payload), "❌ Nightly FAIL — 2024-06-05");
    assert!(
        section_starting(&payload, "*Tests*")
            .starts_with("*Tests* ❌ 7 failed, 400 passed, 0 skipped of 407 in 5m 12s (exit 100)")
    );
    let named = section_starting(&payload, "*Failed tests");
    assert_eq!(named.lines().next(), Some("*Failed tests (first 5 of 7):*"));
    assert_eq!(named.lines().nth(1), Some("• `suites::stages upload::test_0`"));
    assert_eq!(named.lines().count(), 6);
}

#[test]
fn tests_that_could_not_run_fail_the_night_with_the_exit_code() {
    let mut night = green();
    night.tests =
        Some(harness::nightly::TestRun { summary: Err("cannot read junit.xml".to_owned()), exit_code: Some(101) });
    let payload = payload(&night);
    assert_eq!(header(&payload), "❌ Nightly FAIL — 2024-06-05");
    assert!(
        section_starting(&payload, "*Tests*")
            .starts_with("*Tests* ❌ no test results: cannot read junit.xml (exit 101)")
    );
}

#[test]
fn tests_skipped_by_choice_say_not_run_and_do_not_fail_the_night() {
    let mut night = green();
    night.tests = None;
    let payload = payload(&night);
    assert_eq!(header(&payload), "✅ Nightly PASS — 2024-06-05");
    assert!(section_starting(&payload, "*Tests*").starts_with("*Tests* not run\n"));
}

#[test]
fn a_missing_harness_report_is_said_and_is_an_error() {
    let mut night = green();
    night.harness = Err("cannot read reports/report.json: No such file or directory (os error 2)".to_owned());
    let payload = payload(&night);
    assert_eq!(header(&payload), "❌ Nightly ERROR — date unknown");
    assert!(section_starting(&payload, "*Tests*").contains("*Harness* ❌ no report: cannot read reports/report.json"));
}

#[test]
fn the_defect_self_check_fails_the_night_when_a_defect_is_missed() {
    let mut night = green();
    night.defects = vec![
        DefectCheck { defect: "dropped-hour".to_owned(), outcome: Ok(Status::Fail) },
        DefectCheck { defect: "wrong-vwap".to_owned(), outcome: Ok(Status::Pass) },
    ];
    let missed = payload(&night);
    assert_eq!(header(&missed), "❌ Nightly FAIL — 2024-06-05");
    assert!(
        section_starting(&missed, "*Tests*").ends_with(
            "*Defect self-check* ❌ 1 of 2 caught: dropped-hour caught, wrong-vwap MISSED (harness said pass)"
        ),
        "{missed:#}"
    );
    night.defects.pop();
    let caught = payload(&night);
    assert_eq!(header(&caught), "✅ Nightly PASS — 2024-06-05");
    assert!(
        section_starting(&caught, "*Tests*").ends_with("*Defect self-check* ✅ 1 of 1 caught: dropped-hour caught")
    );
}

#[test]
fn the_fallback_text_carries_the_verdict_for_notifications() {
    let payload = payload(&green());
    assert_eq!(
        payload["text"],
        "✅ Nightly PASS — 2024-06-05: tests ✅ 0 failed, 410 passed, 1 skipped of 411 in 5m 12s; harness ✅ pass (seed 42, 3 checks in 1s)"
    );
    assert_eq!(payload["unfurl_links"], false);
}

#[test]
fn a_local_report_path_is_shown_as_code_not_as_a_link() {
    let mut night = green();
    night.report_location = Some("reports/nightly/2024-06-05/report.html".to_owned());
    assert_eq!(
        section_starting(&payload(&night), "Full report"),
        "Full report: `reports/nightly/2024-06-05/report.html`"
    );
}

#[test]
fn the_printed_text_says_the_same_as_the_blocks() {
    let mut night = green();
    night.harness = Ok(digest(vec![check(CANDLES_EQUAL_TRUTH, Status::Fail, 1440, 17_280)]));
    let printed = text(&night);
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        [
            "❌ Nightly FAIL — 2024-06-05",
            "Tests:    ✅ 0 failed, 410 passed, 1 skipped of 411 in 5m 12s",
            "Harness:  ❌ fail (seed 42, 1 check in 1s)",
            "Scores:   ✅ completeness 1.0000 (fail < 0.95, warn < 0.99)",
            "          ✅ quality      1.0000 (fail < 0.9, warn < 0.99)",
            "          ❌ consistency  0.9167 (fail < 0.95, warn < 0.99)",
            "Failing checks (top 1 of 1):",
            "  ❌ consistency.candles_equal_truth fail — 1440/17280 failed",
            "Duration: 14m 03s",
            "Report:   https://github.com/acme/market/actions/runs/7",
        ]
    );
}

#[test]
fn a_report_reads_back_exactly_as_harness_run_writes_it() {
    let generator = fixtures::Generator::new(5, fixtures::Universe::default_universe()).with_activity(0.01);
    let truth = generator.day_truth(day());
    let landed: Vec<market::Candle> = truth.candles().cloned().collect();
    let validation = harness::scoring::score(
        &truth,
        &landed,
        &harness::scoring::LandedTables::default(),
        None,
        market::checks::Thresholds::DEFAULT,
    );
    let report = harness::report::build(&ReportInput {
        day: day(),
        seed: 5,
        truth: &truth,
        landed: &landed,
        landed_instruments: 0,
        outcome: None,
        validation,
        postgres: harness::Backend::External,
        started_at: chrono::Utc::now(),
        defect: Some(harness::defects::Defect::WrongVwap),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    harness::run::write_report(&report, dir.path()).expect("written");
    let read = pipeline::report::read::<HarnessSections>(dir.path()).expect("readable");
    assert_eq!(read, report);
    assert_eq!(read.sections.defect.as_deref(), Some("wrong-vwap"));
    assert!(!read.checks.is_empty());
}

#[test]
fn a_report_of_another_schema_version_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("report.json"), r#"{"schema_version": 1, "date": "2024-06-05"}"#).expect("write");
    let read = |dir: &std::path::Path| pipeline::report::read::<HarnessSections>(dir).map(|_| ());
    let error = read(dir.path()).expect_err("refused").to_string();
    assert!(error.ends_with("has schema_version 1; this binary reads version 2"), "{error}");
    std::fs::write(dir.path().join("report.json"), "{}").expect("write");
    let error = read(dir.path()).expect_err("refused").to_string();
    assert!(error.contains("is not a report: missing field `schema_version`"), "{error}");
}
