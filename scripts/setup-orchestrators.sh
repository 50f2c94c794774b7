#!/usr/bin/env bash
# Airflow and Dagster for the orchestrator examples' tests (suites/tests/schedule/orchestrators.rs): two venvs,
# because their pins conflict: target/airflow-venv from deploy/airflow/requirements.txt and target/dagster-venv
# from deploy/dagster/requirements.txt, every package pinned, each built by scripts/venv.sh (pip runs only for a
# venv that is missing, broken, or was built from other requirements; an install prints its time and the venv's
# size). Override the interpreter with PYTHON=/path/to/python3.x (3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh target/airflow-venv deploy/airflow/requirements.txt
bash scripts/venv.sh target/dagster-venv deploy/dagster/requirements.txt
