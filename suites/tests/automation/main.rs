//! The automation around the suite: the GitHub workflows (parsed, and held to "they only call the scripts a
//! person runs"), `scripts/nightly.sh` end to end in its cheap mode against a fake Slack webhook, the benchmark
//! comparison table of `scripts/bench.sh`, what `scripts/perf-compare.sh` refuses, and the README's promises about them.

mod bench_table;
mod nightly_script;
mod perf_compare;
mod readme;
mod workflows;

use std::path::PathBuf;

use suites::workspace_root as root;

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The `harness` binary next to this test's executable.
fn harness_binary() -> PathBuf {
    suites::workspace_binary("harness")
}
