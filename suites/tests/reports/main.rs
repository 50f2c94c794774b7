//! Reports: the JSON document (versioned schema), the Markdown summary and the self-contained HTML,
//! from a deterministic validation with known defects; text from outside escaped in every HTML page.
//! Snapshots are reviewed with `cargo insta review`; ids and times are redacted.

use std::collections::BTreeMap;

use fixtures::{Generator, Universe};
use market::checks::{DayInput, Status, ValidationConfig, validate_day};
use market::{Exchange, Interval, Symbol, TradingDay};
use pipeline::report::{Producer, Report, RunSection, StageLine};

fn day() -> TradingDay {
    TradingDay::parse("2024-06-05").expect("valid")
}

/// A validation of two generated symbols where one candle is missing and one has a wrong vwap.
fn report() -> Report {
    let pairs = [
        (Exchange::parse("bitmex").expect("ok"), Symbol::parse("XBTUSD").expect("ok")),
        (Exchange::parse("deribit").expect("ok"), Symbol::parse("BTC-PERPETUAL").expect("ok")),
    ];
    let generator = Generator::new(5, Universe::default_universe().restricted_to(&pairs)).with_activity(0.05);
    let truth = generator.day_truth(day());
    let expected: Vec<_> = truth.candles().cloned().collect();
    let mut landed = expected.clone();
    landed.remove(100);
    landed[200].vwap *= 1.02;
    let instruments: Vec<_> =
        generator.universe().exchanges().iter().flat_map(|e| e.symbols.iter().map(|s| s.instrument.clone())).collect();
    let direct: Vec<(Interval, Vec<_>)> =
        [Interval::M5, Interval::H1, Interval::D1].iter().map(|i| (*i, market::rollup(&expected, *i))).collect();
    let validation = validate_day(
        &DayInput {
            day: day(),
            configured: &pairs,
            instruments: &instruments,
            files: &[],
            expected: &expected,
            direct: &direct,
            landed: &landed,
            counts: &[],
            history: &BTreeMap::new(),
        },
        &ValidationConfig::default(),
    );
    let mut report = Report::new(Producer::Pipeline, day(), &validation);
    let stage = |stage: &str, duration_ms| StageLine {
        stage: stage.to_owned(),
        succeeded: true,
        duration_ms,
        rows: Some(10),
        error: None,
    };
    report.run = Some(RunSection {
        id: 7,
        status: "succeeded".to_owned(),
        error: None,
        stages: vec![stage("download", 120), stage("upload", 80)],
    });
    report
}

fn stages(report: &Report) -> usize {
    report.run.as_ref().map_or(0, |run| run.stages.len())
}

#[test]
fn the_json_report_keeps_its_schema() {
    let report = report();
    assert_eq!(report.status, Status::Fail);
    insta::assert_json_snapshot!("report_json", report, {
        ".generated_at" => "[time]",
        ".checks" => insta::sorted_redaction(),
    });
}

#[test]
fn the_markdown_summary_names_the_failing_checks() {
    let markdown = report().markdown();
    assert!(markdown.len() < 4000, "fits a Slack message: {} bytes", markdown.len());
    insta::assert_snapshot!("report_markdown", markdown);
}

#[test]
fn the_html_report_is_self_contained_with_its_pictures() {
    let report = report();
    let html = report.html();
    for section in ["id=\"heatmap\"", "id=\"trends\"", "id=\"stages\"", "id=\"checks\""] {
        assert!(html.contains(section), "{section} missing");
    }
    let heatmap_cells = html.matches("<rect ").count() - stages(&report);
    assert_eq!(heatmap_cells, report.records.len() * 24, "one cell per symbol and hour");
    assert!(html.contains("vwap is"), "failing samples are shown");
    for external in ["src=\"http", "href=\"http", "<script", "@import", "url("] {
        assert!(!html.contains(external), "no external asset: {external}");
    }
}

/// Text that reaches a page from outside the code: markup, a quote that would end an attribute, an ampersand.
const HOSTILE: &str = "<script>alert(1)</script> \"quoted\" & co";
const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &amp; co";

/// The pipeline's report with hostile text wherever a string of its own is shown: a check's id, description
/// (an attribute) and sample, a baseline's metric, a stage's name.
fn hostile_report() -> Report {
    let mut report = report();
    let check = &mut report.checks[0];
    check.id = HOSTILE.to_owned();
    check.description = HOSTILE.to_owned();
    check.samples.insert(0, market::checks::Sample::general(HOSTILE.to_owned()));
    report.baselines.push(market::checks::Baseline {
        metric: HOSTILE.to_owned(),
        exchange: Exchange::parse("bitmex").expect("ok"),
        symbol: Symbol::parse("XBTUSD").expect("ok"),
        observed: 1.0,
        history: 10,
        median: 1.0,
        mad: 0.1,
        z: 0.0,
        max_z: 6.0,
        min_change: 0.2,
        anomalous: true,
    });
    if let Some(run) = &mut report.run {
        run.stages[0].stage = HOSTILE.to_owned();
    }
    report
}

