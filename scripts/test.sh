#!/usr/bin/env bash
# The whole test suite, from a fresh machine of this kind: sets up what the tests need (idempotent),
# builds, and runs every test with nextest. Extra arguments go to `cargo nextest run`
# (e.g. `scripts/test.sh --profile ci`, `scripts/test.sh -E 'binary(end_to_end)'`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Postgres for the tests: rootful podman, the local image and the API socket (see the script).
if [ -z "${HARNESS_DATABASE_URL:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    bash scripts/setup-podman.sh
  else
    echo "test.sh: not root, skipping podman set-up; tests use HARNESS_DATABASE_URL or local binaries" >&2
  fi
fi

# Headless Chromium (Debian's package) for the test that renders the HTML report.
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing chromium for the HTML report test" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: chromium is missing and we are not root: the HTML rendering test will fail (apt-get install chromium)" >&2
  fi
fi

# Python and the vendors' official clients for the conformance tests (a venv under target/, pinned).
bash scripts/setup-python.sh
# Airflow and Dagster for the orchestrator examples' tests (two venvs under target/, pinned; minutes the first time).
bash scripts/setup-orchestrators.sh
# Node and npm (Debian's packages), then Google's official Node BigQuery client for the conformance tests
# (npm ci of a pinned lockfile under target/).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing nodejs and npm for the Node conformance client" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "test.sh: node or npm is missing and we are not root: setup-node.sh will fail (apt-get install nodejs npm)" >&2
  fi
fi
bash scripts/setup-node.sh

command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
export INSTA_UPDATE=no
export PROPTEST_CASES="${PROPTEST_CASES:-64}"
cargo nextest run --workspace --all-targets "$@"
