//! The `harness` binary as a process: arguments are checked before any world starts.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use flate2::read::GzDecoder;

#[test]
fn a_bad_date_is_a_harness_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).args(["run", "--date", "2024-02-30"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid date \"2024-02-30\""));
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit codes: 0 pass, 1 warn, 2 fail, 3 harness error (harness exec: its command's status)."),
        "{help}"
    );
}

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_harness")).args(args).output().expect("runs")
}

#[test]
fn the_scenario_catalogue_is_listed() {
    let out = harness(&["scenario", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["tardis-reset-mid-body", "bigquery-insert-duplicate", "postgres-restart", "process-sigkill-at-upload"]
    {
        assert!(text.contains(name), "{name} in\n{text}");
    }
    let listed = text.lines().filter(|l| l.contains("recovers") || l.contains("fails_cleanly")).count();
    assert!(listed >= 25, "{listed} scenarios:\n{text}");
}

#[test]
fn an_unknown_scenario_is_a_harness_error_before_anything_starts() {
    for args in [
        &["scenario", "run", "tardis-429-short", "tardis-429-forever"][..],
        &["run", "--faults", "tardis-429-forever"][..],
        &["mocks", "serve", "--faults", "tardis-429-forever"][..],
    ] {
        let out = harness(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("\"tardis-429-forever\"") && stderr.contains("harness scenario list"), "{stderr}");
        assert!(!stderr.contains("[1/"), "nothing was started: {stderr}");
    }
}

#[test]
fn a_malformed_scenario_file_names_the_file_the_line_and_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "description = \"x\"\nexpect = \"recovers\"\n\n[[fault]]\nendpoint = \"tardis.datasets\"\nstatus = 503\ntimes = 2\n")
        .expect("written");
    let file = path.to_str().expect("UTF-8");
    for args in [&["scenario", "run", file][..], &["run", "--faults", file][..]] {
        let out = harness(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("{file}, line 7: unknown field `times`")), "{stderr}");
    }
}

/// `harness mocks trades-file` with `changes` in place of the defaults (20,000 trades of binance-futures:BTCUSDT on
/// 2024-06-03) and `--output output`.
fn trades_file(output: &Path, changes: &[(&str, &str)]) -> std::process::Output {
    let mut options = vec![
        ("--exchange", "binance-futures"),
        ("--symbol", "BTCUSDT"),
        ("--date", "2024-06-03"),
        ("--trades", "20000"),
        ("--output", output.to_str().expect("a UTF-8 path")),
    ];
    for (flag, value) in changes {
        options.retain(|(f, _)| f != flag);
        options.push((flag, value));
    }
    let mut args = vec!["mocks", "trades-file", "--json"];
    args.extend(options.iter().flat_map(|(flag, value)| [*flag, *value]));
    harness(&args)
}

#[test]
fn mocks_trades_file_writes_about_the_rows_asked_for_in_tardis_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("BTCUSDT.csv.gz");
    let out = trades_file(&path, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    let mut text = String::new();
    GzDecoder::new(std::fs::File::open(&path).expect("written")).read_to_string(&mut text).expect("a gzip file");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("exchange,symbol,timestamp,local_timestamp,id,side,price,amount"));
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().all(|row| row.starts_with("binance-futures,BTCUSDT,") && row.split(',').count() == 8));
    assert!((19_000..=21_000).contains(&rows.len()), "{} rows for 20000 asked", rows.len());
    assert_eq!(printed["trades"], rows.len());
    assert_eq!(printed["csv_bytes"], text.len());
    assert_eq!(printed["gzip_bytes"], std::fs::metadata(&path).expect("written").len());
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("listed").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(left, ["BTCUSDT.csv.gz"], "no temporary file left beside it");

    // The same seed and size give the same bytes; another seed other ones.
    let again = dir.path().join("again.csv.gz");
    assert!(trades_file(&again, &[]).status.success());
    assert_eq!(std::fs::read(&again).expect("written"), std::fs::read(&path).expect("written"));
    assert!(trades_file(&again, &[("--seed", "7")]).status.success());
    assert_ne!(std::fs::read(&again).expect("written"), std::fs::read(&path).expect("written"));
}

#[test]
fn mocks_trades_file_refuses_what_it_cannot_generate_or_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("x.csv.gz");
    let missing_dir = dir.path().join("no-such-dir").join("x.csv.gz");
    for (change, message) in [
        (
            ("--exchange", "kraken"),
            "unknown exchange kraken (the generated market has binance-futures, bitmex, deribit)",
        ),
        (("--symbol", "DOGEUSDT"), "unknown symbol DOGEUSDT on binance-futures"),
        (("--date", "2015-01-01"), "binance-futures:BTCUSDT is not listed on 2015-01-01"),
        (("--trades", "0"), "--trades must be at least 1"),
        (("--output", missing_dir.to_str().expect("a UTF-8 path")), "failed to write"),
    ] {
        let out = trades_file(&output, &[change]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{change:?}: {stderr}");
        assert!(stderr.contains(message), "{change:?}: {stderr}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("listed").count(), 0, "nothing written");
}
