#!/usr/bin/env bash
# The main job on a fresh machine: sets up the container engine for Postgres when it can (idempotent),
# then runs `harness run` (yesterday UTC, seed 42, report in reports/). Extra arguments go to
# `harness run`, e.g. `scripts/run.sh --date 2024-06-01 --seed 7`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${HARNESS_DATABASE_URL:-}" ] && [ "$(id -u)" = 0 ]; then
  # Without it the harness falls back to a throwaway cluster from the local PostgreSQL binaries.
  bash scripts/setup-podman.sh >&2 || echo "run.sh: podman set-up failed, falling back to local PostgreSQL binaries" >&2
fi
exec cargo run --quiet --release --locked -p harness -- run "$@"
