#!/usr/bin/env bash
# The scheduled test run, for cron, a systemd timer or the nightly workflow (.github/workflows/nightly.yml):
#   1. the whole test suite with the `nightly` nextest profile (scripts/test.sh sets up what it needs);
#   2. `harness run` for yesterday (UTC), reports in reports/nightly/YYYY-MM-DD/;
#   3. the defect self-check: `harness run --defect NAME` for a few defects, each of which the harness must fail;
#   4. crash consistency: `harness crash`, a backfill killed with SIGKILL many times, then compared row for row
#      with a clean run (the result in crash.json);
#   5. fault scenarios: `harness scenario run` over the whole catalogue (the slow ones too), each expectation met
#      (the results in scenarios.json, a report per scenario in scenarios/NAME/);
#   6. mutation testing: `scripts/mutants.sh` (cargo-mutants on `market` and the pipeline's candle and upload
#      paths), the score in the message (results in mutants/SCOPE/);
#   7. the hot path's figures: `scripts/perf-compare.sh` (ours against the decode-only floor and polars on one
#      5M-trade file, and our downloader against tardis-dev), its tables in perf-compare.{md,json,log}; it informs,
#      it never fails the night;
#   8. `harness notify`: the Slack message to SLACK_WEBHOOK_URL, or printed when it is not set.
#
#   bash scripts/nightly.sh                          # everything
#   NIGHTLY_SKIP_TESTS=1 bash scripts/nightly.sh     # steps 2-8 only (no test suite)
#
# Variables, all optional:
#   SLACK_WEBHOOK_URL      Slack incoming webhook; never printed. Unset: the message is printed instead.
#   NIGHTLY_SKIP_TESTS=1   skip step 1 (the message then says "Tests: not run").
#   NIGHTLY_DATE           the date of the harness runs (default: yesterday, UTC).
#   NIGHTLY_REPORT_DIR     where the reports go (default: reports/nightly/<date>).
#   NIGHTLY_DEFECTS        space-separated defects for step 3 (default: "dropped-hour duplicated-upload";
#                          empty: no self-check). `harness run --help` lists them.
#   NIGHTLY_SEED, NIGHTLY_ACTIVITY   the generated market (default: 42, 1.0).
#   NIGHTLY_CRASH_KILLS    SIGKILLs of step 4 (default: 50; 0 skips the step).
#   NIGHTLY_SCENARIOS      the scenarios of step 5, space-separated names (default: "all", the whole catalogue;
#                          empty: skip the step). They run on a market of activity 0.2 (the drip is slow by design).
#   NIGHTLY_MUTANTS        the scopes of step 6, space-separated (default: "market pipeline"; empty: skip the step,
#                          which takes tens of minutes per scope).
#   NIGHTLY_PERF           1 (default) runs step 7, 0 skips it (a release build, a polars venv, a few minutes).
#   NIGHTLY_REPORT_URL     where people can read the reports (default: the GitHub Actions run page when run
#                          there, else the local report.html).
#   HARNESS_BIN            a built `harness` binary to use (default: built here with cargo).
#
# Exit code: 0 when the tests and the clean harness run passed (a warning passes), every defect was caught,
# the crashed backfill ended equal to a clean run and every fault scenario met its expectation, 1 otherwise. Posting to Slack never changes it. Idempotent: a
# rerun replaces that date's reports. Needs no
# terminal and no standard input.
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
started=$(date +%s)

day="${NIGHTLY_DATE:-$(date -u -d yesterday +%F)}"
out="${NIGHTLY_REPORT_DIR:-reports/nightly/$day}"
defects="${NIGHTLY_DEFECTS-dropped-hour duplicated-upload}"
seed="${NIGHTLY_SEED:-42}"
activity="${NIGHTLY_ACTIVITY:-1.0}"
crash_kills="${NIGHTLY_CRASH_KILLS:-50}"
scenarios="${NIGHTLY_SCENARIOS-all}"
mutants="${NIGHTLY_MUTANTS-market pipeline}"
perf="${NIGHTLY_PERF:-1}"
target="${CARGO_TARGET_DIR:-target}"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
# One nightly per report directory at a time (a slow night must not collide with the next one).
exec 9>"$out/.nightly.lock"
if ! flock -n 9; then
  echo "nightly: another nightly is writing $out; not starting a second one" >&2
  exit 1
