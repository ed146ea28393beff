#!/usr/bin/env bash
# Fetch Debian's cosign, oras and docker-buildx builds pinned in scripts/oci-tools.txt (Go binaries that
# need only libc6 >= 2.34, so sid's and trixie's install on Debian 12) into the test cache,
# without touching the system's apt sources or state: a private apt configuration
# downloads each .deb, its sha256 is checked, `dpkg-deb -x` unpacks it.
#
#   scripts/fetch-oci-tools.sh [DEST]
#
# DEST defaults to ${ROCSTACK_TEST_CACHE:-~/.cache/rocstack-tests}/oci-tools; each package
# lands in DEST/<package>_<version>/ as the .deb lays it out (usr/bin/cosign,
# usr/libexec/docker/cli-plugins/docker-buildx). Idempotent: a package already
# unpacked there is not fetched again. The Debian mirror is the one this machine's apt
# sources name. sid's Release file may have expired in a frozen archive, hence
# Check-Valid-Until=false (the packages are still checked against the archive key).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-${ROCSTACK_TEST_CACHE:-$HOME/.cache/rocstack-tests}/oci-tools}
pins=scripts/oci-tools.txt

missing=()
while read -r package version suite sha; do
  case $package in ''|'#'*) continue ;; esac
  # the folder appears whole (unpacked beside it, then renamed), so its presence means done
  [ -d "$dest/${package}_${version}" ] || missing+=("$package $version $suite $sha")
done <"$pins"
if [ ${#missing[@]} -eq 0 ]; then
  echo "oci tools present in $dest"
  exit 0
fi

mirror=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
            grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
              sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}'; } | grep -v -- '-security' | head -n 1 || true)
if [ -z "$mirror" ]; then
  echo "error: no Debian mirror in this machine's apt sources - add one to /etc/apt/sources.list" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
suites=$(printf '%s\n' "${missing[@]}" | awk '{print $3}' | sort -u)
for suite in $suites; do
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main"
done >"$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1
  -o Acquire::Check-Valid-Until=false -o APT::Sandbox::User=root
)
apt-get "${apt_opts[@]}" -qq update
mkdir -p "$dest"
for entry in "${missing[@]}"; do
  read -r package version suite sha <<<"$entry"
  (cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "$package=$version")
  deb=$(ls "$work/debs/${package}_"*.deb)
  got=$(sha256sum "$deb" | awk '{print $1}')
  if [ "$got" != "$sha" ]; then
    echo "error: $deb has sha256 $got, not the pinned $sha - update scripts/oci-tools.txt only after checking why" >&2
    exit 1
  fi
  rm -rf "$dest/${package}_${version}.tmp"
  dpkg-deb -x "$deb" "$dest/${package}_${version}.tmp"
  mv -T "$dest/${package}_${version}.tmp" "$dest/${package}_${version}"
  rm -f "$deb"
  echo "$package $version ($suite) -> $dest/${package}_${version}"
done
