"""Debian packages for tests: downloaded (never installed) with a private apt configuration, cached.

Everything lives under the test cache (``$ROCSTACK_TEST_CACHE``, default
``~/.cache/rocstack-tests``) in ``debian/``: the apt lists of sid + experimental
(fetched once: the archive is a frozen snapshot whose Release files expired, hence
``Check-Valid-Until=false``), the ``.deb`` files keyed by package and version, and
their trees unpacked with ``dpkg-deb -x`` (written to a temporary directory and
renamed, so an interrupted run never leaves half a tree). The host's apt state is
never touched. Without apt-get, dpkg-deb or the network, the tests that need a
package skip with the reason.

    from debian_packages import Package, tree, deb, control, sid_command
    root = tree(Package("librocfft0", "7.2.4-1~exp1"))
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

MIRROR = "http://deb.debian.org/debian"
SUITES = ("sid", "experimental")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class Package:
    name: str
    version: str

    @property
    def key(self) -> str:
        return f"{self.name}_{self.version}".replace(":", "%3a")


# The ROCm 7 artifacts the audit tests read (download / unpacked size):
ROCFFT = Package("librocfft0", "7.2.4-1~exp1")  # 3.5 MB / 13 MB: one plain bundle, 14 arches
HIPSPARSELT = Package("libhipsparselt0", "7.2.4+ds-1~exp1")  # 44 MB / 155 MB: Tensile db (CCOB v3), 3 bundles
HIPBLASLT = Package("libhipblaslt1", "7.1.1+dfsg-4")  # 158 MB / 667 MB: Tensile db (CCOB v2), no gfx942
ROCBLAS = Package("librocblas5", "7.2.4-1~exp1")  # 318 MB / 888 MB: 65 CCOB v3 bundles, Tensile db
RCCL = Package("librccl1", "7.2.4-1~exp3")  # 369 MB / 362 MB: one CCOB v3 bundle, declares gfx950
# sid's clang-offload-bundler-21 (reads CCOB v3, which Debian 12's LLVM 19 does not) and what it links
LLVM21_TOOLS = (Package("clang-tools-21", "1:21.1.8-14"), Package("libclang-cpp21", "1:21.1.8-14"),
                Package("libllvm21", "1:21.1.8-14"), Package("llvm-21", "1:21.1.8-14"),
                Package("libc6", "2.43-7"), Package("libstdc++6", "16.2.0-4"),
                Package("libgcc-s1", "16.2.0-4"), Package("libxml2-16", "2.15.4+dfsg-1+b1"),
                Package("libz3-4", "4.13.3-1.1"), Package("libzstd1", "1.5.7+dfsg-4"),
                Package("zlib1g", "1:1.3.dfsg+really1.3.2-4"), Package("libffi8", "3.8.0-2"),
                Package("libedit2", "3.1-20260512-1"), Package("libtinfo6", "6.6+20260608-2"),
                Package("libbsd0", "0.12.2-3"), Package("libmd0", "1.3.0-1"), Package("liblzma5", "5.8.4-1"),
                Package("libicu78", "78.3-2"))


def cache_root() -> Path:
    root = Path(os.environ.get("ROCSTACK_TEST_CACHE", Path.home() / ".cache" / "rocstack-tests")) / "debian"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian's apt and dpkg provide it)")


def _apt_options() -> list[str]:
    apt = cache_root() / "apt"
    sources = apt / "sources.list"
    if not sources.exists():
        (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (apt / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        sources.write_text("".join(f"deb [signed-by={KEYRING}] {MIRROR} {suite} main\n" for suite in SUITES))
    return [f"-o Dir::Etc::SourceList={sources}", "-o Dir::Etc::SourceParts=/dev/null",
            f"-o Dir::State::Lists={apt / 'lists'}", f"-o Dir::Cache={apt / 'cache'}",
            "-o Acquire::Check-Valid-Until=false", "-o Debug::NoLocking=1", "-o APT::Architecture=amd64"]


def _apt(args: list[str], cwd: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    options = [part for option in _apt_options() for part in option.split(" ", 1)]
    return subprocess.run(["apt-get", "-q", *options, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _lists() -> None:
    marker = cache_root() / "apt" / "updated"
    if marker.exists():
        return
    _need("apt-get")
    done = _apt(["update"])
    if done.returncode != 0:
        pytest.skip(f"cannot fetch Debian's package lists: {done.stderr.strip().splitlines()[-1:]}")
    marker.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))


def deb(package: Package) -> Path:
    """The package's .deb, downloaded once."""
    folder = cache_root() / "debs"
    folder.mkdir(exist_ok=True)
    for arch in ("amd64", "all"):  # apt-get's own file name: name_version_arch.deb, ':' spelled %3a
        if (folder / f"{package.key}_{arch}.deb").exists():
            return folder / f"{package.key}_{arch}.deb"
    _lists()
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        done = _apt(["download", f"{package.name}={package.version}"], cwd=Path(scratch))
        got = sorted(Path(scratch).glob("*.deb"))
        if done.returncode != 0 or not got:
            pytest.skip(f"cannot download {package.name} {package.version}: {done.stderr.strip().splitlines()[-1:]}")
        target = folder / got[0].name
        os.replace(got[0], target)
    return target


def tree(package: Package) -> Path:
    """The package's files, unpacked with ``dpkg-deb -x`` once (root of the tree: ``usr/...``)."""
    target = cache_root() / "trees" / package.key
    if target.exists():
        return target
    _need("dpkg-deb")
    source = deb(package)
    target.parent.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        subprocess.run(["dpkg-deb", "-x", str(source), str(scratch)], check=True, capture_output=True, timeout=1800)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def control(package: Package) -> dict[str, str]:
    """The package's control fields (``dpkg-deb -f``)."""
    _need("dpkg-deb")
    text = subprocess.run(["dpkg-deb", "-f", str(deb(package))], check=True, capture_output=True, text=True).stdout
    fields, key = {}, None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def sid_command(packages: tuple[Package, ...], binary: str) -> list[str]:
    """Run a binary from sid packages on this (older) system, through sid's own dynamic loader.

    The packages are unpacked together into one root (cached), never installed.
    """
    _need("dpkg-deb")
    key = hashlib.sha256("\n".join(sorted(p.key for p in packages)).encode()).hexdigest()[:16]
    merged = cache_root() / "sid-root" / key
    if not merged.exists():
        debs = [deb(p) for p in packages]
        merged.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=merged.parent, prefix=".unpack-"))
        try:
            for source in debs:
                subprocess.run(["dpkg-deb", "-x", str(source), str(scratch)], check=True, capture_output=True,
                               timeout=1800)
            os.replace(scratch, merged)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    libs = ":".join(str(merged / d) for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"))
    return [str(merged / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), "--library-path", libs, str(merged / binary)]
