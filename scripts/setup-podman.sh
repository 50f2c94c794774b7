#!/usr/bin/env bash
# Sets up what the tests and `harness run` use for Postgres on these machines: rootful podman with the
# workarounds this sandbox needs, a Docker-compatible API socket for testcontainers, and a locally built
# Postgres image. Run as root. Idempotent: a second run only checks (about 1 s).
#
# Why each setting: root cannot raise hard rlimits here, so default ulimits are
# lowered; Debian 12's crun refuses this host's hybrid cgroup layout, so runc is used; there is no
# systemd or journald.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SOCK=/run/podman/podman.sock
IMAGE="${HARNESS_PG_IMAGE:-localhost/pg-local:15}"

if [ "$(id -u)" != 0 ]; then
  echo "setup-podman: run as root (or set HARNESS_DATABASE_URL and skip this script)" >&2
  exit 1
fi

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v iptables >/dev/null || need+=(iptables)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-podman: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p /etc/containers
conf=$(cat <<'CONF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
)
if [ "$(cat /etc/containers/containers.conf 2>/dev/null)" != "$conf" ]; then
  printf '%s\n' "$conf" > /etc/containers/containers.conf
fi

if [ "${REBUILD:-0}" = 1 ] || ! podman image exists "$IMAGE"; then
  IMAGE="$IMAGE" "$HERE/build-pg-image.sh"
fi

mkdir -p /run/podman
if ! curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
  setsid podman system service --time=0 "unix://$SOCK" >/run/podman/service.log 2>&1 < /dev/null &
  echo $! > /run/podman/service.pid
  for _ in $(seq 100); do curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null || { echo "setup-podman: the podman API service did not start; see /run/podman/service.log" >&2; exit 1; }
fi
# testcontainers connects to /var/run/docker.sock by default; point it at podman unless a real one is there.
if [ ! -S /var/run/docker.sock ] || [ -L /var/run/docker.sock ]; then
  ln -sfn "$SOCK" /var/run/docker.sock
fi
echo "setup-podman: podman $(podman --version | awk '{print $3}') ready, image $IMAGE, socket $SOCK"
