#!/usr/bin/env bash
# Node for the conformance tests (suites/tests/conformance): Google's official Node BigQuery client, pinned in
# suites/conformance/node/package.json and package-lock.json, installed with `npm ci` into target/conformance-node.
# Idempotent and non-interactive (no stdin, CI=true): npm runs only when the install is missing or was made from
# another lockfile (the install keeps a copy of the lockfile it was made from, which the tests also compare).
# Needs node 18 or newer and npm: `apt-get install nodejs npm` on Debian 12.
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."

install=target/conformance-node
source_dir=suites/conformance/node
stamp="$install/.installed-package-lock.json"

mkdir -p target
# Two runs at once (a developer and an editor's test runner) must not install into the same directory together.
exec 9>target/.conformance-node.lock
flock 9

if [ -d "$install/node_modules" ] && cmp -s "$source_dir/package-lock.json" "$stamp"; then
  echo "setup-node.sh: $install is up to date"
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "setup-node.sh: $tool is missing: install Node 18 or newer and npm (Debian 12: apt-get install nodejs npm)" >&2
    exit 2
  fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "setup-node.sh: node $(node --version) is too old: @google-cloud/bigquery 8 needs Node 18 or newer" >&2
  exit 2
fi

# npm ci installs exactly the lockfile, and removes any node_modules it finds first.
rm -f "$stamp"
mkdir -p "$install"
cp "$source_dir/package.json" "$source_dir/package-lock.json" "$install/"
echo "setup-node.sh: installing $source_dir/package-lock.json with node $(node --version), npm $(npm --version)"
(
  cd "$install"
  CI=true npm_config_update_notifier=false npm ci --no-audit --no-fund --loglevel=error
)
cp "$source_dir/package-lock.json" "$stamp"
echo "setup-node.sh: $install is ready"