fi
# Only what this script writes is replaced; anything else in the directory is left alone.
rm -rf "$out/defects"
rm -f "$out"/{report.json,report.md,report.html,harness.log,junit.xml,slack-payload.json,crash.json,crash.log,mutants.txt,mutants.log,perf-compare.{md,json,log}}
rm -rf "$out/mutants"

status=0

# 1. The tests.
tests_args=()
if [ "${NIGHTLY_SKIP_TESTS:-0}" = 1 ]; then
  echo "nightly: tests skipped (NIGHTLY_SKIP_TESTS=1)"
else
  echo "nightly: tests (nextest profile nightly)"
  rm -f "$target/nextest/nightly/junit.xml"
  tests_exit=0
  bash scripts/test.sh --profile nightly || tests_exit=$?
  if [ -f "$target/nextest/nightly/junit.xml" ]; then
    cp "$target/nextest/nightly/junit.xml" "$out/junit.xml"
  fi
  tests_args=(--junit "$out/junit.xml" --tests-exit-code "$tests_exit")
  [ "$tests_exit" = 0 ] || status=1
fi

# Postgres for the harness runs, set up as scripts/run.sh does, when the tests (whose scripts/test.sh does the
# same) were skipped.
if [ "${NIGHTLY_SKIP_TESTS:-0}" = 1 ] && [ -z "${HARNESS_DATABASE_URL:-}" ] && [ "$(id -u)" = 0 ]; then
  bash scripts/setup-podman.sh >&2 || echo "nightly: podman set-up failed, the harness falls back to local PostgreSQL binaries" >&2
fi

harness="${HARNESS_BIN:-}"
if [ -z "$harness" ]; then
  if ! cargo build --quiet --locked -p harness -p pipeline; then
    echo "nightly: cannot build the harness; nothing more can run (no message either)" >&2
    exit 1
  fi
  harness="$target/debug/harness"
fi

# 2. The harness for the date: 0 pass, 1 warn, 2 fail, 3 harness error.
echo "nightly: harness run $day (seed $seed, activity $activity)"
set +e
"$harness" run --date "$day" --seed "$seed" --activity "$activity" --report-dir "$out" 2>&1 | tee "$out/harness.log"
harness_exit=${PIPESTATUS[0]}
set -e
if [ "$harness_exit" -ge 2 ]; then
  echo "nightly: the harness run failed (exit $harness_exit)"
  status=1
fi

# 3. The defect self-check: a defect the harness does not fail is a harness that stopped catching bugs. Caught
#    means exit 2 and a report (a refused argument exits 3, without one).
defect_args=()
for defect in $defects; do
  dir="$out/defects/$defect"
  mkdir -p "$dir"
  set +e
  "$harness" run --date "$day" --seed "$seed" --activity "$activity" --defect "$defect" --report-dir "$dir" \
    >"$dir/harness.log" 2>&1
  defect_exit=$?
  set -e
  if [ "$defect_exit" = 2 ] && [ -f "$dir/report.json" ]; then
    echo "nightly: defect $defect caught"
  else
    echo "nightly: defect $defect MISSED (harness exit $defect_exit, expected 2 with a report); see $dir/harness.log"
    status=1
  fi
  defect_args+=(--defect-report "$dir")
done

# 4. Crash consistency: the backfill of the week before the date, killed $crash_kills times at seeded moments,
#    must end row for row equal to a clean run (harness crash exits 0 then, 2 otherwise).
step_args=()
if [ "$crash_kills" -gt 0 ]; then
  step_args+=(--crash "$out/crash.json")
  set +e
  "$harness" crash --kills "$crash_kills" --dates 7 --last-day "$day" --seed "$seed" --activity "$activity" --json \
    --pipeline-bin "$(dirname "$harness")/pipeline" >"$out/crash.json" 2>"$out/crash.log"
  crash_exit=$?
  set -e
  if [ "$crash_exit" = 0 ]; then
    echo "nightly: crash consistency: $crash_kills kills, equal to a clean run"
  else
    echo "nightly: crash consistency FAILED (harness crash exit $crash_exit); see $out/crash.json and crash.log"
    status=1
  fi
