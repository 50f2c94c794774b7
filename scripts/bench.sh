#!/usr/bin/env bash
# Criterion benchmarks of the hot paths and of a full day (benches/benches/hot_paths.rs, day.rs), compared with
# the previous run:
#
#   bash scripts/bench.sh                                  # run all, print the changes, keep this run as the baseline
#   bash scripts/bench.sh candles                          # only benchmarks whose id contains "candles"
#   bash scripts/bench.sh --test                           # smoke run: each benchmark once, untimed, nothing saved
#   BENCH_BASELINE=before-my-change bash scripts/bench.sh  # a baseline of your own (default: latest)
#
# The comparison is criterion's own: `--save-baseline NAME` compares every benchmark with what is saved under
# NAME (target/criterion/<benchmark>/NAME/) and then replaces it with this run. scripts/bench-compare.py reads the
# baseline before the run and criterion's estimates after it, and prints previous, now and the change with its
# 95% confidence interval. The table informs and never fails the run: timings on shared machines are no gate.
# Output: the table on stdout and in target/criterion/changes.md (and the GitHub job summary when run there);
# criterion's HTML report in target/criterion/report/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

if [ "${1:-}" = --test ]; then
  shift
  exec cargo bench --locked -p benches -- --test "$@"
fi

baseline="${BENCH_BASELINE:-latest}"
criterion="${CARGO_TARGET_DIR:-target}/criterion"
mkdir -p "$criterion"
python3 scripts/bench-compare.py snapshot "$criterion" "$baseline" >"$criterion/.previous.json"
started=$(date +%s)
cargo bench --locked -p benches -- --save-baseline "$baseline" "$@"
echo
python3 scripts/bench-compare.py table "$criterion" "$criterion/.previous.json" "$started" | tee "$criterion/changes.md"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  { printf '### Benchmarks against baseline `%s`\n\n' "$baseline"; cat "$criterion/changes.md"; } >>"$GITHUB_STEP_SUMMARY"
fi
