"""The daily market-data pipeline as an Airflow DAG: at 09:00 UTC, one Kubernetes pod runs
`pipeline run --date {{ ds }}` for the UTC date that ended nine hours earlier.

Copy this file into your DAGs folder, with Airflow 3.3 and the cncf-kubernetes provider installed (the versions
it is tested with are pinned in `requirements.txt` beside it). Change, at the top of the file:

- `IMAGE`: an image holding the `pipeline` binary, run as user 10001 (the placeholder is the one the
  Kubernetes manifests of this repository name);
- `NAMESPACE`: where the ConfigMap `market-pipeline-config`, the Secrets `market-pipeline-secrets` and
  `market-pipeline-bigquery-key` and the ServiceAccount `market-pipeline` of those manifests were applied;
- `START_DATE`: the first date Airflow should process. Earlier dates are a backfill: `pipeline backfill`
  (its own queue, parallel, resumable) or `airflow backfill create`.

**Which date runs.** The timetable is `CronDataIntervalTimetable("0 9 * * *", "UTC")`, set explicitly: each run
covers the interval from one 09:00 to the next and starts when it ends, and its logical date (`ds`) is the
interval's start. The run that starts at 09:00 on June 4 therefore has `ds` = June 3, the date the pipeline
should process then (a UTC date is complete at midnight; nine hours leave Tardis time to publish it). A plain
`schedule="0 9 * * *"` would not do: in Airflow 3 it means `CronTriggerTimetable`, whose logical date is the
trigger time, so `ds` would be today, a date the pipeline refuses (exit 3) because it is not over.
To process one date by hand, trigger the DAG with that date as the logical date (any time of that day), or
clear that date's run; a trigger with the default logical date (now) asks for today and is refused.

**Retries are the pipeline's.** It retries transient Tardis and BigQuery errors and lost database connections
itself (one retry mechanism, with backoff and `Retry-After`), so an exit code is a verdict, not a hiccup: the
task has `retries=0`, and rerunning a date is always safe (each run replaces the date's partitions whole).

**Exit codes** (the pipeline's contract, the README's "Exit codes") and the task state each gives:

| exit code | meaning | task state |
|---:|---|---|
| 0 | pass: the date landed and validated | success |
| 1 | warn: the data landed, some checks warn | success, with a warning in the log |
| 2 | fail: a check failed, or the run failed (nothing partial was uploaded; the error is recorded in Postgres) | failed, not retried |
| 3 | error: bad input or configuration (a date not over, a missing variable, no database); nothing was done | failed, not retried |
| 130 | interrupted by a signal before finishing | failed, not retried: clear it to rerun |
| other | e.g. 137 or 143: killed (out of memory, evicted); the date may be half done | failed, not retried: clear it to rerun |

A warning stays a success so that whatever consumes the tables downstream still runs: the data is there, and
the warning is in the task log, the pipeline's report and its metrics. To make warnings fail the task instead,
remove 1 from `SUCCESS_CODES`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from kubernetes.client import models as k8s

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG, CronDataIntervalTimetable
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

IMAGE = "registry.example.com/market-pipeline:0.1.0"
NAMESPACE = "default"
START_DATE = pendulum.datetime(2026, 12, 1, tz="UTC")

# What each exit code of `pipeline run` means (the README's "Exit codes"), in the words of a task's log.
EXIT_CODES = {
    0: "pass: the date landed and validated",
    1: "warn: the data landed, some checks warn (see the pipeline's report for the date)",
    2: "fail: a check failed, or the run failed; nothing partial was uploaded and the run's error is "
    "recorded in Postgres (`pipeline runs --date D`); fix the cause, then clear this task",
    3: "error: bad input or configuration (a date that is not over yet, a missing variable, no database); "
    "nothing was done; fix it, then clear this task",
    130: "interrupted by a signal before finishing; clear this task to run the date again",
}
# Exit codes that leave the task successful.
SUCCESS_CODES = frozenset({0, 1})


def exit_code_meaning(code: int | None) -> str:
    """The contract's words for an exit code, or what an unlisted code most likely is."""
    if code is None:
        return "the pod ended without an exit code (it never started, or was deleted)"
    if code in EXIT_CODES:
        return EXIT_CODES[code]
    if code > 128:
        return (
            f"killed by signal {code - 128} (137: SIGKILL, e.g. out of memory; 143: SIGTERM, e.g. the pod was "
            "evicted); the date may be half done: clear this task to run it again"
        )
    return "not an exit code of the pipeline's contract"


