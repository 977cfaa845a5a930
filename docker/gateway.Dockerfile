# faas-gateway: the HTTP edge. Today it serves local mode (a folder of manifests); the cluster
# mode behind the shared ALB (TargetGroupBinding) is the next piece of work (see README).
# Build from the repository root:  docker build -f docker/gateway.Dockerfile -t faas-gateway:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p faas-gateway --bin faas-gateway

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/faas-gateway /faas-gateway
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/faas-gateway"]
