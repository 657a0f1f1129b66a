#!/usr/bin/env bash
# Runs a command with a moto server (local AWS) on loopback, then stops the server.
#   infra/with-moto.sh <command…>
# Uses MOTO_PORT if set (make dev: 5005), else a free port. Exports AWS_ENDPOINT_URL and
# dummy credentials so the real aws-sdk clients reach moto with no code change.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
moto="$here/.venv/bin/python"
[ -x "$moto" ] || { echo "the project venv is missing: run make venv" >&2; exit 1; }
port="${MOTO_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
mkdir -p "$here/.local"
log="$here/.local/moto-$port.log"
# infra/moto_server.py is moto_server with a fix to FIFO redelivery order (see the file).
# MOTO_HOST=0.0.0.0 (make dev) lets containers reach it (sam local invoke); loopback otherwise.
"$moto" "$here/infra/moto_server.py" -H "${MOTO_HOST:-127.0.0.1}" -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then break; fi
  kill -0 $moto_pid 2>/dev/null || { echo "moto server failed to start:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null || { echo "moto server not ready" >&2; exit 1; }
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
echo "moto server on $AWS_ENDPOINT_URL (log: $log)" >&2
"$@"
