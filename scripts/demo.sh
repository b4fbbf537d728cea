#!/usr/bin/env bash
# make demo: sync a table on an embedded DynamoDB Local while it changes,
# then diff the copy. Everything it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./internal/demo -bin bin/ddbsync "$@"
