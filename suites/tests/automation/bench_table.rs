//! The change table of `scripts/bench.sh` (`scripts/bench-compare.py`), over a criterion output tree laid out
//! the way criterion 0.8 writes it: `<bench>/<baseline>/estimates.json` before the run, `<bench>/new/` and
//! `<bench>/change/` after it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::root;

fn write_estimates(dir: &Path, mean: f64, interval: Option<(f64, f64)>) {
    std::fs::create_dir_all(dir).expect("dir");
    let (low, high) = interval.unwrap_or((mean * 0.99, mean * 1.01));
    let estimate = json!({"point_estimate": mean, "standard_error": 0.0,
        "confidence_interval": {"confidence_level": 0.95, "lower_bound": low, "upper_bound": high}});
    std::fs::write(dir.join("estimates.json"), json!({"mean": estimate, "median": estimate}).to_string())
        .expect("write");
}

fn bench(criterion: &Path, id: &str, previous: Option<f64>, now: f64, change: Option<(f64, f64, f64)>) {
    let dir = criterion.join(id);
    if let Some(previous) = previous {
        write_estimates(&dir.join("latest"), previous, None);
    }
    write_estimates(&dir.join("new"), now, None);
    std::fs::write(dir.join("new/benchmark.json"), json!({"title": id, "directory_name": id}).to_string())
        .expect("write");
    if let Some((mean, low, high)) = change {
        write_estimates(&dir.join("change"), mean, Some((low, high)));
    }
}

fn compare(args: &[&str]) -> String {
    let out =
        Command::new("python3").arg(root().join("scripts/bench-compare.py")).args(args).output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn age(path: &Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).expect("open");
    file.set_modified(SystemTime::now() - by).expect("set mtime");
}

#[test]
fn the_table_gives_previous_now_and_criterions_change_with_a_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let criterion = dir.path();
    bench(criterion, "candles/build_1m/BTCUSDT-day", Some(1_069_000.0), 1_105_000.0, Some((0.033, 0.021, 0.047)));
    bench(criterion, "trades_file/gunzip_and_parse", Some(9_000_000.0), 8_000_000.0, Some((-0.11, -0.13, -0.09)));
    bench(criterion, "validation/noisy", Some(449_000.0), 450_000.0, Some((0.002, -0.03, 0.035)));
    bench(criterion, "day_3x100/new_one", None, 781_372_000.0, None);
    // Left out of this run by a filter: its files are older than the run.
    bench(criterion, "day_3x100/not_run", Some(1.0), 2.0, Some((1.0, 0.9, 1.1)));
    for file in ["new/estimates.json", "change/estimates.json"] {
        age(&criterion.join("day_3x100/not_run").join(file), Duration::from_secs(3600));
    }

    let snapshot: serde_json::Value =
        serde_json::from_str(&compare(&["snapshot", criterion.to_str().expect("utf-8"), "latest"])).expect("json");
    assert_eq!(snapshot["candles/build_1m/BTCUSDT-day"], 1_069_000.0);
    assert!(snapshot.get("day_3x100/new_one").is_none(), "no baseline yet");
    let previous = criterion.join(".previous.json");
    std::fs::write(&previous, snapshot.to_string()).expect("write");

    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs() - 60;
    let table =
        compare(&["table", criterion.to_str().expect("utf-8"), previous.to_str().expect("utf-8"), &since.to_string()]);
    assert_eq!(
        table.lines().collect::<Vec<_>>(),
        [
            "| benchmark | previous | now | change (95% CI) | verdict |",
            "|---|---:|---:|---:|---|",
            "| candles/build_1m/BTCUSDT-day | 1.069 ms | 1.105 ms | +3.3% (+2.1% … +4.7%) | slower |",
            "| day_3x100/new_one | — | 781.372 ms |  | new |",
            "| trades_file/gunzip_and_parse | 9.000 ms | 8.000 ms | -11.0% (-13.0% … -9.0%) | faster |",
            "| validation/noisy | 449.000 µs | 450.000 µs | +0.2% (-3.0% … +3.5%) | ~ |",
            "",
            "4 benchmarks: 1 slower, 1 faster, 1 ~, 1 new (~: not beyond the 2% noise threshold at 95% confidence)",
        ]
    );
}

#[test]
fn bench_sh_keeps_criterions_baseline_and_smoke_runs_in_test_mode() {
    let script = super::read("scripts/bench.sh");
    assert!(script.contains("cargo bench --locked -p benches -- --save-baseline \"$baseline\""), "{script}");
    assert!(script.contains("cargo bench --locked -p benches -- --test"), "{script}");
    // CI's smoke run is .ci/run's nextest over --all-targets, which runs each criterion benchmark once.
    assert!(super::read("scripts/test.sh").contains("cargo nextest run --workspace --all-targets"));
}
