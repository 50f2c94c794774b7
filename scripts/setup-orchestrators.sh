#!/usr/bin/env bash
# Airflow and Dagster for the orchestrator examples' tests (suites/tests/schedule/orchestrators.rs): two venvs,
# because their pins conflict: target/airflow-venv from deploy/airflow/requirements.txt and target/dagster-venv
# from deploy/dagster/requirements.txt, every package pinned. Idempotent and non-interactive (no stdin, CI=true):
# pip runs only for a venv that is missing, broken, or was built from other requirements (each venv keeps a copy
# of the requirements it was built from, which the tests also compare). Each install prints its time and the
# venv's size. Override the interpreter with PYTHON=/path/to/python3.x (3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p target
# Two runs at once (a developer and an editor's test runner) must not build the same venvs together.
exec 9>target/.orchestrator-venvs.lock
flock 9

find_python() {
  local candidate
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# setup VENV REQUIREMENTS: builds VENV from REQUIREMENTS unless it is already built from them.
setup() {
  local venv=$1 requirements=$2
  local stamp="$venv/.requirements.txt"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null &&
    cmp -s "$requirements" "$stamp"; then
    echo "setup-orchestrators.sh: $venv is up to date"
    return 0
  fi
  local python
  if ! python=$(find_python); then
    echo "setup-orchestrators.sh: no Python 3.11 or newer with the venv module found (set PYTHON=...)" >&2
    exit 2
  fi
  # A venv whose interpreter no longer runs (its base Python was removed or upgraded) is rebuilt from scratch.
  if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; }; then
    rm -rf "$venv"
    echo "setup-orchestrators.sh: creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv"
  fi
  rm -f "$stamp"
  echo "setup-orchestrators.sh: installing $requirements"
  local started=$SECONDS
  PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$venv/bin/python" -m pip install --quiet --no-input -r "$requirements"
  cp "$requirements" "$stamp"
  echo "setup-orchestrators.sh: $venv is ready: pip took $((SECONDS - started)) s," \
    "the venv is $(du -sh "$venv" | cut -f1)"
}

setup target/airflow-venv deploy/airflow/requirements.txt
setup target/dagster-venv deploy/dagster/requirements.txt
