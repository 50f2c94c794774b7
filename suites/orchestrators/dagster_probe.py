"""Loads the Dagster example (deploy/dagster/market_pipeline.py) with Dagster and writes what the orchestrators
test (suites/tests/schedule/orchestrators.rs) asserts, as one JSON document:

- the definitions as Dagster loads them (`Definitions.validate_loadable`), their asset, check, job and schedule;
- the partitions: the first, and the newest at given moments; the partition the schedule requests at given ticks;
- for each case, the asset and its check materialized for one partition with Dagster's own `materialize`, in an
  ephemeral instance, with the case's environment (PIPELINE_BIN and the pipeline's variables): whether the run
  succeeded, the materialization's metadata, each step failure's description, each check evaluation.

Usage: dagster_probe.py DEFINITIONS_FILE CASES_JSON REPORT_JSON, where CASES_JSON holds
`[{"name": ..., "partition": "YYYY-MM-DD", "env": {...}}, ...]`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from datetime import datetime, timezone

import dagster as dg

UTC = timezone.utc


def load(path: str):
    spec = importlib.util.spec_from_file_location("market_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plain(value):
    """A metadata value as JSON."""
    inner = getattr(value, "value", value)
    if isinstance(inner, (str, int, float, bool)) or inner is None:
        return inner
    if isinstance(inner, (list, tuple)):
        return [plain(v) for v in inner]
    if isinstance(inner, dict):
        return {k: plain(v) for k, v in inner.items()}
    return str(inner)


def materialized(module, case: dict) -> dict:
    saved = dict(os.environ)
    os.environ.update(case["env"])
    try:
        result = dg.materialize(
            [module.market_data, module.market_data_validates],
            partition_key=case["partition"],
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    failures = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            user = data.user_failure_data
            failures.append(
                {
                    "step": event.step_key,
                    "description": user.description if user else data.error.message,
                    "metadata": {k: plain(v) for k, v in (user.metadata if user else {}).items()},
                }
            )
    materializations = [
        {
            "partition": m.partition,
            "metadata": {k: plain(v) for k, v in m.metadata.items()},
        }
        for m in result.asset_materializations_for_node("market_data")
    ]
    checks = [
        {
            "check": e.check_name,
            "partition": e.partition,
            "passed": e.passed,
            "severity": e.severity.value,
            "description": e.description,
            "metadata": {k: plain(v) for k, v in e.metadata.items()},
        }
        for e in result.get_asset_check_evaluations()
    ]
    return {
        "name": case["name"],
        "success": result.success,
        "materializations": materializations,
        "failures": failures,
        "checks": checks,
    }


def probe(path: str, cases: list[dict]) -> dict:
    module = load(path)
    defs = dg.Definitions.validate_loadable(module.defs) or module.defs
    repository = defs.get_repository_def()
    job = defs.resolve_job_def("market_data_daily")
    (schedule,) = list(repository.schedule_defs)
    daily = module.daily

    def newest(moment: datetime) -> str | None:
        keys = daily.get_partition_keys(current_time=moment)
        return keys[-1] if keys else None

    def requested(tick: datetime) -> list[str | None]:
        with dg.build_schedule_context(scheduled_execution_time=tick) as context:
            data = schedule.evaluate_tick(context)
        return [request.partition_key for request in data.run_requests or []]

    return {
        "assets": sorted(key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()),
        "checks": sorted(key.name for key in repository.asset_graph.asset_check_keys),
        "job": {"name": job.name, "checks": sorted(key.name for key in job.asset_layer.asset_graph.asset_check_keys)},
        "schedule": {
            "name": schedule.name,
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
        },
        "partitions": {
            "first": daily.get_first_partition_key(),
            "newest_at": {
                "2026-12-04T08:59:59Z": newest(datetime(2026, 12, 4, 8, 59, 59, tzinfo=UTC)),
                "2026-12-04T00:00:00Z": newest(datetime(2026, 12, 4, 0, 0, tzinfo=UTC)),
                "2026-12-03T23:59:59Z": newest(datetime(2026, 12, 3, 23, 59, 59, tzinfo=UTC)),
            },
            "requested_at": {
                "2026-12-04T09:00:00Z": requested(datetime(2026, 12, 4, 9, 0, tzinfo=UTC)),
                "2026-12-10T09:00:00Z": requested(datetime(2026, 12, 10, 9, 0, tzinfo=UTC)),
            },
        },
        "cases": [materialized(module, case) for case in cases],
    }


if __name__ == "__main__":
    definitions, cases_file, out = sys.argv[1:4]
    with open(cases_file, encoding="utf-8") as file:
        cases = json.load(file)
    report = probe(definitions, cases)
    with open(out, "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2)