def container_exit_code(pod: k8s.V1Pod | None, container: str) -> int | None:
    """The exit code of `container` in a finished pod, when Kubernetes reported one."""
    statuses = (pod.status.container_statuses if pod is not None and pod.status else None) or []
    for status in statuses:
        if status.name == container and status.state and status.state.terminated:
            return status.state.terminated.exit_code
    return None


class PipelinePodOperator(KubernetesPodOperator):
    """A KubernetesPodOperator that judges the pod by the pipeline's exit-code contract.

    The provider fails the task on any non-zero exit with "Pod ... returned a failure"; this reads the exit
    code instead, keeps the codes of ``SUCCESS_CODES`` successful and fails on the others with the code's
    meaning, never retried (``AirflowFailException``).
    """

    def cleanup(self, pod, remote_pod, xcom_result=None, context=None):
        try:
            super().cleanup(pod, remote_pod, xcom_result=xcom_result, context=context)
        except (AirflowSkipException, AirflowFailException):
            raise
        except AirflowException as failure:
            code = container_exit_code(remote_pod, self.base_container_name)
            meaning = exit_code_meaning(code)
            if code in SUCCESS_CODES:
                self.log.warning("pipeline exited %s: %s", code, meaning)
                return
            raise AirflowFailException(f"pipeline exited {code}: {meaning}\n{failure}") from failure
        code = container_exit_code(remote_pod, self.base_container_name)
        if code is not None:
            self.log.info("pipeline exited %s: %s", code, exit_code_meaning(code))


# The pod of deploy/kubernetes/schedule-cronjob.yaml, running `pipeline run` for one date instead of a
# scheduler pass: the same identity, environment, hardening, resources and scratch space.
with DAG(
    dag_id="market_pipeline_daily",
    description="Tardis trades of a UTC date to 1-minute candles in BigQuery, validated (pipeline run)",
    schedule=CronDataIntervalTimetable("0 9 * * *", timezone="UTC"),
    start_date=START_DATE,
    # Missed days (the scheduler was down) run when it is back, oldest first, one at a time, so that each
    # date's anomaly checks see the dates before it.
    catchup=True,
    max_active_runs=1,
    default_args={"retries": 0, "owner": "market-data"},
    tags=["market-data"],
    doc_md=__doc__,
) as dag:
    PipelinePodOperator(
        task_id="pipeline_run",
        name="market-pipeline-run",
        namespace=NAMESPACE,
        image=IMAGE,
        cmds=["pipeline"],
        arguments=["run", "--date", "{{ ds }}"],
        labels={"app.kubernetes.io/name": "market-pipeline", "app.kubernetes.io/component": "airflow-run"},
        service_account_name="market-pipeline",
        automount_service_account_token=False,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=10001,
            run_as_group=10001,
            fs_group=10001,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        container_security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"},
            limits={"cpu": "2", "memory": "4Gi", "ephemeral-storage": "60Gi"},
        ),
        env_from=[
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="market-pipeline-config")),
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="market-pipeline-secrets")),
        ],
        volumes=[
            # A day's trades files (a few GB of gzip at real activity), gone with the pod.
            k8s.V1Volume(name="data", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="50Gi")),
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="1Gi")),
            k8s.V1Volume(
                name="bigquery-key",
                secret=k8s.V1SecretVolumeSource(secret_name="market-pipeline-bigquery-key"),
            ),
        ],
        volume_mounts=[
            k8s.V1VolumeMount(name="data", mount_path="/data"),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
            k8s.V1VolumeMount(name="bigquery-key", mount_path="/var/run/secrets/bigquery", read_only=True),
        ],
        # The pipeline's last log lines (its `error: ...`) become the failure message Airflow shows.
        termination_message_policy="FallbackToLogsOnError",
        log_pod_spec_on_failure=False,
        log_events_on_failure=True,
        on_finish_action="delete_pod",
        # A date at real activity takes minutes; hours means it hangs.
        active_deadline_seconds=4 * 3600,
        execution_timeout=timedelta(hours=4, minutes=10),
        retries=0,
    )
