#!/bin/sh
# rocstack-jobs COMPONENT MEMORY_PER_JOB_GB [MAX_JOBS_CAP]
#
# Decides MAX_JOBS inside the builder, when the stage runs, from the machine that
# really builds (a 128-core remote BuildKit, a 2-core laptop), not the one that
# rendered the Dockerfile: min(nproc, MemAvailable / memory per job, the recipe's
# cap), at least 1. Compilers that take ~9 GB per job (CK flash-attention) would
# otherwise OOM a many-core builder. Prints the number and writes the component's
# build marker, /out/rocstack-build/COMPONENT.json: the runtime stage copies every
# component's marker (so BuildKit cannot skip a builder stage), and the build
# manifest records what each builder decided. (nproc honours OMP_NUM_THREADS; tests
# point ROCSTACK_MEMINFO and ROCSTACK_MARKERS elsewhere.)
set -eu
meminfo=${ROCSTACK_MEMINFO:-/proc/meminfo}
markers=${ROCSTACK_MARKERS:-/out/rocstack-build}
name=$1
per_job_gb=$2
cap=${3:-0}
cpus=$(nproc)
mem_kb=$(awk '/^MemAvailable:/ { print $2 }' "$meminfo")
by_memory=$(awk -v m="$mem_kb" -v g="$per_job_gb" 'BEGIN { print int(m / (g * 1048576)) }')
jobs=$cpus
[ "$by_memory" -lt "$jobs" ] && jobs=$by_memory
[ "$cap" -gt 0 ] && [ "$cap" -lt "$jobs" ] && jobs=$cap
[ "$jobs" -lt 1 ] && jobs=1
mkdir -p "$markers"
printf '{"component": "%s", "max_jobs": %d, "nproc": %d, "mem_available_kb": %d, "memory_per_job_gb": %s, "max_jobs_cap": %d}\n' \
  "$name" "$jobs" "$cpus" "$mem_kb" "$per_job_gb" "$cap" >"$markers/$name.json"
echo "$jobs"
