# syntax=docker/dockerfile:1
# The tekton-retry server image: one static-ish binary on distroless, running as non-root.
#   docker build -t ghcr.io/tekton-retry/tekton-retry:v0.1.0 .
# The build caches the cargo registry and target directory (BuildKit cache mounts), so rebuilds
# after a source change compile only the workspace's crates.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# -p tekton-retry-cli --no-default-features: the front-door package without its `sandbox` feature,
# so the sandbox crate (an in-process test cluster) is not even compiled. --locked: build exactly
# Cargo.lock.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tekton-retry-cli --no-default-features --bin tekton-retry \
    && install -D -m 0755 target/release/tekton-retry /out/tekton-retry

# glibc and libgcc only (ring needs no OpenSSL); no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tekton-retry /tekton-retry
# The same uid/gid as the Deployment's securityContext (distroless "nonroot").
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/tekton-retry"]
CMD ["serve"]
