# capd-manager container image.
#
# Normal machine (compiles inside the builder image):
#   docker build -t capd-rs/capd-manager:dev .
#
# No registry (the test environment): build on the host with cargo, then hand the
# binary in; BUILDER_IMAGE and RUNTIME_IMAGE point at a local image, so nothing is
# pulled. Works with the classic builder (DOCKER_BUILDKIT=0) and with BuildKit:
#   cargo build --release -p capd-manager
#   docker build -t capd-rs/capd-manager:dev \
#     --build-arg BUILDER_IMAGE=capd-rs/base:r-... --build-arg RUNTIME_IMAGE=capd-rs/base:r-... \
#     --build-arg PREBUILT=target/release/capd-manager .
#
# The binary sits at /manager, as in Cluster API's providers: Cluster API's Tilt
# starts the container's `manager` with that command.

# Rust toolchain image; only used to compile when PREBUILT is empty.
ARG BUILDER_IMAGE=rust:1.89-bookworm
# Runtime: glibc (the binary is linked against it) and CA certificates.
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS builder
# Path, in the build context, of a capd-manager built by cargo on the host (a
# bookworm-compatible glibc). Empty: compile it here.
ARG PREBUILT=
# Extra cargo flags for the in-image build, e.g. "--offline" with a vendored tree.
ARG CARGO_FLAGS=
WORKDIR /src
COPY . .
RUN set -eu; \
    mkdir -p /out; \
    if [ -n "${PREBUILT}" ]; then \
        test -f "${PREBUILT}" || { echo "PREBUILT=${PREBUILT}: no such file in the build context" >&2; exit 1; }; \
        cp "${PREBUILT}" /out/manager; \
    else \
        CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked ${CARGO_FLAGS} -p capd-manager; \
        cp target/release/capd-manager /out/manager; \
    fi; \
    chmod 0755 /out/manager

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="capd-manager" \
      org.opencontainers.image.description="Cluster API infrastructure provider for Docker, in Rust" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/manager /manager
# Root: the Docker socket is root:docker 0660 (the Deployment drops every capability).
USER 0:0
EXPOSE 9440 8443
ENTRYPOINT ["/manager"]