fi

# 5. Fault scenarios: every one must meet its expectation (harness scenario exits 0 then, 2 otherwise).
if [ -n "$scenarios" ]; then
  if [ "$scenarios" = all ]; then scenario_args=(--all --profile all); else read -r -a scenario_args <<<"$scenarios"; fi
  rm -rf "$out/scenarios"
  set +e
  "$harness" scenario run "${scenario_args[@]}" --date "$day" --seed "$seed" --activity 0.2 \
    --pipeline-bin "$(dirname "$harness")/pipeline" --report-dir "$out/scenarios" >"$out/scenarios.txt" 2>"$out/scenarios.log"
  scenario_exit=$?
  set -e
  cp "$out/scenarios/scenarios.json" "$out/scenarios.json" 2>/dev/null || true
  step_args+=(--scenarios "$out/scenarios.json")
  if [ "$scenario_exit" = 0 ]; then
    echo "nightly: fault scenarios: $(tail -n 1 "$out/scenarios.txt")"
  else
    echo "nightly: fault scenarios FAILED (harness scenario exit $scenario_exit); see $out/scenarios.txt and scenarios.log"
    status=1
  fi
fi

# 6. Mutation testing (scripts/mutants.sh): the score goes into the message; below the target it warns, it never
#    fails the nightly (a mutant nothing catches is a test to write, not a broken build).
if [ -n "$mutants" ]; then
  read -r -a mutant_scopes <<<"$mutants"
  rm -f "$out/mutants.txt"
  if bash scripts/mutants.sh "${mutant_scopes[@]}" >"$out/mutants.txt" 2>"$out/mutants.log"; then
    for scope in "${mutant_scopes[@]}"; do
      mkdir -p "$out/mutants/$scope"
      cp "$target/mutants/$scope/mutants.out/"{outcomes.json,missed.txt,caught.txt,timeout.txt,unviable.txt} \
        "$out/mutants/$scope/" 2>/dev/null || true
      step_args+=(--mutants "$out/mutants/$scope/outcomes.json")
    done
    echo "nightly: mutation testing: $(tr '\n' ' ' <"$out/mutants.txt")"
  else
    echo "nightly: mutation testing could not run; see $out/mutants.log"
  fi
fi

# 7. The hot path against its floor and polars (scripts/perf-compare.sh): figures to read, never a gate.
if [ "$perf" = 1 ]; then
  if bash scripts/perf-compare.sh >"$out/perf-compare.md" 2>"$out/perf-compare.log"; then
    cp "$target/perf/perf-compare.json" "$out/perf-compare.json" 2>/dev/null || true
    echo "nightly: performance comparison in $out/perf-compare.md"
  else
    echo "nightly: the performance comparison could not run; see $out/perf-compare.log"
  fi
fi

# 8. The message. Where the reports can be read: the run page (its artefacts) on GitHub, else the local file.
report_url="${NIGHTLY_REPORT_URL:-}"
if [ -z "$report_url" ] && [ -n "${GITHUB_RUN_ID:-}" ]; then
  report_url="${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-}/actions/runs/$GITHUB_RUN_ID"
fi
report_url="${report_url:-$out/report.html}"
"$harness" notify --report-dir "$out" ${tests_args[@]+"${tests_args[@]}"} ${defect_args[@]+"${defect_args[@]}"} \
  ${step_args[@]+"${step_args[@]}"} \
  --duration-secs "$(($(date +%s) - started))" --report-url "$report_url" --save-payload "$out/slack-payload.json" ||
  echo "nightly: harness notify failed; the result below stands" >&2

echo "nightly: reports in $out"
if [ "$status" = 0 ]; then echo "nightly: PASS"; else echo "nightly: FAIL"; fi
exit "$status"
