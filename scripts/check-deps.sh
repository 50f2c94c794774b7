#!/usr/bin/env bash
# The dependency tree's hygiene, with two tools installed here at pinned versions (`cargo install --locked`, only
# when missing or at another version; a cold install compiles them: about 1 min for cargo-machete and 4 to 7 min
# for cargo-deny on 2 cores):
#   machete   no crate declares a dependency it does not use (cargo-machete)
#   deny      licenses on the allow-list, crates only from crates.io, no wildcard versions, and the crates found in
#             two versions listed (warnings: each one costs build time); RustSec advisories when the advisory
#             database can be fetched from GitHub, and a warning naming it when it cannot (cargo-deny, deny.toml)
# Non-interactive and idempotent. Part of .ci/run (`.ci/run deps`). Exit 0 when every check passes, 1 otherwise.
#
#   bash scripts/check-deps.sh            # both
#   bash scripts/check-deps.sh machete    # one
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

machete_version=0.9.1
deny_version=0.18.5

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(machete deny)

install() {
  local crate=$1 version=$2 command=$3
  if ! cargo "$command" --version 2>/dev/null | grep -qF "$version"; then
    echo "check-deps: installing $crate $version" >&2
    cargo install "$crate" --locked --version "$version" >&2
  fi
}

for check in "${checks[@]}"; do
  case "$check" in
    machete)
      install cargo-machete "$machete_version" machete
      cargo machete
      ;;
    deny)
      install cargo-deny "$deny_version" deny
      cargo deny --offline check --hide-inclusion-graph licenses bans sources
      log=$(mktemp)
      if cargo deny check advisories >"$log" 2>&1; then
        cat "$log" >&2
        echo "check-deps: no RustSec advisory against the dependency tree" >&2
      elif grep -q "failed to fetch advisory database" "$log"; then
        cat "$log" >&2
        echo "check-deps: warning: advisories NOT checked: the RustSec database (github.com/RustSec/advisory-db) is not reachable from here" >&2
      else
        cat "$log" >&2
        rm -f "$log"
        exit 1
      fi
      rm -f "$log"
      ;;
    *)
      echo "check-deps: unknown check '$check' (machete, deny)" >&2
      exit 2
      ;;
  esac
done
