#!/usr/bin/env bash
# Mutation testing with cargo-mutants (installed here, pinned): each mutant is a small deliberate change to the code
# (a `>` made `>=`, a function body replaced by a default value...); a mutant the tests do not fail on is a
# behaviour nothing asserts. Two scopes:
#   market     the whole `market` crate (candles, rollups, checks, validation), by its own tests;
#   pipeline   the pipeline's candle path (`candles.rs`, the Tardis CSV reader), its BigQuery rows and upload
#              (`bigquery/rows.rs`, `bigquery/upload.rs`), by the pipeline crate's own tests.
# The mutants known to be equivalent (no test can tell them from the original) are excluded in
# .cargo/mutants.toml, each with its reason.
#
#   bash scripts/mutants.sh                  # both scopes
#   bash scripts/mutants.sh market           # one scope
#   MUTANTS_JOBS=2 bash scripts/mutants.sh   # build and test two mutants at a time (default 1 on 2 cores)
#
# Output: target/mutants/SCOPE/mutants.out/ (cargo-mutants' own: caught.txt, missed.txt, timeout.txt,
# unviable.txt, outcomes.json) and one summary line per scope. `harness notify --mutants
# target/mutants/SCOPE/mutants.out/outcomes.json` puts the score in the nightly message.
# Exit code: 0 when every scope ran (whatever its score: the score is reported, not gated), 1 otherwise.
# Slow: tens of minutes per scope on 2 cores; it belongs to the nightly (scripts/nightly.sh), not to CI.
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

scopes=("$@")
[ ${#scopes[@]} -gt 0 ] || scopes=(market pipeline)
for scope in "${scopes[@]}"; do
  case "$scope" in
    market | pipeline) ;;
    *)
      echo "mutants: unknown scope '$scope' (market, pipeline)" >&2
      exit 2
      ;;
  esac
done

version=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -qF "$version"; then
  echo "mutants: installing cargo-mutants $version" >&2
  cargo install cargo-mutants --locked --version "$version" >&2
fi
target="${CARGO_TARGET_DIR:-target}"
jobs="${MUTANTS_JOBS:-1}"
status=0
for scope in "${scopes[@]}"; do
  case "$scope" in
    market) args=(--package market) ;;
    pipeline)
      args=(--package pipeline
        --file pipeline/src/candles.rs --file pipeline/src/tardis/trades_csv.rs
        --file pipeline/src/bigquery/rows.rs --file pipeline/src/bigquery/upload.rs)
      ;;
  esac
  out="$target/mutants/$scope"
  mkdir -p "$out"
  echo "mutants: $scope" >&2
  # cargo-mutants exits 2 when mutants were missed and 3 when some timed out: both are results, not failures.
  code=0
  # Without CARGO_TARGET_DIR: cargo-mutants builds in its own copies of the tree, and a shared target directory
  # would receive the mutated `pipeline` and `harness` binaries in place of the real ones.
  env -u CARGO_TARGET_DIR cargo mutants "${args[@]}" --test-tool nextest --jobs "$jobs" --output "$out" --no-shuffle ||
    code=$?
  if [ "$code" != 0 ] && [ "$code" != 2 ] && [ "$code" != 3 ]; then
    echo "mutants: cargo mutants failed for $scope (exit $code)" >&2
    status=1
    continue
  fi
  python3 - "$out/mutants.out/outcomes.json" "$scope" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
caught, missed, timeout, unviable = o["caught"], o["missed"], o["timeout"], o["unviable"]
viable = caught + missed + timeout
score = 100.0 * (caught + timeout) / viable if viable else 100.0
print(f"mutants: {sys.argv[2]}: {score:.1f}% of {viable} viable mutants caught "
      f"({caught} caught, {timeout} timed out, {missed} missed, {unviable} unviable)")
EOF
done
exit "$status"
