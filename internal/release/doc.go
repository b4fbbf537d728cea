// Package release holds the tests of how ddbsync is built for operators:
// the static binary of the container image (scripts/build-static.sh, the
// Dockerfile) is built and run against DynamoDB Local, and the GoReleaser
// configuration is checked to build the same way. No Docker engine is
// needed: the image itself is not built by the tests.
package release
