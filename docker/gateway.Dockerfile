# faas-gateway: the HTTP edge. In the chart it runs with FAAS_CLUSTER=true behind the shared
# ALB (TargetGroupBinding): 8080 is the public listener (functions, async calls, /readyz),
# 9090 the admin one (read-only /system, /ui, /metrics), never exposed through the ALB.
# Build from the repository root:  docker build -f docker/gateway.Dockerfile -t faas-gateway:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p faas-gateway --bin faas-gateway

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/faas-gateway /faas-gateway
USER 65532:65532
# Binaries and every path they use are absolute; the root filesystem is read-only in a pod.
WORKDIR /
EXPOSE 8080 9090
ENTRYPOINT ["/faas-gateway"]
