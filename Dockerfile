# syntax=docker/dockerfile:1
# Multi-stage, static, non-root build of the currents-mparticle distribution.
# Base images are build arguments so the image can be built from a mirror:
#   docker build --build-arg GO_IMAGE=<mirror>/golang:1.26 ...
# Cross-compiles: the build stage runs on the builder's platform and builds for
# the target one (docker buildx build --platform linux/amd64,linux/arm64 .).
#
# Targets:
#   (default)  the distribution: /currents-mparticle, running the demo, and
#              /currents-report (progress and re-queue, docs/guides/operating.md)
#   tools      adds the mParticle emulator and the Currents export generator,
#              for trying pipelines without mParticle or Braze (--target tools)
ARG GO_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
ARG DATE_BUILT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    export GOOS=${TARGETOS} GOARCH=${TARGETARCH:-$(go env GOARCH)} && \
    go build -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION} -X main.dateBuilt=${DATE_BUILT}" \
      -o /out/currents-mparticle ./cmd/currents-mparticle && \
    go build -tags timetzdata -ldflags "-s -w" -o /out/currents-report ./cmd/currents-report && \
    go build -tags timetzdata -ldflags "-s -w" -o /tools/mparticle-emulator ./cmd/mparticle-emulator && \
    go build -tags timetzdata -ldflags "-s -w" -o /tools/currents-gen ./cmd/currents-gen && \
    mkdir -p /stage/app && cp -r configs /stage/app/

FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=dev
ARG DATE_BUILT=unknown
LABEL org.opencontainers.image.title="currents-mparticle" \
      org.opencontainers.image.description="Braze Currents to mParticle, as Benthos plugins: decode, map, deliver per feed" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${DATE_BUILT}"
# The runtime image carries CA certificates and runs as the nonroot user in
# /app, which it owns: the configs' relative paths (./configs/sample, the
# demo's ./demo-requests.jsonl) resolve there.
COPY --from=build /out/ /
COPY --from=build --chown=65532:65532 /stage/app /app
COPY configs/demo.yaml /benthos.yaml
USER 65532:65532
WORKDIR /app
EXPOSE 4195
ENTRYPOINT ["/currents-mparticle"]
CMD ["-c", "/benthos.yaml"]

FROM runtime AS tools
COPY --from=build /tools/ /

# The default target: the distribution and the report.
FROM runtime
