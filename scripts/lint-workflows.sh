#!/usr/bin/env bash
# Checks the GitHub Actions workflows (.github/workflows/*.yml) with jactionlint: workflow syntax, expression
# types, inputs of known actions, runner labels, cron syntax, script injection. It comes from PyPI into
# target/lint-venv at the version pinned in scripts/lint-requirements.txt. Idempotent and non-interactive:
# pip runs only when the venv is missing or the pin changed. Part of .ci/run (`.ci/run workflows`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

venv=target/lint-venv
requirements=scripts/lint-requirements.txt
stamp="$venv/.requirements.txt"

mkdir -p target
exec 9>target/.lint-venv.lock
flock 9

if ! { [ -x "$venv/bin/jactionlint" ] && cmp -s "$requirements" "$stamp"; }; then
  rm -rf "$venv"
  echo "lint-workflows: installing $requirements into $venv" >&2
  python3 -m venv "$venv"
  PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$venv/bin/python" -m pip install --quiet --no-input --only-binary=:all: -r "$requirements"
  cp "$requirements" "$stamp"
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
"$venv/bin/jactionlint" --profile correctness --no-color --no-online --no-hints "${workflows[@]}"
echo "lint-workflows: ${#workflows[@]} workflows pass jactionlint $("$venv/bin/jactionlint" --version | head -1)"
