#!/bin/sh
# Builds the static ddbsync binary that the container image ships
# (Dockerfile) and that internal/release tests: no cgo, so it runs on any
# Linux, on a distroless or scratch image; -trimpath for a build that does
# not depend on where the checkout is; the commit stamped from git when
# built in a checkout. GoReleaser (.goreleaser.yaml) builds the release
# archives with the same settings.
#
# usage: scripts/build-static.sh OUTPUT [VERSION]
# GOOS and GOARCH from the environment choose the platform.
set -eu
out=${1:?usage: scripts/build-static.sh OUTPUT [VERSION]}
version=${2:-}
case $out in
/*) ;;
*) out="$PWD/$out" ;;
esac
cd "$(dirname "$0")/.."
ldflags="-s -w"
if [ -n "$version" ]; then
	ldflags="$ldflags -X github.com/ddbsync/ddbsync/internal/cmd/root.version=$version"
fi
CGO_ENABLED=0 exec go build -trimpath -buildvcs=auto -ldflags "$ldflags" -o "$out" ./cmd/ddbsync
