#!/usr/bin/env bash
# Checks the GitHub Actions workflows (.github/workflows/*.yml) with jactionlint: workflow syntax, expression
# types, inputs of known actions, runner labels, cron syntax, script injection. It comes from PyPI into
# target/lint-venv at the version pinned in scripts/lint-requirements.txt, built by scripts/venv.sh (pip runs
# only when the venv is missing, broken, or the pin changed). Part of .ci/run (`.ci/run workflows`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

venv=target/lint-venv
bash scripts/venv.sh "$venv" scripts/lint-requirements.txt --only-binary=:all:

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
"$venv/bin/jactionlint" --profile correctness --no-color --no-online --no-hints "${workflows[@]}"
echo "lint-workflows: ${#workflows[@]} workflows pass jactionlint $("$venv/bin/jactionlint" --version | head -1)"
