#!/usr/bin/env bash
# The container image (Dockerfile) and compose.yaml: build them, and smoke-test them the way CI does.
#
#   bash scripts/image.sh build                      # the Dockerfile as is: compiles in the official Rust image
#   bash scripts/image.sh build --prebuilt           # binaries compiled on this host (release), copied in
#   bash scripts/image.sh build --prebuilt --profile dev --local-base
#                                                    # CI: the test build's binaries, on a registry-free base
#   bash scripts/image.sh smoke                      # the checks below against $IMAGE
#   bash scripts/image.sh ci                         # `.ci/run image`: podman set up, the CI build, then smoke
#
# --local-base builds the runtime base from this host's Debian 12 packages (scripts/build-runtime-base.sh), for
# machines that reach no container registry; with it, `smoke` also runs compose.yaml's Postgres from the local
# image scripts/setup-podman.sh builds. The engine is podman, else docker (ENGINE=... to choose).
#
# The smoke test, each step failing the script with what went wrong:
#   1. the image runs as 10001:10001 (the Kubernetes manifests' user), has no entrypoint and no secret-looking
#      variable baked in;
#   2. `pipeline --help` and `harness --help` run in it with a read-only root filesystem;
#   3. `harness run` scores one date inside it (read-only root, the data directory on a volume) against a Postgres
#      container on a network of their own: the pipeline in the image, end to end, passes;
#   4. `compose up`: Postgres, the fakes and the scheduler service come up; the scheduler runs yesterday, and its
#      metrics endpoint reports one succeeded run; `compose down -v` removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pipeline/Cargo.toml | head -1)
IMAGE="${IMAGE:-localhost/market-pipeline:$version}"
ENGINE="${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}"
LOCAL_BASE_IMAGE=localhost/market-runtime-base:bookworm
PG_IMAGE="${HARNESS_PG_IMAGE:-localhost/pg-local:15}"
say() { echo "image.sh: $*" >&2; }
die() { say "$*"; exit 1; }

build() {
  local prebuilt=0 profile=release local_base=0 args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --prebuilt) prebuilt=1 ;;
      --profile) profile="${2:?--profile needs release or dev}"; shift ;;
      --local-base) local_base=1 ;;
      *) die "build: unknown option '$1' (--prebuilt, --profile release|dev, --local-base)" ;;
    esac
    shift
  done
  if [ "$local_base" = 1 ]; then
    bash scripts/build-runtime-base.sh
    args+=(--build-arg "RUNTIME_IMAGE=$LOCAL_BASE_IMAGE")
  fi
  if [ "$prebuilt" = 1 ]; then
    case "$profile" in
      release) dir=release ;;
      dev) dir=debug ;;
      *) die "build: --profile is release or dev, not '$profile'" ;;
    esac
    cargo build --locked --profile "$profile" --bin pipeline --bin harness
    # The layout the Dockerfile's build stage leaves in /out: bin/ and the data directory under root/.
    rm -rf target/image && mkdir -p target/image/bin target/image/root/data
    # Symbols stay (a backtrace names functions); the debug info goes.
    objcopy --strip-debug "target/$dir/pipeline" target/image/bin/pipeline
    objcopy --strip-debug "target/$dir/harness" target/image/bin/harness
    args+=(--build-arg BINARIES=prebuilt)
  else
    # Explicit, not the Dockerfile's default: buildah (podman 4) prunes unused stages before it expands a default.
    args+=(--build-arg BINARIES=build)
  fi
  "$ENGINE" build --tag "$IMAGE" "${args[@]}" .
  say "built $IMAGE ($("$ENGINE" image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=si)B)"
}

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

