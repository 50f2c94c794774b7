//! `harness run --pipeline-cmd`: what a command wrote to the fake BigQuery, scored against ground truth with the
//! same checks, report and exit codes as the in-process pipeline.

use harness::scoring::ids::{self, CANDLES_EQUAL_TRUTH, COMMAND_EXIT_STATUS, RUN_RECORD_COUNTS, SYMBOLS_LANDED};
use serde_json::Value;

use crate::support::{ACTIVITY, SYMBOLS, binary, command, day, describe, output, python, workspace_root};

const EXAMPLE: &str = "examples/python-pipeline/pipeline.py";
const BROKEN: &str = "examples/python-pipeline-broken/pipeline.py";
const PANDAS: &str = "examples/python-pandas-pipeline/pipeline.py";
const PANDAS_BROKEN: &str = "examples/python-pandas-pipeline-broken/pipeline.py";

/// `harness run --pipeline-cmd COMMAND` for the suite's date and pairs: its exit code and report.json.
async fn run(pipeline_cmd: &str) -> (Option<i32>, Value, String) {
    run_with(pipeline_cmd, &[]).await
}

async fn run_with(pipeline_cmd: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    run_on(SYMBOLS, pipeline_cmd, extra).await
}

async fn run_on(symbols: &str, pipeline_cmd: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let reports = tempfile::tempdir().expect("temp dir");
    let mut harness = command(&binary("harness"));
    harness
        .args(["run", "--seed", "11", "--activity", ACTIVITY, "--symbols", symbols, "--date"])
        .arg(day().to_string())
        .arg("--report-dir")
        .arg(reports.path())
        .args(["--pipeline-cmd", pipeline_cmd])
        .args(extra);
    let out = output(harness).await;
    let text = describe(&out);
    let report = std::fs::read(reports.path().join("report.json"))
        .unwrap_or_else(|err| panic!("no report.json ({err}):\n{text}"));
    let report: Value = serde_json::from_slice(&report).expect("report.json is JSON");
    for rendered in ["report.md", "report.html"] {
        assert!(reports.path().join(rendered).is_file(), "{rendered} is written too");
    }
    (out.status.code(), report, text)
}

fn python_cmd(script: &str) -> String {
    format!("{} {script} --date {{date}}", python().display())
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("{id} in {report:#}"))
}

fn failing(report: &Value) -> Vec<String> {
    let checks = report["checks"].as_array().expect("checks");
    checks.iter().filter(|c| c["failed"] != 0).map(|c| c["id"].as_str().unwrap_or_default().to_owned()).collect()
}

/// A correct pipeline: every score 1, nothing failing, the run-record check skipped (not passed) and said so.
#[track_caller]
fn assert_clean_pass(code: Option<i32>, report: &Value, text: &str) {
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(report["status"], "pass", "{text}");
    for family in ["completeness", "quality", "consistency"] {
        assert_eq!(report["scores"][family], 1.0, "{family}: {text}");
    }
    assert_eq!(failing(report), Vec::<String>::new(), "{text}");
    let expected = &report["counts"]["expected"]["candles"];
    assert!(expected.as_u64().is_some_and(|n| n > 500), "a real day of candles: {expected}");
    assert_eq!(&report["counts"]["landed_candles"], expected);
    // The three exchanges' whole lists: the traded pairs, expired futures, options, delisted symbols.
    assert!(report["counts"]["landed_instruments"].as_u64().is_some_and(|n| n > 100), "{}", report["counts"]);
    assert_eq!(report["skipped_checks"][0]["id"], RUN_RECORD_COUNTS);
    assert!(
        report["checks"].as_array().expect("checks").iter().all(|c| c["id"] != RUN_RECORD_COUNTS),
        "a skipped check is not scored"
    );
    assert_eq!(report["pipeline"], Value::Null, "no in-process run");
    assert_eq!(report["external"]["exit_code"], 0);
    assert_eq!(check(report, COMMAND_EXIT_STATUS)["failed"], 0);
}

#[tokio::test]
async fn the_python_example_on_the_official_clients_passes_with_every_score_at_one() {
    let (code, report, text) = run(&python_cmd(EXAMPLE)).await;
    assert_clean_pass(code, &report, &text);
    assert_eq!(report["external"]["command"], python_cmd(EXAMPLE).replace("{date}", &day().to_string()));
    assert!(
        report["external"]["output_tail"].to_string().contains("ok: 3 files"),
        "the command's last lines are in the report: {}",
        report["external"]
    );
}

