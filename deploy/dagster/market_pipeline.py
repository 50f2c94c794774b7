"""The daily market-data pipeline as Dagster definitions: one daily-partitioned asset, materialized by
`pipeline run --date <partition>`, an asset check that runs `pipeline validate --date <partition> --json`, and a
schedule that materializes yesterday's partition at 09:00 UTC.

Copy this file into your Dagster code location, with Dagster 1.13 installed (the versions it is tested with are
pinned in `requirements.txt` beside it), and load it with `dagster dev -f market_pipeline.py` or from your
`Definitions`. Change:

- `START_DATE`: the first date (partition) you want Dagster to know; earlier dates are a backfill of the
  partitions, or `pipeline backfill` (its own queue, parallel, resumable);
- the environment of the code location: `PIPELINE_BIN`, the `pipeline` binary to run (default `pipeline` on
  `PATH`), and the pipeline's own variables (`BIGQUERY_PROJECT`, `DATABASE_URL`, `TARDIS_API_KEY`, ...; see
  the README's "Configuration"), which the subprocess inherits.

This runs the binary as a subprocess of the Dagster run, which suits a run launcher that gives each run its
own container or machine (the `pipeline` binary in it). On Kubernetes, to run the pipeline's own image in a pod
of its own instead, swap `run_pipeline` for `dagster_k8s.PipesK8sClient` with the pod of the repository's
Kubernetes CronJob (image, `envFrom`, service account, security context, resources, `/data` emptyDir); the
exit-code mapping stays the same.

**Partitions.** One partition is one UTC date (`DailyPartitionsDefinition`, UTC, `end_offset=0`): the newest
partition is the latest complete date, i.e. yesterday. The schedule fires at 09:00 UTC and requests that
partition, so the run at 09:00 on June 4 processes June 3 (a UTC date is complete at midnight; nine hours
leave Tardis time to publish it).

**Retries are the pipeline's.** It retries transient Tardis and BigQuery errors and lost database connections
itself (one retry mechanism, with backoff and `Retry-After`), so an exit code is a verdict: nothing here has a
retry policy, every `Failure` is raised with `allow_retries=False`, and rerunning a partition is always safe
(each run replaces the date's partitions whole).

**Exit codes** (the pipeline's contract, the README's "Exit codes"):

| exit code | meaning | `pipeline run` (the asset) | `pipeline validate` (the check) |
|---:|---|---|---|
| 0 | pass | materialized | passed |
| 1 | warn: the data landed, some checks warn | materialized, warning logged | failed, severity WARN |
| 2 | fail: a check failed, or the run failed | `Failure` | failed, severity ERROR (blocks downstream) |
| 3 | error: bad input or configuration; nothing was done | `Failure` | `Failure` (nothing was judged) |
| 130 | interrupted by a signal | `Failure`: rerun the partition | `Failure` |
| other | e.g. 137: killed (out of memory) | `Failure`: rerun the partition | `Failure` |
"""

import json
import os
import subprocess

import dagster as dg

START_DATE = "2026-12-01"
# A date at real activity takes minutes; hours means it hangs.
TIMEOUT_SECONDS = 4 * 3600

# What each exit code of the pipeline means (the README's "Exit codes").
EXIT_CODES = {
    0: "pass: the date landed and validated",
    1: "warn: the data landed, some checks warn",
    2: "fail: a check failed, or the run failed; nothing partial was uploaded and the run's error is recorded "
    "in Postgres (`pipeline runs --date D`)",
    3: "error: bad input or configuration (a date that is not over yet, a missing variable, no database); "
    "nothing was done",
    130: "interrupted by a signal before finishing; rerun the partition",
}

daily = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC", end_offset=0)


def exit_code_meaning(code: int) -> str:
    """The contract's words for an exit code, or what an unlisted code most likely is."""
    if code in EXIT_CODES:
        return EXIT_CODES[code]
    if code < 0 or code > 128:
        signal = -code if code < 0 else code - 128
        return f"killed by signal {signal} (9: e.g. out of memory); the date may be half done: rerun the partition"
    return "not an exit code of the pipeline's contract"


