#!/usr/bin/env bash
# Python for the conformance tests (suites/tests/conformance): a venv at target/conformance-venv holding the
# vendors' official clients, pinned in suites/conformance/requirements.txt, built by scripts/venv.sh (pip runs
# only when the venv is missing, broken, or was built from other requirements). Override the interpreter with
# PYTHON=/path/to/python3.x (3.11 or newer: tardis-dev 5 needs it).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/venv.sh target/conformance-venv suites/conformance/requirements.txt