/// The harness's report with hostile text in each of its sections: the ground truth's names and defect, a fault
/// scenario's words and an external command line with its output.
fn hostile_harness_report() -> harness::report::Report {
    use harness::report::{Counts, ExternalSection, HarnessSections, SymbolLine};
    use harness::scenario::{Expectation, Outcome, ScenarioResult, Verdict};
    use harness::scoring::ExpectedCounts;
    hostile_report().with_sections(HarnessSections {
        seed: 5,
        counts: Counts {
            expected: ExpectedCounts { files: 1, trades_in_day: 1, rows_before_day: 0, rows_after_day: 0, candles: 1 },
            landed_candles: 0,
            landed_instruments: 0,
        },
        symbols: vec![SymbolLine {
            exchange: HOSTILE.to_owned(),
            symbol: HOSTILE.to_owned(),
            expected_candles: 1,
            landed_candles: 0,
            generated_rows: 1,
            rows_before_day: 0,
        }],
        pipeline_validation: None,
        external: Some(ExternalSection {
            command: format!("python3 pipeline.py --date 2024-06-05 '{HOSTILE}'"),
            exit_code: 1,
            signal: None,
            timed_out: false,
            duration_ms: 10,
            output_tail: vec![format!("Traceback: {HOSTILE}")],
        }),
        defect: Some(HOSTILE.to_owned()),
        scenario: Some(ScenarioResult {
            name: HOSTILE.to_owned(),
            description: HOSTILE.to_owned(),
            expectation: Expectation::Recovers,
            outcome: Outcome::WrongData,
            verdict: Verdict::NotMet,
            faults_injected: 1,
            retries: 0,
            recover_ms: None,
            duration_ms: 10,
            exit_code: Some(1),
            cause: Some(HOSTILE.to_owned()),
            findings: vec![HOSTILE.to_owned()],
            notes: vec![HOSTILE.to_owned()],
        }),
        postgres: harness::postgres::Backend::External,
        started_at: report().generated_at,
        duration_ms: 10,
    })
}

/// A load benchmark line whose label is hostile text.
fn hostile_load_line() -> harness::load::LoadLine {
    harness::load::LoadLine {
        condition: harness::load::Condition::Normal,
        label: HOSTILE.to_owned(),
        workers: 1,
        dates: 1,
        seconds: 1.0,
        trades_per_second: 1.0,
        dates_per_minute: 1.0,
        speed_up: None,
        stages: Vec::new(),
        peak_rss_mib: 1.0,
        cpu_seconds: 1.0,
        retries: 0,
        faults_injected: 0,
        succeeded: 1,
        failed: 0,
        success_rate: 1.0,
        rows_lost: 0,
        rows_extra: 0,
        memory_cap_mib: None,
    }
}

#[test]
fn text_from_outside_is_escaped_in_every_html_page() {
    let pages = [
        ("the pipeline's report.html", hostile_report().html()),
        ("the harness's report.html", hostile_harness_report().html()),
        ("load.html", harness::cli::load::html(&[hostile_load_line()])),
    ];
    for (page, html) in pages {
        assert!(!html.contains("<script"), "{page} lets markup through:\n{html}");
        assert!(!html.contains("\"quoted\""), "{page} lets a quote end an attribute:\n{html}");
        assert!(html.contains(ESCAPED), "{page} shows the text escaped:\n{html}");
    }
}

#[test]
fn reports_are_written_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    pipeline::report::write_all(&report(), dir.path()).expect("written");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["report.html", "report.json", "report.md"]);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("read")).expect("json");
    assert_eq!(json["schema_version"], pipeline::report::SCHEMA_VERSION);
    assert_eq!(json["status"], "fail");
}

#[test]
fn the_documented_validation_config_is_the_default() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.config/validation.json");
    let text = std::fs::read_to_string(&path).expect(".config/validation.json exists");
    let documented: ValidationConfig = serde_json::from_str(&text).expect("parses with no unknown field");
    assert_eq!(documented, ValidationConfig::default(), "keep .config/validation.json in step with the defaults");
}

/// Headless Chromium from Debian's package (scripts/test.sh installs it), with the flags this closed
/// network needs (no background networking, no component updates).
fn chromium(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("chromium is installed (scripts/test.sh installs Debian's `chromium` package)");
    std::process::Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
        ])
        .args(["--disable-component-update", "--disable-sync", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs")
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = report();
    pipeline::report::write_all(&report, dir.path()).expect("written");
    let url = format!("file://{}", dir.path().join("report.html").display());
    let profile = dir.path().join("profile");
    let dom = chromium(&["--dump-dom", &url], &profile);
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<svg") && dom.contains("aria-label=\"completeness heatmap\""),
        "the pictures are in the rendered page"
    );
    assert_eq!(dom.matches("<rect").count(), report.records.len() * 24 + stages(&report));
    let png = dir.path().join("report.png");
    let shot = chromium(&["--window-size=1200,1600", &format!("--screenshot={}", png.display()), &url], &profile);
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).expect("a screenshot was written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 20_000, "a page with pictures, not a blank one: {} bytes", bytes.len());
}
