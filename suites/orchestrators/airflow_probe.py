"""Loads the Airflow example (deploy/airflow/market_pipeline_dag.py) with Airflow's own DagBag and prints what
the orchestrators test (suites/tests/schedule/orchestrators.rs) asserts, as one JSON document written to a file
(Airflow logs to stdout):

- the DagBag's import errors and DAG ids, the DAG as Airflow serializes it for its scheduler;
- the first runs the scheduler would create from the start date, and a run for a chosen date, each with when it
  starts, its logical date and the task's command rendered for it; a manual run with a chosen logical date;
- the pod the task would create (the provider's own dry-run request), as Kubernetes JSON;
- the task state each exit code of the pipeline gives, through the provider's own cleanup of a finished pod
  (its Kubernetes API client replaced by a stub: no cluster is involved).

Usage: airflow_probe.py DAG_FILE REPORT_JSON (with AIRFLOW_HOME set to a scratch directory).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from unittest import mock

from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import DataInterval, TimeRestriction
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

UTC = timezone.utc


def ds(moment: datetime) -> str:
    # How Airflow's task runner makes `ds` from a run's logical date.
    return moment.strftime("%Y-%m-%d")


def rendered(task, dag, logical_date: datetime, interval: DataInterval) -> list[str]:
    context = {
        "ds": ds(logical_date),
        "logical_date": logical_date,
        "data_interval_start": interval.start,
        "data_interval_end": interval.end,
    }
    return [task.render_template(arg, context, jinja_env=dag.get_template_env()) for arg in task.arguments]


def run_info(task, dag, logical_date, interval, run_after) -> dict:
    return {
        "run_after": run_after.isoformat() if run_after else None,
        "logical_date": logical_date.isoformat(),
        "data_interval": [interval.start.isoformat(), interval.end.isoformat()],
        "ds": ds(logical_date),
        "command": task.cmds + rendered(task, dag, logical_date, interval),
    }


def finished_pod(exit_code: int) -> k8s.V1Pod:
    """A pod whose base container terminated with `exit_code`, as the Kubernetes API reports it."""
    terminated = k8s.V1ContainerStateTerminated(exit_code=exit_code, reason="Error" if exit_code else "Completed")
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="market-pipeline-run-abc", namespace="default", labels={}),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="base")]),
        status=k8s.V1PodStatus(
            phase="Succeeded" if exit_code == 0 else "Failed",
            container_statuses=[
                k8s.V1ContainerStatus(
                    name="base",
                    state=k8s.V1ContainerState(terminated=terminated),
                    image="image",
                    image_id="id",
                    ready=False,
                    restart_count=0,
                )
            ],
        ),
    )


def state_for(task, exit_code: int) -> dict:
    """The task state the operator's cleanup gives a pod that exited with `exit_code`."""
    pod = finished_pod(exit_code)
    stub = mock.MagicMock()
    stub.read_pod.return_value = pod
    with (
        mock.patch.object(type(task), "pod_manager", new_callable=mock.PropertyMock, return_value=stub),
        mock.patch.object(type(task), "client", new_callable=mock.PropertyMock, return_value=mock.MagicMock()),
    ):
        try:
            task.cleanup(pod, pod, context=None)
        except AirflowSkipException as skipped:
            return {"state": "skipped", "retried": False, "message": str(skipped)}
        except AirflowFailException as failed:
            return {"state": "failed", "retried": False, "message": str(failed)}
        except AirflowException as failed:
            return {"state": "failed", "retried": True, "message": str(failed)}
    return {"state": "success", "retried": False, "message": ""}


def probe(dag_file: str) -> dict:
    bag = DagBag(dag_folder=dag_file)
    report: dict = {
        "import_errors": {path: str(error) for path, error in bag.import_errors.items()},
        "warnings": {path: list(warnings) for path, warnings in bag.captured_warnings.items()},
        "dag_ids": sorted(bag.dag_ids),
    }
    if report["import_errors"] or not bag.dags:
        return report
    dag = next(iter(bag.dags.values()))
    # What the scheduler reads: the DAG serialized (and schema-checked) by Airflow, then deserialized.
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    timetable = serialized.timetable
    task = dag.tasks[0]
    report["dag"] = {
        "dag_id": dag.dag_id,
        "timetable": type(timetable).__name__,
        "timetable_summary": timetable.summary,
        "start_date": dag.start_date.isoformat(),
        "catchup": serialized.catchup,
        "max_active_runs": serialized.max_active_runs,
        "task_ids": [t.task_id for t in dag.tasks],
    }
    report["task"] = {
        "operator": type(task).__name__,
        "bases": [cls.__name__ for cls in type(task).__mro__],
        "retries": task.retries,
        "serialized_retries": serialized.get_task(task.task_id).retries,
        "cmds": task.cmds,
        "arguments": task.arguments,
        "namespace": task.namespace,
        "skip_on_exit_code": sorted(task.skip_on_exit_code or []),
    }
    # The first runs after the start date, as the scheduler iterates the timetable.
    start = serialized.start_date
    report["first_runs"] = [
        run_info(task, dag, info.logical_date, info.data_interval, info.run_after)
        for info in serialized.iter_dagrun_infos_between(start, start + timedelta(days=2, hours=12))
    ]
    # The scheduled run after the one that covered 2024-06-02 09:00 .. 2024-06-03 09:00.
    info = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(
            datetime(2024, 6, 2, 9, tzinfo=UTC), datetime(2024, 6, 3, 9, tzinfo=UTC)
        ),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    report["next_run"] = run_info(task, dag, info.logical_date, info.data_interval, info.run_after)
    # A manual trigger whose logical date is 2024-06-03 (the API and the UI take any time of that day).
    manual = datetime(2024, 6, 3, 15, 30, tzinfo=UTC)
    report["manual_run"] = run_info(task, dag, manual, timetable.infer_manual_data_interval(run_after=manual), None)
    pod = task.build_pod_request_obj(dry_run=True)
    report["pod"] = ApiClient().sanitize_for_serialization(pod)
    report["exit_codes"] = {str(code): state_for(task, code) for code in (0, 1, 2, 3, 130, 137)}
    return report


if __name__ == "__main__":
    dag_file, out = sys.argv[1:3]
    with open(out, "w", encoding="utf-8") as file:
        json.dump(probe(dag_file), file, indent=2)
