# The pipeline's image: `pipeline` and `harness` on a distroless runtime (glibc, CA bundle, tzdata; no shell, no
# package manager), running as an unprivileged numeric user. No secret is baked in: every credential comes from
# the environment or a mounted file at run time (README, "Configuration").
#
#   docker build -t market-pipeline:0.1.0 .
#   podman build --build-arg BINARIES=build -t market-pipeline:0.1.0 .     # scripts/image.sh wraps both
#
# Build arguments:
#   RUST_IMAGE     the toolchain stage's base (default: the official Rust image of the workspace's rust-version)
#   RUNTIME_IMAGE  the runtime base (default: distroless cc-debian12; scripts/build-runtime-base.sh builds a
#                  registry-free stand-in from a Debian 12 host's packages)
#   BINARIES       `build` compiles in the toolchain stage (the default); `prebuilt` copies the two binaries from
#                  target/image/ in the build context instead, for machines without a registry to pull RUST_IMAGE
#                  from (scripts/image.sh builds them on the host first). Podman 4 (buildah) wants it passed
#                  even for `build`: it prunes unused stages before expanding an ARG's default
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12
ARG BINARIES=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and target directory are cache mounts: a rebuild after a source change recompiles only the
# workspace's crates. The binaries keep their symbols (backtraces name functions) but no debug info. No default
# features: the harness in the image reaches Postgres through HARNESS_DATABASE_URL, never a container engine.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p pipeline -p harness --no-default-features --bin pipeline --bin harness \
        --config 'profile.release.strip="debuginfo"' \
    && mkdir -p /out/bin /out/root/data \
    && cp target/release/pipeline target/release/harness /out/bin/

FROM scratch AS prebuilt
# bin/{pipeline,harness} and root/data/, empty (a scratch stage cannot create a directory).
COPY target/image/ /out/

FROM ${BINARIES} AS binaries

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="market-pipeline" \
      org.opencontainers.image.description="Daily Tardis trades to BigQuery OHLCV candles, with its test harness" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=binaries /out/bin/ /usr/local/bin/
# The data directory is a volume (an emptyDir on Kubernetes); with a read-only root filesystem the pipeline writes
# only there and to /tmp. 10001 is the user the Kubernetes manifests run as.
# (COPY gives a copied directory's contents the owner, not the directory itself: hence root/ holding data/.)
COPY --from=binaries --chown=10001:10001 /out/root/ /
ENV PIPELINE_DATA_DIR=/data \
    PIPELINE_LOG_FORMAT=json \
    HOME=/tmp
WORKDIR /data
USER 10001:10001
# `--metrics-listen 0.0.0.0:9184` serves /metrics, /healthz and /readyz.
EXPOSE 9184
# Two binaries, so no entrypoint: `podman run IMAGE pipeline run --date ...`, `podman run IMAGE harness ...`.
CMD ["pipeline", "--help"]
