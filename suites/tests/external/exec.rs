//! `harness exec`: the command gets the fakes, a fresh database and the documented environment, and the
//! harness exits with the command's status, signals included.

use std::collections::BTreeMap;

use rstest::rstest;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{ACTIVITY, SYMBOLS, binary, command, day, describe, output};

fn exec(args: &[&str], command_line: &[&str]) -> tokio::process::Command {
    let mut harness = command(&binary("harness"));
    harness.arg("exec").args(args).arg("--").args(command_line);
    harness
}

#[tokio::test]
async fn exec_gives_the_command_the_documented_environment_and_exits_with_its_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env_file = dir.path().join("env.txt");
    let script = r#"test "$TARDIS_API_KEY" = harness-tardis-key || exit 1; env > "$1"; exit 7"#;
    let mut harness = exec(
        &["--symbols", "bitmex:XBTUSD", "--from", "2024-06-03", "--to", "2024-06-04"],
        &["sh", "-c", script, "sh", env_file.to_str().expect("UTF-8 path")],
    );
    // Real credentials and a table suffix in the caller's shell must not reach a run against the fakes.
    harness.env("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json").env("BIGQUERY_TABLE_SUFFIX", "_v9");
    let out = output(harness).await;
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));

    let text = std::fs::read_to_string(&env_file).expect("the command wrote its environment");
    let env: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |name: &str| *env.get(name).unwrap_or_else(|| panic!("{name} is not set:\n{text}"));
    for name in ["TARDIS_DATASETS_URL", "TARDIS_API_URL"] {
        assert!(get(name).starts_with("http://127.0.0.1:") && get(name).ends_with("/v1"), "{name}={}", get(name));
    }
    assert_eq!(get("TARDIS_API_KEY"), "harness-tardis-key");
    assert!(get("BIGQUERY_API_URL").starts_with("http://127.0.0.1:"), "{}", get("BIGQUERY_API_URL"));
    assert_eq!(get("BIGQUERY_EMULATOR_HOST"), get("BIGQUERY_API_URL"), "google-cloud-bigquery's variable");
    assert_eq!(get("BIGQUERY_PROJECT"), "harness-project");
    assert_eq!(get("GOOGLE_CLOUD_PROJECT"), "harness-project", "google-auth's project variable");
    assert_eq!(get("BIGQUERY_DATASET"), "market_data");
    assert_eq!(get("BIGQUERY_ACCESS_TOKEN"), "harness-token");
    assert!(get("DATABASE_URL").starts_with("postgres://"), "{}", get("DATABASE_URL"));
    assert_eq!(get("PIPELINE_SYMBOLS"), "bitmex:XBTUSD");
    assert!(get("PIPELINE_DATA_DIR").contains("harness-exec-"), "a scratch directory: {}", get("PIPELINE_DATA_DIR"));
    assert!(get("NO_PROXY").contains("127.0.0.1"), "loopback bypasses any proxy");
    for removed in ["GOOGLE_APPLICATION_CREDENTIALS", "BIGQUERY_TABLE_SUFFIX"] {
        assert!(!env.contains_key(removed), "{removed} reached the command");
    }
    // The harness prints what it passes, on stderr (stdout is the command's).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("TARDIS_DATASETS_URL={}", get("TARDIS_DATASETS_URL"))), "{stderr}");
    assert!(stderr.contains("days 2024-06-03..2024-06-04"), "{stderr}");
    assert!(stderr.contains("exited with status 7"), "{stderr}");
}

#[tokio::test]
async fn the_reference_pipeline_binary_runs_under_exec_against_the_fakes_and_the_database() {
    let date = day().to_string();
    let harness = exec(
        &["--symbols", SYMBOLS, "--activity", ACTIVITY, "--from", &date, "--to", &date],
        &[binary("pipeline").to_str().expect("UTF-8 path"), "run", "--date", &date],
    );
    // JSON logs by the environment variable, as a container would set it; the results stay text on stdout.
    let mut harness = harness;
    harness.env("PIPELINE_LOG_FORMAT", "json").env("RUST_LOG", "info").env_remove("NO_COLOR");
    let out = output(harness).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("validation pass"), "{stdout}");
    assert!(stdout.contains("files 3"), "every pair of --symbols was downloaded: {stdout}");

    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    let started = logs
        .iter()
        .find(|l| l["message"] == "Run started.")
        .unwrap_or_else(|| panic!("no JSON \"Run started.\" line:\n{stderr}"));
    assert_eq!((started["level"].as_str(), started["target"].as_str()), (Some("INFO"), Some("pipeline::run")));
    assert_eq!(started["day"], date.as_str(), "fields at the top level: {started}");
    assert!(started["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{started}");
    assert!(!stderr.contains(" INFO pipeline::"), "a text log line among the JSON ones:\n{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes on a pipe:\n{stderr}");
}

