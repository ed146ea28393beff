#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for rocstack: system packages, the
# Docker engine, and the Python packages (rocstack + rocstack-kernels + test deps).
# Idempotent; used by the README quick start and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

# System packages: the Docker engine, debootstrap for the local base image, the
# registry for push/pull tests, and the independent tools the audit is checked
# against (hipcc, clang-offload-bundler, llvm-readobj/readelf, binutils).
APT_PACKAGES=(
  docker.io debootstrap docker-registry
  binutils g++ git
  hipcc libamdhip64-dev
  clang-19 clang-tools-19 llvm-19 lld-19
  busybox-static apache2-utils
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  section "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

section "Docker engine"
bash scripts/start-dockerd.sh

# cosign (sid 3.1.1, trixie 2.5.0) and oras check rocstack's attestations independently in
# the registry tests. Unpacked into the test cache, not installed: two cosigns side by side,
# and sid never enters the system's apt sources. Without them those tests skip with the reason.
section "cosign, oras and docker-buildx"
bash scripts/fetch-oci-tools.sh || echo "warning: cosign/oras/buildx not fetched; the tests that need them will skip" >&2

# docker buildx (Debian sid's docker-buildx, pinned in scripts/oci-tools.txt: it needs only
# libc6 >= 2.34) as a CLI plugin where every docker client looks: `rocstack bake` and
# `rocstack build --builder/--cache-*` drive it; plain `rocstack build` then uses
# `docker buildx build --load` too (same engine BuildKit, docker driver).
buildx_version=$(awk '$1 == "docker-buildx" {print $2}' scripts/oci-tools.txt)
buildx=${ROCSTACK_TEST_CACHE:-$HOME/.cache/rocstack-tests}/oci-tools/docker-buildx_$buildx_version/usr/libexec/docker/cli-plugins/docker-buildx
if [ -x "$buildx" ] && ! cmp -s "$buildx" /usr/local/lib/docker/cli-plugins/docker-buildx; then
  install -D -m 0755 "$buildx" /usr/local/lib/docker/cli-plugins/docker-buildx
fi
docker buildx version || echo "warning: docker buildx is not installed; rocstack bake will say so" >&2

section "Python packages"
python3 -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# torch==2.13.0 resolves to the machine's CPU wheel (pip's configured find-links);
# triton is pinned to the version on the GPU machines that run our AOT-built kernels.
python3 -m pip install -q "torch==2.13.0" "triton==3.6.0"
python3 -m pip install -q -e ".[dev]" -e ./kernels -e ./validation
python3 -c "import rocstack, rocstack_kernels, torch, triton; print('rocstack', rocstack.__version__, '| torch', torch.__version__, '| triton', triton.__version__)"
