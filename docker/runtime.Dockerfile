# faas-runtime: the WASM runtime pools (`serve --pool`) and the sidecar of container functions
# (`sidecar`), as the controller renders them.
# Build from the repository root:  docker build -f docker/runtime.Dockerfile -t faas-runtime:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p faas-gateway --bin faas-runtime

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/faas-runtime /faas-runtime
USER 65532:65532
# Binaries and every path they use are absolute; the root filesystem is read-only in a pod.
WORKDIR /
# 8080: `serve` (pool pods) and the sidecar's HTTP front; 9001: the sidecar's Lambda Runtime API,
# bound to the pod's loopback (the controller declares both as container ports).
EXPOSE 8080 9001
# The controller gives the role (`serve --pool NAME` or `sidecar`) as arguments.
ENTRYPOINT ["/faas-runtime"]