#[rstest]
#[case::success(&["sh", "-c", "exit 0"], 0)]
#[case::failure(&["sh", "-c", "exit 3"], 3)]
#[case::killed_by_sigterm(&["sh", "-c", "kill -TERM $$"], 128 + 15)]
#[case::killed_by_sigkill(&["sh", "-c", "kill -KILL $$"], 128 + 9)]
#[case::not_found(&["no-such-command-anywhere"], 127)]
#[tokio::test]
async fn exec_exits_with_the_commands_status_as_a_shell_would(#[case] command_line: &[&str], #[case] code: i32) {
    let out = output(exec(&["--symbols", "bitmex:XBTUSD"], command_line)).await;
    assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
}

#[rstest]
#[case::sigterm("TERM", 42)]
#[case::sigint("INT", 41)]
#[tokio::test]
async fn a_signal_to_the_harness_reaches_the_command_and_its_exit_code_comes_back(
    #[case] signal: &str,
    #[case] code: i32,
) {
    // The command exits with its own code when the signal reaches it; "ready" says its trap is in place.
    let script = format!(r#"trap 'echo got-{signal}; exit {code}' {signal}; echo ready; while :; do sleep 1; done"#);
    let mut harness = exec(&["--symbols", "bitmex:XBTUSD"], &["sh", "-c", &script]);
    harness.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = harness.spawn().expect("harness starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let ready = tokio::time::timeout(crate::support::DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("readable stdout") {
            if line == "ready" {
                return true;
            }
        }
        false
    });
    assert!(ready.await.expect("the command started before the deadline"), "the command never said ready");
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill runs");
    assert!(sent.success());
    let status = tokio::time::timeout(crate::support::DEADLINE, child.wait()).await.expect("ends").expect("waited");
    let mut rest = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push(line);
    }
    assert_eq!(status.code(), Some(code), "the command's own exit code comes back; it printed {rest:?}");
    assert_eq!(rest, [format!("got-{signal}")], "the command's trap ran");
}

#[tokio::test]
async fn exec_replays_captured_files_to_the_python_example() {
    // A captured tree: one trades file and the exchange's instruments.
    let dir = tempfile::tempdir().expect("temp dir");
    let generator = fixtures::Generator::new(8, fixtures::Universe::default_universe()).with_activity(0.05);
    let (exchange, symbol) =
        (market::Exchange::parse("bitmex").expect("id"), market::Symbol::parse("XBTUSD").expect("id"));
    let gz = generator.csv_gz(fixtures::DataType::Trades, &exchange, &symbol, day()).expect("generated");
    let file = dir.path().join(format!("bitmex/trades/{}/XBTUSD.csv.gz", day().slashed()));
    std::fs::create_dir_all(file.parent().expect("parent")).expect("dirs");
    std::fs::write(&file, gz).expect("written");
    let instruments = serde_json::json!([{
        "id": "XBTUSD", "datasetId": "XBTUSD", "exchange": "bitmex", "baseCurrency": "BTC", "quoteCurrency": "USD",
        "type": "perpetual", "contractType": "inverse_perpetual", "active": true,
        "availableSince": "2016-05-13T12:00:00.000Z", "priceIncrement": 0.5, "amountIncrement": 100,
        "minTradeAmount": 100, "inverse": true, "contractMultiplier": 1
    }]);
    std::fs::write(dir.path().join("bitmex/instruments.json"), instruments.to_string()).expect("written");

    let python = crate::support::python();
    let date = day().to_string();
    let harness = exec(
        &["--replay-dir", dir.path().to_str().expect("UTF-8 path")],
        &[python.to_str().expect("UTF-8 path"), "examples/python-pipeline/pipeline.py", "--date", &date],
    );
    let out = output(harness).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let truth = generator.file_truth(&exchange, &symbol, day()).expect("listed");
    let trades = truth.rows - truth.rows_before_day - truth.rows_after_day;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("ok: 1 files, {trades} trades, {} candles, 1 instruments", truth.candles.len())),
        "the replayed file, whole: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PIPELINE_SYMBOLS=bitmex:XBTUSD"), "the pairs come from the tree: {stderr}");
}
