#!/usr/bin/env bash
# venv.sh VENV REQUIREMENTS [PIP_OPTION...]: the one way this repository builds a pinned Python venv (the
# conformance clients, Airflow, Dagster, jactionlint, podman-compose, polars). Idempotent and non-interactive
# (no stdin, CI=true): pip runs only when VENV is missing, broken (its interpreter no longer runs), or was built
# from other requirements; VENV keeps a copy of the requirements it was built from (.requirements.txt, which
# tests also compare). One builder per venv at a time (flock). Messages go to stderr, with pip's time and the
# venv's size after an install. PYTHON=/path/to/python3.x overrides the interpreter (3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

if [ $# -lt 2 ]; then
  echo "usage: scripts/venv.sh VENV REQUIREMENTS [PIP_OPTION...]" >&2
  exit 2
fi
venv=$1 requirements=$2
shift 2
stamp="$venv/.requirements.txt"
say() { echo "venv.sh: $*" >&2; }
[ -f "$requirements" ] || { say "no requirements file $requirements"; exit 2; }

mkdir -p "$(dirname "$venv")"
# Two runs at once (a developer and an editor's test runner) must not build the same venv together.
exec 9>"$(dirname "$venv")/.$(basename "$venv").lock"
flock 9

runs() { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; }

if runs && cmp -s "$requirements" "$stamp"; then
  say "$venv is up to date"
  exit 0
fi

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

if ! runs; then
  if ! python=$(find_python); then
    say "no Python 3.11 or newer with the venv module found (set PYTHON=...)"
    exit 2
  fi
  rm -rf "$venv"
  say "creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi

rm -f "$stamp"
say "installing $requirements into $venv"
started=$SECONDS
PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
  "$venv/bin/python" -m pip install --quiet --no-input "$@" -r "$requirements" >&2
cp "$requirements" "$stamp"
say "$venv is ready: pip took $((SECONDS - started)) s, the venv is $(du -sh "$venv" | cut -f1)"