#[tokio::test]
async fn the_reference_pipeline_binary_passes_through_the_same_contract() {
    let cmd = format!("{} run --date {{date}}", binary("pipeline").display());
    let (code, report, text) = run(&cmd).await;
    assert_clean_pass(code, &report, &text);
}

#[tokio::test]
async fn the_broken_copy_fails_with_a_finding_that_names_bucketing_by_local_timestamp() {
    let (code, report, text) = run(&python_cmd(BROKEN)).await;
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(report["status"], "fail");
    let matches = check(&report, CANDLES_EQUAL_TRUTH);
    assert_eq!(matches["status"], "fail", "{matches:#}");
    assert_eq!(
        matches["samples"][0]["detail"],
        "diagnosis: the landed candles are exactly what bucketing trades by local_timestamp (arrival time) instead \
         of the exchange timestamp gives",
        "{text}"
    );
    assert!(text.contains("bucketing trades by local_timestamp"), "the summary names it too:\n{text}");
    assert_eq!(report["external"]["exit_code"], 0, "the broken pipeline believes it succeeded");
}

/// The one line by which a broken copy differs from its example, past each file's docstring, so that the copy
/// cannot drift: the example's line and the copy's.
fn the_one_difference(example: &str, broken: &str) -> (String, String) {
    let code = |path: &str| {
        let text = std::fs::read_to_string(workspace_root().join(path)).expect("committed");
        let start = text[3..].find("\"\"\"").expect("a module docstring") + 6;
        text[start..].lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let (good, broken) = (code(example), code(broken));
    assert_eq!(good.len(), broken.len(), "same lines but the defect");
    let differences: Vec<(&String, &String)> = good.iter().zip(&broken).filter(|(a, b)| a != b).collect();
    assert_eq!(differences.len(), 1, "{differences:#?}");
    (differences[0].0.trim().to_owned(), differences[0].1.trim().to_owned())
}

#[test]
fn the_broken_copies_differ_from_their_examples_by_their_one_defect() {
    let (good, broken) = the_one_difference(EXAMPLE, BROKEN);
    assert_eq!(good, "timestamp = int(row[2])");
    assert!(broken.contains("int(row[3])  # DEFECT"), "{broken}");
    let (good, broken) = the_one_difference(PANDAS, PANDAS_BROKEN);
    assert_eq!(good, r#"candles["vwap"] = candles["quote_volume"] / candles["volume"]"#);
    assert!(broken.contains(r#"sums["price"].mean()  # DEFECT"#), "{broken}");
}

#[tokio::test]
async fn the_pandas_example_merging_through_staging_tables_passes_and_reruns_idempotently() {
    // Twice in one command: the second run's MERGE matches every candle and its delete-then-insert replaces the
    // instruments, and the date must still hold exactly the truth.
    let once = python_cmd(PANDAS);
    let (code, report, text) = run(&format!("{once} && {once}")).await;
    assert_clean_pass(code, &report, &text);
    let tail = report["external"]["output_tail"].to_string();
    assert!(tail.matches("ok: 3 files").count() == 2, "both runs report success: {tail}");
    let listed = &report["counts"]["landed_instruments"];
    let replaced = format!("instruments {listed} deleted, {listed} inserted");
    assert!(text.contains(&replaced), "the rerun replaced the snapshot ({replaced}):\n{text}");
}

#[tokio::test]
async fn the_broken_pandas_copy_fails_on_its_vwap() {
    let (code, report, text) = run(&python_cmd(PANDAS_BROKEN)).await;
    assert_eq!(code, Some(2), "{text}");
    let matches = check(&report, CANDLES_EQUAL_TRUTH);
    assert_eq!(matches["status"], "fail", "{matches:#}");
    let detail = matches["samples"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("vwap is"), "the first difference is the vwap: {matches:#}");
    assert_eq!(report["scores"]["completeness"], 1.0, "every candle landed, with a wrong vwap: {text}");
    assert_eq!(report["external"]["exit_code"], 0, "the broken pipeline believes it succeeded");
}

#[tokio::test]
async fn a_command_that_crashes_halfway_fails_with_findings_and_its_signal() {
    // One symbol of three lands, then the process dies (as under the OOM killer).
    let cmd = format!("PIPELINE_SYMBOLS=bitmex:XBTUSD {} && kill -KILL $$", python_cmd(EXAMPLE));
    let (code, report, text) = run(&cmd).await;
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(report["status"], "fail");
    assert_eq!(report["external"]["signal"], 9);
    assert_eq!(report["external"]["exit_code"], 137);
    let landed = check(&report, SYMBOLS_LANDED);
    assert_eq!((landed["evaluated"].as_u64(), landed["failed"].as_u64()), (Some(3), Some(2)), "{landed:#}");
    assert!(failing(&report).contains(&CANDLES_EQUAL_TRUTH.to_owned()));
    let exit = check(&report, COMMAND_EXIT_STATUS);
    assert!(exit["samples"][0]["detail"].as_str().is_some_and(|d| d.contains("killed by signal 9")), "{exit:#}");
    assert!(text.contains("killed by signal 9 (status 137)"), "the summary says how it ended:\n{text}");
}

#[tokio::test]
async fn a_command_that_lands_everything_but_exits_non_zero_warns() {
    let cmd = format!("{} && exit 5", python_cmd(EXAMPLE));
    let (code, report, text) = run(&cmd).await;
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(report["status"], "warn");
    for family in ["completeness", "quality", "consistency"] {
        assert_eq!(report["scores"][family], 1.0, "the advisory check does not move a score: {text}");
    }
    assert_eq!(failing(&report), [COMMAND_EXIT_STATUS], "{text}");
    assert_eq!(report["external"]["exit_code"], 5);
}

#[tokio::test]
async fn a_command_past_its_timeout_is_stopped_and_what_it_left_is_scored() {
    let (code, report, text) = run_with("echo started; sleep 600", &["--pipeline-timeout", "1"]).await;
    assert_eq!(code, Some(2), "nothing landed: {text}");
    assert_eq!(report["external"]["timed_out"], true, "{text}");
    assert_eq!(report["external"]["signal"], 15, "SIGTERM first");
    assert_eq!(report["external"]["output_tail"], serde_json::json!(["started"]));
    assert!(failing(&report).contains(&SYMBOLS_LANDED.to_owned()), "{text}");
}

/// The Python example with one realistic mistake, made by editing one line of its text: the check that must
/// catch it, and words of its finding (which name the column or the rule).
struct Mistake {
    /// Each line as the example has it, and what the mistake makes of it.
    edits: &'static [(&'static str, &'static str)],
    /// The pairs to run on (default: the suite's).
    symbols: Option<&'static str>,
    check: &'static str,
    finding: &'static str,
}

const SWAPPED_CURRENCIES: Mistake = Mistake {
    edits: &[(r#""base_currency": instrument["baseCurrency"],"#, r#""base_currency": instrument["quoteCurrency"],"#)],
    symbols: None,
    check: ids::INSTRUMENTS_EQUAL_TRUTH,
    finding: "base_currency is USD",
};
const INVERSE_FALSE: Mistake = Mistake {
    edits: &[(r#""inverse": bool(instrument.get("inverse") or False),"#, r#""inverse": False,"#)],
    symbols: None,
    check: ids::INSTRUMENTS_EQUAL_TRUTH,
    finding: "inverse is false, expected true",
};
const NO_CLUSTERING: Mistake = Mistake {
    edits: &[(r#"resource.clustering_fields = table["clustering"]"#, "resource.clustering_fields = None")],
    symbols: None,
    check: ids::TABLES_MATCH_CONTRACT,
    finding: "clustered by [], expected [exchange, symbol]",
};
const NULLABLE_COUNT: Mistake = Mistake {
    edits: &[(
        r#"bigquery.SchemaField("trade_count", "INTEGER", mode="REQUIRED"),"#,
        r#"bigquery.SchemaField("trade_count", "INTEGER", mode="NULLABLE"),"#,
    )],
    symbols: None,
    check: ids::TABLES_MATCH_CONTRACT,
    finding: "column trade_count is NULLABLE, expected REQUIRED",
};

/// Binance's trade ids are per-symbol sequences: deduplicating by (exchange, id) drops trades of other symbols
/// (two Binance symbols, where the ids collide).
const DEDUPE_BY_EXCHANGE_AND_ID: Mistake = Mistake {
    edits: &[
        ("OPEN_TS, OPEN, CLOSE_TS,", "SEEN_IDS = set()\nOPEN_TS, OPEN, CLOSE_TS,"),
        (
            "            offset = timestamp - day_start\n",
            "            if (exchange, row[4]) in SEEN_IDS:\n                continue\n            SEEN_IDS.add((exchange, row[4]))\n            offset = timestamp - day_start\n",
        ),
    ],
    symbols: Some("binance-futures:BTCUSDT,ETHUSDT"),
    check: market::checks::ids::CANDLE_PER_TRADED_MINUTE,
    finding: r#""symbol":"ETHUSDT""#,
};

/// Tardis lists expired futures, options and delisted symbols: the snapshot holds them all.
const ACTIVE_INSTRUMENTS_ONLY: Mistake = Mistake {
    edits: &[(
        "found.extend(tardis_dev.get_instrument_info(exchange, api_key=config.api_key, endpoint=config.api_url))",
        "found.extend(i for i in tardis_dev.get_instrument_info(exchange, api_key=config.api_key, endpoint=config.api_url) if i[\"active\"])",
    )],
    symbols: None,
    check: ids::INSTRUMENTS_EQUAL_TRUTH,
    finding: "missing from the date's instruments partition",
};

/// Caught at the default edge-case density, which puts rows arriving out of exchange order at minute edges.
const CLOSE_IN_FILE_ORDER: Mistake = Mistake {
    edits: &[("if timestamp >= bucket[CLOSE_TS]:", "if True:  # the last row in file order")],
    symbols: None,
    check: CANDLES_EQUAL_TRUTH,
    finding: "close is",
};

/// The generated market trades exactly the minimum lot at every edge case: a dust filter loses those trades.
const SMALL_TRADES_DROPPED: Mistake = Mistake {
    edits: &[
        ("OPEN_TS, OPEN, CLOSE_TS,", "LOTS = {}\nOPEN_TS, OPEN, CLOSE_TS,"),
        (
            "    listed = instruments(config)\n",
            "    listed = instruments(config)\n    LOTS.update({(i[\"exchange\"], normalize_symbol(i.get(\"datasetId\") or i[\"id\"])): float(i[\"amountIncrement\"]) for i in listed})\n",
        ),
        (
            "            offset = timestamp - day_start\n",
            "            if amount < 2 * LOTS.get((exchange, symbol), 0.0):\n                continue\n            offset = timestamp - day_start\n",
        ),
    ],
    symbols: None,
    check: CANDLES_EQUAL_TRUTH,
    finding: "smaller than twice the lot size",
};

#[rstest::rstest]
#[case::close_in_file_order(CLOSE_IN_FILE_ORDER)]
#[case::small_trades_dropped(SMALL_TRADES_DROPPED)]
#[case::dedupe_by_exchange_and_id(DEDUPE_BY_EXCHANGE_AND_ID)]
#[case::active_instruments_only(ACTIVE_INSTRUMENTS_ONLY)]
#[case::swapped_currencies(SWAPPED_CURRENCIES)]
#[case::inverse_false(INVERSE_FALSE)]
#[case::no_clustering(NO_CLUSTERING)]
#[case::nullable_count(NULLABLE_COUNT)]
#[tokio::test]
async fn a_mistake_fails_with_a_finding_that_names_its_column_or_rule(#[case] mistake: Mistake) {
    let mut source = std::fs::read_to_string(workspace_root().join(EXAMPLE)).expect("committed");
    for (from, to) in mistake.edits {
        assert_eq!(source.matches(from).count(), 1, "the example still has the line {from}");
        source = source.replacen(from, to, 1);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("pipeline.py");
    std::fs::write(&script, source).expect("written");
    let symbols = mistake.symbols.unwrap_or(SYMBOLS);
    let (code, report, text) = run_on(symbols, &python_cmd(&script.display().to_string()), &[]).await;
    assert_eq!(code, Some(2), "{text}");
    let found = check(&report, mistake.check);
    assert!(found["failed"].as_u64().is_some_and(|n| n > 0), "{found:#}");
    // The first sample, with its exchange and symbol when it has them.
    let first = found["samples"][0].to_string();
    assert!(first.contains(mistake.finding), "{first}");
    assert_eq!(report["external"]["exit_code"], 0, "the pipeline believes it succeeded");
}
