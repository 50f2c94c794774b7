#!/usr/bin/env bash
# The first step of the GitHub workflows, which run in a fresh `rust:1.95-bookworm` container as root (a machine
# of the README's kind: Debian 12, root, Rust). Installs what that image lacks and the other scripts do not
# install themselves: Python's venv module (scripts/setup-python.sh, scripts/lint-workflows.sh), Node and npm
# (scripts/setup-node.sh), rustfmt and clippy. PostgreSQL and podman come from scripts/setup-podman.sh,
# cargo-nextest from scripts/test.sh.
# Idempotent; on a machine that has everything (a development machine) it only checks.
set -euo pipefail
exec </dev/null

need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-ci: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
echo "setup-ci: $(python3 --version), node $(node --version), npm $(npm --version)," \
  "$(cargo --version), $(cargo fmt --version), $(cargo clippy --version)"
