#!/usr/bin/env bash
# Start Debian's Docker engine in the background unless one already answers, then wait
# for its socket. Idempotent: safe to call from .ci/run, tests and developers' shells.
set -euo pipefail
sock=/var/run/docker.sock
if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "error: dockerd not found - install Debian's engine: apt-get install -y docker.io" >&2
  exit 1
fi
log=${DOCKERD_LOG:-/var/log/rocstack-dockerd.log}
nohup setsid dockerd --host=unix://$sock >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "dockerd $(docker version --format '{{.Server.Version}}') is up (log: $log)"
    exit 0
  fi
  sleep 1
done
echo "error: dockerd did not answer on $sock within 60 s - see $log" >&2
tail -n 20 "$log" >&2 || true
exit 1
