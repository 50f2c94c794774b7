#!/usr/bin/env bash
# Python for the conformance tests (suites/tests/conformance): a venv at target/conformance-venv holding the
# vendors' official clients, pinned in suites/conformance/requirements.txt. Idempotent and non-interactive
# (no stdin, CI=true): pip runs only when the venv is missing, broken, or was built from other requirements
# (the venv keeps a copy of the requirements it was built from, which the tests also compare).
# Override the interpreter with PYTHON=/path/to/python3.x (3.11 or newer: tardis-dev 5 needs it).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/conformance-venv
requirements=suites/conformance/requirements.txt
stamp="$venv/.requirements.txt"

mkdir -p target
# Two runs at once (a developer and an editor's test runner) must not build the same venv together.
exec 9>target/.conformance-venv.lock
flock 9

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null && cmp -s "$requirements" "$stamp"; then
  echo "setup-python.sh: $venv is up to date"
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

if ! python=$(find_python); then
  echo "setup-python.sh: no Python 3.11 or newer with the venv module found (set PYTHON=...)" >&2
  exit 2
fi

# A venv whose interpreter no longer runs (its base Python was removed or upgraded) is rebuilt from scratch.
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; }; then
  rm -rf "$venv"
  echo "setup-python.sh: creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi

rm -f "$stamp"
echo "setup-python.sh: installing $requirements"
PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
  "$venv/bin/python" -m pip install --quiet --no-input -r "$requirements"
cp "$requirements" "$stamp"
echo "setup-python.sh: $venv is ready"
