#!/usr/bin/env bash
# Start Debian's OCI distribution registry (docker-registry) in the background on
# 127.0.0.1:PORT, storing blobs under DIR, and wait until /v2/ answers.
#
#   scripts/start-registry.sh PORT DIR [HTPASSWD_FILE]
#
# DIR receives config.yml, registry.log and registry.pid next to the registry's own
# docker/ tree; stop it with `kill "$(cat DIR/registry.pid)"`. With HTPASSWD_FILE the
# registry demands basic auth (bcrypt entries: `htpasswd -Bbn USER PASS`). Idempotent:
# if a registry already answers on PORT it exits 0. Docker treats 127.0.0.0/8
# registries as insecure-allowed, so no daemon configuration is needed.
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 PORT DIR [HTPASSWD_FILE]" >&2
  exit 2
fi
port=$1
dir=$2
htpasswd=${3:-}
case $port in
  ''|*[!0-9]*) echo "error: port '$port' is not a number - pass e.g. 5000" >&2; exit 2 ;;
esac
if ! command -v docker-registry >/dev/null 2>&1; then
  echo "error: docker-registry not found - install Debian's registry: apt-get install -y docker-registry" >&2
  exit 1
fi

answers() {
  # Any HTTP status (200, or 401 with auth on) means the registry is serving /v2/.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/v2/" || true)
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

if answers; then
  echo "a registry already answers on 127.0.0.1:$port"
  exit 0
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
config=$dir/config.yml
{
  echo "version: 0.1"
  echo "log:"
  echo "  level: warn"
  echo "  accesslog:"
  echo "    disabled: true"
  echo "storage:"
  echo "  filesystem:"
  echo "    rootdirectory: $dir"
  echo "  delete:"
  echo "    enabled: true"
  echo "http:"
  echo "  addr: 127.0.0.1:$port"
  if [ -n "$htpasswd" ]; then
    echo "auth:"
    echo "  htpasswd:"
    echo "    realm: rocstack-registry"
    echo "    path: $(cd "$(dirname "$htpasswd")" && pwd)/$(basename "$htpasswd")"
  fi
} >"$config.tmp"
mv "$config.tmp" "$config"

log=$dir/registry.log
nohup setsid docker-registry serve "$config" >"$log" 2>&1 &
pid=$!
echo "$pid" >"$dir/registry.pid"
for _ in $(seq 1 100); do
  if answers; then
    echo "registry is up on 127.0.0.1:$port (pid $pid, storage $dir, log $log)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: docker-registry exited before answering on 127.0.0.1:$port - see $log" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
  fi
  sleep 0.1
done
echo "error: docker-registry did not answer on 127.0.0.1:$port within 10 s - see $log" >&2
tail -n 20 "$log" >&2 || true
kill "$pid" 2>/dev/null || true
exit 1
