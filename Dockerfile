# syntax=docker/dockerfile:1
#
# The mlmon image the Helm chart and k8s/ manifests default to (ghcr.io/mlmon/mlmon:<version>):
# one static binary on distroless/static, running as the non-root user 65532.
#
#   docker build -t ghcr.io/mlmon/mlmon:0.1.0 .
#   docker run --rm -p 8000:8000 -p 9464:9464 ghcr.io/mlmon/mlmon:0.1.0 demo
#
# The binary is built by `make static` (the same recipe developers and CI run), which links
# glibc statically (-C target-feature=+crt-static) for the build host's target and refuses
# a dynamically linked result.

# The toolchain the project is developed and tested with (Cargo.toml rust-version is the floor).
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    make static \
 && cp "target/$(rustc -vV | sed -n 's/^host: //p')/release/mlmon" /mlmon \
 && if readelf -l /mlmon | grep -q 'Requesting program interpreter'; then \
      echo "mlmon is dynamically linked" >&2; exit 1; \
    fi \
 && /mlmon --version

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="mlmon" \
      org.opencontainers.image.description="ML model monitoring sidecar: proxies inference traffic and exports drift, quality, latency and performance metrics to Prometheus" \
      org.opencontainers.image.source="https://github.com/mlmon/mlmon" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /mlmon /usr/local/bin/mlmon
# Config and baselines are mounted read-only (/etc/mlmon, /var/lib/mlmon/baselines);
# the root filesystem can be read-only.
USER 65532:65532
# Freed memory goes back to the OS at once (docs/reliability.md, "Memory after bursts");
# set here, `mlmon serve` does not need to restart itself to set it.
ENV MIMALLOC_PURGE_DELAY=0
# 8000: proxy (listen), 9464: admin API and /metrics (admin_listen).
EXPOSE 8000 9464
ENTRYPOINT ["/usr/local/bin/mlmon"]
CMD ["serve", "--config", "/etc/mlmon/config.yaml"]
