# syntax=docker/dockerfile:1
# The ddbsync container image: a static binary (scripts/build-static.sh)
# on distroless/static, which has CA certificates, time zone data and a
# non-root user, and nothing else (no shell).
#
#   make docker                       # or:
#   docker build --build-arg VERSION=v1.2.0 -t ddbsync:v1.2.0 .
#   docker run --rm -e AWS_REGION -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
#     ddbsync:v1.2.0 backfill --input-table orders --output-table orders-copy
#
# The builder runs on the build machine's platform and cross-compiles for
# the target (docker buildx build --platform linux/amd64,linux/arm64 .).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH ./scripts/build-static.sh /out/ddbsync "$VERSION"

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ddbsync /usr/local/bin/ddbsync
# uid 65532; checkpoints go to /home/nonroot/.ddbsync (--state-dir):
# mount a volume there, or share them in DynamoDB with --checkpoint-table.
USER nonroot:nonroot
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/ddbsync"]
CMD ["--help"]
