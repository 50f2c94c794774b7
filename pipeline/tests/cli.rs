//! The `pipeline` binary as a process: bad input is rejected with a clear message and exit code 3
//! before anything is configured, connected or written.

use std::process::{Command, Output};

fn pipeline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("the pipeline binary runs")
}

#[track_caller]
fn check(args: &[&str], code: i32, stderr_contains: &str) {
    let out = pipeline(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.contains(stderr_contains), "{args:?}: {stderr:?} does not contain {stderr_contains:?}");
}

#[test]
fn bad_dates_are_rejected_with_exit_code_3() {
    check(&["run", "--date", "2024-13-01"], 3, "invalid date \"2024-13-01\"");
    check(&["run", "--date", "2024-6-1"], 3, "expected YYYY-MM-DD");
    check(&["run", "--date", "2099-01-01"], 3, "is not complete yet");
    check(&["runs", "--date", "yesterday"], 3, "expected YYYY-MM-DD");
    check(
        &["validate", "--from", "2024-06-30", "--to", "2024-06-01"],
        3,
        "Start date 2024-06-30 is after end date 2024-06-01",
    );
    check(&["validate", "--date", "2099-01-01"], 3, "is not complete yet");
    check(&["run", "--no-such-flag"], 3, "unexpected argument '--no-such-flag'");
}

#[test]
fn missing_configuration_names_the_variable() {
    check(&["run", "--date", "2024-06-01"], 3, "BIGQUERY_PROJECT is not set");
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let out = pipeline(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("pipeline run --date 2024-06-01"), "{stdout}");
    assert!(
        stdout.contains("Exit codes: 0 pass, 1 warn, 2 fail (a check failed or the run failed), 3 error (bad input or configuration)"),
        "{stdout}"
    );
}

/// A gzip Tardis trades file of `rows` (after the header) in `dir`.
fn trades_file(dir: &std::path::Path, name: &str, rows: &[String]) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    writeln!(gz, "exchange,symbol,timestamp,local_timestamp,id,side,price,amount").expect("in memory");
    for row in rows {
        writeln!(gz, "{row}").expect("in memory");
    }
    std::fs::write(&path, gz.finish().expect("in memory")).expect("written");
    path
}

/// Trades of bitmex XBTUSD on 2024-06-03, `n` of them a second apart from 00:00:30, prices 100, 101, 102...
fn rows(n: u64) -> Vec<String> {
    let start = 1_717_372_800_000_000u64;
    (0..n)
        .map(|i| {
            let t = start + 30_000_000 + i * 1_000_000;
            format!("bitmex,XBTUSD,{t},{},id-{i},buy,{}.5,10", t + 500, 100 + i)
        })
        .collect()
}

#[test]
fn candles_turns_a_trades_file_into_candle_rows_of_its_exchange_symbol_and_date() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = trades_file(dir.path(), "XBTUSD.csv.gz", &rows(90));
    let out = pipeline(&["candles", "--input", input.to_str().expect("utf-8")]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let candles: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON row per line")).collect();
    // 00:00:30..00:00:59 is 30 trades, 00:01 has 60.
    assert_eq!(candles.len(), 2, "{stdout}");
    assert_eq!((candles[0]["exchange"].as_str(), candles[0]["symbol"].as_str()), (Some("bitmex"), Some("XBTUSD")));
    assert_eq!(candles[0]["trade_count"], 30, "{}", candles[0]);
    assert_eq!((candles[1]["open"].as_f64(), candles[1]["close"].as_f64()), (Some(130.5), Some(189.5)));
    assert!(stderr.contains("bitmex XBTUSD 2024-06-03: 90 rows, 90 trades in the day → 2 1m candles"), "{stderr}");

    // A coarser interval, into a file; the date and pair can be given.
    let output = dir.path().join("hour.ndjson");
    let out = pipeline(&[
        "candles",
        "--input",
        input.to_str().expect("utf-8"),
        "--interval",
        "1h",
        "--output",
        output.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(&output).expect("written");
    assert_eq!(written.lines().count(), 1, "{written}");
    assert!(written.contains("\"trade_count\":90"), "{written}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("listable").flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no partial file left beside the output: {leftovers:?}");
}

#[test]
fn candles_warns_on_rejected_rows_and_repeated_ids_and_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut odd = rows(3);
    odd.push(odd[0].clone()); // a repeated id
    odd.push("bitmex,XBTUSD,1717372900000000,1717372900000500,id-x,buy,-1,10".to_owned());
    let input = trades_file(dir.path(), "odd.csv.gz", &odd);
    let out = pipeline(&["candles", "--input", input.to_str().expect("utf-8"), "--output", "-"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rows rejected: 1") && stderr.contains("rows with a repeated trade id: 1"), "{stderr}");
    assert!(stderr.contains("line 6: price -1 is not positive"), "{stderr}");

    let missing = dir.path().join("missing.csv.gz");
    check(&["candles", "--input", missing.to_str().expect("utf-8")], 3, "missing.csv.gz");
    let not_gzip = dir.path().join("plain.csv.gz");
    std::fs::write(&not_gzip, "exchange,symbol\n").expect("written");
    check(&["candles", "--input", not_gzip.to_str().expect("utf-8")], 3, "plain.csv.gz");
    let header_only = trades_file(dir.path(), "quiet.csv.gz", &[]);
    check(&["candles", "--input", header_only.to_str().expect("utf-8")], 3, "give --exchange, --symbol and --date");
    let quiet = header_only.to_str().expect("utf-8");
    let out =
        pipeline(&["candles", "--input", quiet, "--exchange", "bitmex", "--symbol", "XBTUSD", "--date", "2024-06-03"]);
    assert_eq!((out.status.code(), out.stdout.len()), (Some(0), 0), "{}", String::from_utf8_lossy(&out.stderr));
    check(&["candles", "--input", quiet, "--interval", "2m"], 3, "\"2m\" is not an interval: use 1m, 5m, 1h or 1d");
    // A first row torn in two: the file cannot say what it is, but the rows after it still count when the
    // pair and date are given.
    let mut torn = vec!["bitmex,XBTUSD,17173".to_owned()];
    torn.extend(rows(3));
    let torn = trades_file(dir.path(), "torn.csv.gz", &torn);
    let torn = torn.to_str().expect("utf-8");
    check(&["candles", "--input", torn], 3, "line 2 is malformed: expected 8 fields, found 3");
    let out =
        pipeline(&["candles", "--input", torn, "--exchange", "bitmex", "--symbol", "XBTUSD", "--date", "2024-06-03"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 rows, 3 trades in the day"));
    check(&["candles", "--input", quiet, "--tick", "0.5"], 3, "--lot");
}

#[test]
fn candles_write_into_a_pipe_or_device_without_replacing_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let input = trades_file(dir.path(), "XBTUSD.csv.gz", &rows(90));
    let fifo = dir.path().join("rows.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("the pipe reads"))
    };
    let out =
        pipeline(&["candles", "--input", input.to_str().expect("utf-8"), "--output", fifo.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Checked first: had the pipe been replaced, its reader would wait for a writer forever.
    let kind = std::fs::symlink_metadata(&fifo).expect("still there").file_type();
    assert!(kind.is_fifo(), "the pipe was replaced by a file: {kind:?}");
    assert_eq!(reader.join().expect("the reader ends").lines().count(), 2, "the rows went through the pipe");
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("listable").flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 2, "nothing written beside it: {left:?}");
}
