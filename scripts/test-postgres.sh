#!/usr/bin/env bash
# nextest setup script: one Postgres server for the whole test run (each test then creates its own
# database in it). Prefers a podman container of the local image; falls back to a cluster from the local
# binaries under target/. Reuses a server that is already up, so repeated runs start in milliseconds.
# Writes HARNESS_DATABASE_URL to $NEXTEST_ENV. Stop it with `scripts/test-postgres.sh stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=harness-test-pg
IMAGE="${HARNESS_PG_IMAGE:-localhost/pg-local:15}"
DIR="$PWD/target/harness-test-pg"

ready() { pg_isready -q -h 127.0.0.1 -p "$1" -U postgres -t 1 2>/dev/null; }

if [ "${1:-}" = stop ]; then
  if command -v podman >/dev/null; then podman rm -f "$NAME" >/dev/null 2>&1 || true; fi
  if [ -f "$DIR/data/postmaster.pid" ]; then
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- pg_ctl -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
    else pg_ctl -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true; fi
  fi
  exit 0
fi

url=""
if [ -n "${HARNESS_DATABASE_URL:-}" ]; then
  url="$HARNESS_DATABASE_URL"
elif command -v podman >/dev/null && podman image exists "$IMAGE" 2>/dev/null; then
  if [ "$(podman inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" != true ]; then
    podman rm -f "$NAME" >/dev/null 2>&1 || true
    podman run -d --name "$NAME" -p 127.0.0.1::5432 "$IMAGE" >/dev/null
  fi
  port=$(podman port "$NAME" 5432 | head -1 | sed 's/.*://')
  for _ in $(seq 200); do ready "$port" && break; sleep 0.05; done
  ready "$port" || { echo "test-postgres: container $NAME did not become ready" >&2; podman logs "$NAME" >&2 || true; exit 1; }
  url="postgres://postgres@127.0.0.1:$port/postgres"
else
  run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  port_file="$DIR/port"
  if [ -f "$port_file" ] && ready "$(cat "$port_file")"; then
    port=$(cat "$port_file")
  else
    rm -rf "$DIR"; mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
    run initdb -D "$DIR/data" -A trust -U postgres -N --locale=C >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    run pg_ctl -D "$DIR/data" -l "$DIR/log" -w -o "-p $port -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
    echo "$port" > "$port_file"
  fi
  url="postgres://postgres@127.0.0.1:$port/postgres"
fi
echo "HARNESS_DATABASE_URL=$url" >> "${NEXTEST_ENV:-/dev/stdout}"