smoke() {
  "$ENGINE" image exists "$IMAGE" 2>/dev/null || "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1 ||
    die "no image $IMAGE: run 'bash scripts/image.sh build' first"

  say "1/4 image configuration"
  local user entrypoint env
  user=$("$ENGINE" image inspect -f '{{.Config.User}}' "$IMAGE")
  [ "$user" = "10001:10001" ] || die "the image runs as '$user', expected 10001:10001 (the manifests' runAsUser)"
  entrypoint=$("$ENGINE" image inspect -f '{{.Config.Entrypoint}}' "$IMAGE")
  case "$entrypoint" in "" | "[]") ;; *) die "the image has an entrypoint ($entrypoint); commands name their binary" ;; esac
  env=$("$ENGINE" image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE")
  if grep -Ei '^[^=]*(TOKEN|SECRET|PASSWORD|API_KEY|CREDENTIALS)[^=]*=' <<<"$env"; then
    die "the image bakes in a secret-looking variable (above); secrets come from the environment at run time"
  fi

  say "2/4 --help of both binaries, read-only root filesystem"
  # Captured whole, not piped into `grep -q`: grep would exit at the first match, and the engine, still writing
  # the rest of a long help text, would fail with a broken pipe.
  local help binary
  for binary in pipeline harness; do
    help=$("$ENGINE" run --rm --read-only "$IMAGE" "$binary" --help) || die "$binary --help failed in the image"
    grep -q "Usage: $binary" <<<"$help" || die "$binary --help did not print its usage: $help"
  done

  say "3/4 harness run for one date inside the image"
  local net=market-image-smoke pg=market-image-smoke-pg data=market-image-smoke-data
  smoke_cleanup() {
    "$ENGINE" rm -f "$pg" >/dev/null 2>&1 || true
    "$ENGINE" network rm -f "$net" >/dev/null 2>&1 || true
    "$ENGINE" volume rm -f "$data" >/dev/null 2>&1 || true
  }
  smoke_cleanup
  trap smoke_cleanup EXIT
  "$ENGINE" network create "$net" >/dev/null
  "$ENGINE" run -d --name "$pg" --network "$net" "$PG_IMAGE" >/dev/null
  # HARNESS_DATABASE_URL: the harness creates a fresh database in it for the run's world. The data directory is a
  # named volume, as in compose.yaml (a new volume takes the image's owner of /data, the unprivileged user).
  "$ENGINE" run --rm --read-only --tmpfs /tmp -v "$data:/data" --network "$net" \
    -e "HARNESS_DATABASE_URL=postgres://postgres@$pg:5432/postgres" \
    "$IMAGE" harness run --date 2024-06-03 --activity 0.05 --symbols 'binance-futures:BTCUSDT;bitmex:XBTUSD' \
    > target/image-smoke-run.txt 2>&1 || { cat target/image-smoke-run.txt >&2; die "harness run failed in the image"; }
  # Exit 0 is a passing score (1 would be findings); the report was written inside the container's /data.
  grep -q '^report: ' target/image-smoke-run.txt || { cat target/image-smoke-run.txt >&2; die "harness run wrote no report"; }

  smoke_cleanup
  trap - EXIT

  say "4/4 compose up: Postgres, the fakes, the scheduler; one date through the stack"
  compose_smoke
  say "passed: $IMAGE"
}

# podman-compose from PyPI, pinned, in a venv under target/ (Debian 12's podman has no `compose` subcommand).
compose_cmd() {
  if [ "$ENGINE" = docker ] && docker compose version >/dev/null 2>&1; then
    echo "docker compose"
    return
  fi
  bash scripts/venv.sh target/compose-venv scripts/compose-requirements.txt >&2 || die "cannot install podman-compose"
  echo "target/compose-venv/bin/podman-compose"
}

compose_smoke() {
  local compose port project=market-pipeline-smoke deadline metrics=""
  read -ra compose <<<"$(compose_cmd)"
  port=$(free_port)
  export PIPELINE_IMAGE="$IMAGE" METRICS_PORT="$port"
  if "$ENGINE" image exists "$PG_IMAGE" 2>/dev/null; then export POSTGRES_IMAGE="$PG_IMAGE"; fi
  local down=("${compose[@]}" -p "$project" -f compose.yaml down -v)
  compose_down() { "${down[@]}" >/dev/null 2>&1 || true; }
  compose_down
  trap compose_down EXIT
  "${compose[@]}" -p "$project" -f compose.yaml up -d >target/image-smoke-compose.txt 2>&1 ||
    { cat target/image-smoke-compose.txt >&2; die "compose up failed"; }
  # A date at activity 0.05 takes seconds; the deadline covers a slow machine and the containers' start.
  deadline=$((SECONDS + 180))
  while [ $SECONDS -lt $deadline ]; do
    metrics=$(curl -sf "http://127.0.0.1:$port/metrics" || true)
    grep -q '^pipeline_runs_total{status="succeeded"} 1$' <<<"$metrics" && break
    grep -q '^pipeline_runs_total{status="failed"} [1-9]' <<<"$metrics" && break
    sleep 2
  done
  if ! grep -q '^pipeline_runs_total{status="succeeded"} 1$' <<<"$metrics"; then
    "${compose[@]}" -p "$project" -f compose.yaml logs >&2 || true
    printf '%s\n' "$metrics" | grep '^pipeline_' >&2 || true
    die "compose: the scheduler did not report a succeeded run within 180 s (logs above)"
  fi
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || die "compose: /readyz did not answer 200"
  say "compose: $(grep '^pipeline_rows_total' <<<"$metrics" | tr '\n' ' ')"
  compose_down
  trap - EXIT
}

case "${1:-}" in
  build) shift; build "$@" ;;
  smoke) shift; smoke "$@" ;;
  ci)
    bash scripts/setup-podman.sh
    build --prebuilt --profile dev --local-base
    smoke
    ;;
  *) die "usage: scripts/image.sh build [--prebuilt] [--profile release|dev] [--local-base] | smoke | ci" ;;
esac
