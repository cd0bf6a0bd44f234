# syntax=docker/dockerfile:1.7
#
# The data-processor service as a small, non-root container image, for people with Docker:
#   docker build -t data-processor .
#   docker run --rm -p 8080:8080 --env-file service.env data-processor
# `deployer build` produces an equivalent image without a Docker engine (crate `ocibuild`).
#
# Stages: chef (tooling) -> planner (dependency recipe) -> builder (dependencies cached in their
# own layer, rebuilt only when Cargo.toml/Cargo.lock change; then the service) -> runtime.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
WORKDIR /src
RUN cargo install cargo-chef --locked --version 0.1.78

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# A fully static binary (glibc, +crt-static) runs on an image with no libc at all. With an
# explicit --target the flag reaches only the service, not build scripts or proc macros.
ENV RUSTFLAGS="-C target-feature=+crt-static"
COPY --from=planner /src/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo chef cook --release --locked --target "$(uname -m)-unknown-linux-gnu" \
        --package data-processor --recipe-path recipe.json
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --target "$(uname -m)-unknown-linux-gnu" \
        --package data-processor --bin data-processor \
    && cp "target/$(uname -m)-unknown-linux-gnu/release/data-processor" /data-processor

# distroless/static: CA certificates, /etc/passwd with the `nonroot` user (65532), /tmp, and
# nothing else — no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=builder /data-processor /usr/local/bin/data-processor
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8080
# The service is PID 1 (exec form, no shell in between), so it receives SIGTERM itself and
# drains in-flight requests before exiting.
STOPSIGNAL SIGTERM
# The image has no curl: the binary probes its own /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/data-processor", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/data-processor"]
