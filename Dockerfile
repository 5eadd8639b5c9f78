# syntax=docker/dockerfile:1
# Multi-stage, static, non-root build of the currents-mparticle distribution.
# Base images are build arguments so the image can be built from a mirror:
#   docker build --build-arg GO_IMAGE=mirror.example/golang:1.26 ...
ARG GO_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG DATE_BUILT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION} -X main.dateBuilt=${DATE_BUILT}" \
      -o /out/currents-mparticle ./cmd/currents-mparticle && \
    go build -tags timetzdata -ldflags "-s -w" -o /out/mparticle-emulator ./cmd/mparticle-emulator && \
    go build -tags timetzdata -ldflags "-s -w" -o /out/currents-gen ./cmd/currents-gen && \
    mkdir -p /stage/app && cp -r configs /stage/app/

FROM ${RUNTIME_IMAGE}
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