def run_pipeline(context, *args: str) -> subprocess.CompletedProcess:
    """Runs `$PIPELINE_BIN ARGS...`: its logs (stderr) go to the run's compute logs, its stdout is returned."""
    command = [os.environ.get("PIPELINE_BIN", "pipeline"), *args]
    context.log.info(f"Running {' '.join(command)}")
    try:
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as error:
        raise dg.Failure(
            description=f"cannot run {command[0]}: {error.strerror} (set PIPELINE_BIN to the pipeline binary)",
            allow_retries=False,
        ) from error
    except subprocess.TimeoutExpired as error:
        raise dg.Failure(
            description=f"{' '.join(command)} did not finish within {TIMEOUT_SECONDS} s and was killed",
            allow_retries=False,
        ) from error


def failure(what: str, code: int, stdout: str) -> dg.Failure:
    return dg.Failure(
        description=f"{what} exited {code}: {exit_code_meaning(code)}",
        metadata={"exit_code": code, "stdout_tail": stdout[-2000:]},
        allow_retries=False,
    )


def parsed(stdout: str) -> dict | None:
    try:
        value = json.loads(stdout)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dg.asset(
    partitions_def=daily,
    group_name="market_data",
    kinds={"bigquery"},
    description="A UTC date of 1-minute candles (candles_1m) and the instruments snapshot (instruments) in "
    "BigQuery, from Tardis trades: `pipeline run --date <partition>`.",
)
def market_data(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    date = context.partition_key
    what = f"pipeline run --date {date}"
    result = run_pipeline(context, "run", "--date", date, "--json")
    code = result.returncode
    if code not in (0, 1):
        raise failure(what, code, result.stdout)
    if code == 1:
        context.log.warning(f"{what} exited 1: {exit_code_meaning(1)}")
    metadata: dict = {"exit_code": code}
    outcome = parsed(result.stdout)
    if outcome is not None:
        counts = outcome.get("counts") or {}
        validation = outcome.get("validation") or {}
        metadata.update(
            {
                "run_id": outcome.get("run_id"),
                "trades": counts.get("trades"),
                "candles": counts.get("candles"),
                "instruments": counts.get("instruments"),
                "validation_status": validation.get("status"),
            }
        )
    return dg.MaterializeResult(metadata={k: v for k, v in metadata.items() if v is not None})


# The check runs in the asset's run and validates that run's partition. (Dagster 1.13 can also give a check a
# partitions_def of its own, a verdict per partition, but marks that as a preview that may change in a patch
# release; this example keeps to the stable API.)
@dg.asset_check(
    asset=market_data,
    blocking=True,
    description="`pipeline validate --date <partition> --json`: completeness, quality and consistency of what "
    "landed, judged from the data alone.",
)
def market_data_validates(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    if not context.has_partition_key:
        raise dg.Failure(description="run the check with a partition of market_data: it validates that date")
    date = context.partition_key
    what = f"pipeline validate --date {date}"
    result = run_pipeline(context, "validate", "--date", date, "--json")
    code = result.returncode
    report = parsed(result.stdout) if code in (0, 1, 2) else None
    if report is None or not report.get("dates"):
        # 3 and the rest: nothing was judged, so there is no verdict to report.
        raise failure(what, code, result.stdout)
    status = report["status"]
    day = report["dates"][0]
    scores = day.get("scores") or {}
    failing = [
        f"{check['id']} ({check['failed']}/{check['evaluated']} {check['status']})"
        for check in day.get("checks", [])
        if check.get("status") != "pass"
    ]
    return dg.AssetCheckResult(
        passed=status == "pass",
        severity=dg.AssetCheckSeverity.WARN if status == "warn" else dg.AssetCheckSeverity.ERROR,
        description=f"{what}: {status}" + (f"; failing: {', '.join(failing)}" if failing else ""),
        metadata={
            "status": status,
            "exit_code": code,
            **{family: float(score) for family, score in scores.items()},
            "failing_checks": failing,
        },
    )


market_data_daily = dg.define_asset_job(
    "market_data_daily",
    selection=dg.AssetSelection.assets(market_data),
    partitions_def=daily,
)

defs = dg.Definitions(
    assets=[market_data],
    asset_checks=[market_data_validates],
    jobs=[market_data_daily],
    schedules=[
        dg.build_schedule_from_partitioned_job(
            market_data_daily,
            hour_of_day=9,
            minute_of_hour=0,
            description="At 09:00 UTC, the date that ended at midnight.",
        )
    ],
)
