# faas-controller: reconciles Function resources, runs cron on the Lease holder.
# Build from the repository root:  docker build -f docker/controller.Dockerfile -t faas-controller:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p faas-controller --bin faas-controller

# glibc and CA certificates, no shell, uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/faas-controller /faas-controller
USER 65532:65532
# Binaries and every path they use are absolute; the root filesystem is read-only in a pod.
WORKDIR /
EXPOSE 8080
ENTRYPOINT ["/faas-controller"]
