"""The toolchain layer of a debootstrap base: apt sources, pins and exact package versions.

A stack's ``base.debootstrap.apt`` (Debian's ROCm 7 from experimental, on a sid root) is
written into the tree after debootstrap as three files, then installed in one apt-get call
inside the tree. The pins keep everything else out of experimental (``-t experimental``
would also upgrade libc6). Every requested ``name=version`` is looked up first, so a version
the mirror no longer has is one error naming it, with the versions the mirror does have.

The same files drive ``rocstack apt-versions``: a private apt state on the host (nothing of
the host's own apt configuration is touched) that lists what the mirror serves now.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rocstack.errors import RocstackError
from rocstack.recipes.models import AptLayer, Stack

SOURCES = "etc/apt/sources.list"
CONFIG = "etc/apt/apt.conf.d/50rocstack"
PREFERENCES = "etc/apt/preferences.d/rocstack"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8",
           "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
TAIL = 8


def apt_files(apt: AptLayer, mirror: str) -> dict[str, str]:
    """Relative path -> content of the apt configuration the layer writes (pure)."""
    sources = "".join(f"deb {mirror} {s.suite} {' '.join(s.components)}\n" for s in apt.sources)
    config = []
    if not apt.check_valid_until:
        # a frozen archive: sid's and experimental's Release files carry a Valid-Until in the past
        config.append('Acquire::Check-Valid-Until "false";')
    if apt.no_recommends:
        config += ['APT::Install-Recommends "false";', 'APT::Install-Suggests "false";']
    stanzas = []
    for pin in apt.pins:
        what = f"release a={pin.release}" if pin.release is not None else f"version {pin.version}"
        stanzas.append(f"Package: {' '.join(pin.packages)}\nPin: {what}\nPin-Priority: {pin.priority}\n")
    return {SOURCES: sources, CONFIG: "\n".join(config) + ("\n" if config else ""), PREFERENCES: "\n".join(stanzas)}


def split_pinned(item: str) -> tuple[str, str]:
    name, _, version = item.partition("=")
    return name, version


def _run(argv: list[str], log, what: str) -> subprocess.CompletedProcess:
    log.write("$ " + " ".join(argv) + "\n")
    log.flush()
    result = subprocess.run(argv, capture_output=True, text=True, env=APT_ENV)
    log.write(result.stdout + result.stderr)
    log.flush()
    return result


def _tail(result: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    return " | ".join(lines[-TAIL:])


def available_versions(madison: str, name: str) -> list[str]:
    """Versions of ``name`` in ``apt-cache madison`` output (pure)."""
    out = []
    for line in madison.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and parts[0] == name and parts[1] not in out:
            out.append(parts[1])
    return out


def missing_versions(apt: AptLayer, madison_of) -> list[str]:
    """``name=version (mirror has: ...)`` for every package whose pinned version the mirror lacks.
    ``madison_of(name)`` returns ``apt-cache madison`` output for one package."""
    problems = []
    for item in apt.packages:
        name, version = split_pinned(item)
        have = available_versions(madison_of(name), name)
        if version not in have:
            problems.append(f"{item} (the mirror has: {', '.join(have) or 'no such package'})")
    return problems


def refresh_hint(stack: Stack) -> str:
    return (f"refresh the pin: `rocstack apt-versions --stack {stack.name}` lists the versions the mirror serves now; "
            "set them in base.debootstrap.apt.packages (and the matching pins) of the stack file")


def install_layer(root: Path, stack: Stack, mirror: str, log) -> None:
    """Write the apt files into the debootstrap tree ``root`` and install the pinned packages there."""
    apt = stack.base.debootstrap.apt
    for rel, text in apt_files(apt, mirror).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    chroot = ["chroot", str(root)]
    update = _run([*chroot, "apt-get", "update"], log, "apt-get update")
    if update.returncode != 0:
        raise RocstackError(f"apt-get update in the {stack.name} base tree failed (exit {update.returncode}): {_tail(update)}",
                            "check the stack's base.debootstrap.apt.sources and the mirror (ROCSTACK_DEBIAN_MIRROR)")

    def madison(name: str) -> str:
        return _run([*chroot, "apt-cache", "madison", name], log, "apt-cache madison").stdout

    missing = missing_versions(apt, madison)
    if missing:
        raise RocstackError(f"stack {stack.name}: Debian package version(s) not on the mirror: {'; '.join(missing)}",
                            refresh_hint(stack))
    install = _run([*chroot, "apt-get", "install", "-y", *apt.packages], log, "apt-get install")
    if install.returncode != 0:
        raise RocstackError(f"installing the toolchain layer of {stack.name} failed (exit {install.returncode}): {_tail(install)}",
                            "the pinned versions do not resolve together: check base.debootstrap.apt.pins; full log in "
                            f"{getattr(log, 'name', 'the base log')}")


@dataclass(frozen=True)
class PackageVersions:
    item: str  # name=version as pinned in the stack
    available: list[str]  # what the mirror serves now, newest first (apt's order)
    candidate: str | None  # what apt would install with the stack's pins

    @property
    def current(self) -> bool:
        return split_pinned(self.item)[1] in self.available


def list_versions(stack: Stack, mirror: str) -> list[PackageVersions]:
    """The mirror's versions of every pinned package, read through a private apt state (host apt untouched)."""
    spec = stack.base.debootstrap.apt if stack.base.debootstrap else None
    if spec is None:
        raise RocstackError(f"stack {stack.name} pins no Debian packages (no base.debootstrap.apt)",
                            "use a stack whose debootstrap base has a toolchain layer, e.g. debian-rocm")
    with tempfile.TemporaryDirectory(prefix="rocstack-apt-") as tmp:
        state = Path(tmp)
        for rel, text in apt_files(spec, mirror).items():
            (state / rel).parent.mkdir(parents=True, exist_ok=True)
            (state / rel).write_text(text)
        (state / "lists/partial").mkdir(parents=True)
        (state / "cache/archives/partial").mkdir(parents=True)
        (state / "status").write_text("")
        options = [f"-oDir::Etc::SourceList={state / SOURCES}", "-oDir::Etc::SourceParts=/dev/null",
                   f"-oDir::Etc::Preferences={state / PREFERENCES}", "-oDir::Etc::PreferencesParts=/dev/null",
                   f"-oDir::State::Lists={state / 'lists'}", f"-oDir::Cache={state / 'cache'}",
                   f"-oDir::State::status={state / 'status'}", "-oAcquire::Check-Valid-Until=false",
                   "-oAPT::Architectures=amd64"]
        with open(os.devnull, "w") as sink:
            update = _run(["apt-get", *options, "update"], sink, "apt-get update")
            if update.returncode != 0:
                raise RocstackError(f"apt-get update of {stack.name}'s sources failed: {_tail(update)}",
                                    "check the mirror (ROCSTACK_DEBIAN_MIRROR) and the network")
            out = []
            for item in spec.packages:
                name, _ = split_pinned(item)
                madison = _run(["apt-cache", *options, "madison", name], sink, "madison").stdout
                policy = _run(["apt-cache", *options, "policy", name], sink, "policy").stdout
                candidate = next((ln.split(":", 1)[1].strip() for ln in policy.splitlines()
                                  if ln.strip().startswith("Candidate:")), None)
                out.append(PackageVersions(item, available_versions(madison, name),
                                           None if candidate in (None, "(none)") else candidate))
    return out
