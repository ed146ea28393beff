"""Per-target coverage of kpack-split libraries, judged the way the loader resolves archives.

For each split library, each path it can be loaded from, and each device an image target
stands for (:func:`~rocstack.audit.kpack_resolve.devices_for`), the loader (rocm-kpack
``runtime/src/loader.cpp`` before rocm-systems PR #9953) forms its candidate archive paths,
opens those that exist and parse, then walks the device's compatible targets, most specific
first, and takes the FIRST archive whose ``gfx_arches`` lists the target. Every code object
the library registers (``<kernel_name>#<co_index>``) must be in that archive under that
target; a missing one is KPACK_ERROR_KERNEL_NOT_FOUND (hipErrorInvalidImage): the loader
does not look further. Outcomes, one :class:`Resolution` each:

- ``ok``;
- ``disabled``: ``ROCM_KPACK_DISABLE`` is set;
- ``no-archive``: no candidate archive exists or opens (hipErrorFileNotFound);
- ``no-arch``: archives exist, none lists a compatible target (hipErrorNoBinaryForGpu);
- ``shadowed``: the chosen archive lacks keys a later compatible archive has — an
  incomplete ``xnack±`` overlay in front of the complete base (TheRock#7081); a loader with
  PR #9953 falls through to the base, older ones fail;
- ``missing-kernels``: no compatible archive has them.

Findings name the archive, the device and the device package to install (TheRock:
``amd-torch-device-<arch>`` for ``torch/.kpack``, ``rocm-sdk-device-<arch>`` for
``_rocm_sdk_*/.kpack``, or the family package).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from typing import Literal

from rocstack.arches import TargetID
from rocstack.audit.kpack import KpackFinding, SplitLibrary
from rocstack.audit.kpack_archive import ArchiveLimits, KpackArchive, open_archive
from rocstack.audit.kpack_resolve import ENV_PATH, ENV_PREFIX, GFXARCH, Candidate, Device, HardlinkIndex, \
    KpackEnv, candidates, compatible_targets, devices_for, load_paths, physical
from rocstack.audit.sysroot import Sysroot

Status = Literal["ok", "disabled", "no-archive", "no-arch", "shadowed", "missing-kernels"]
# TheRock's family device packages (rocm[device-<family>]): which family an arch ships in.
THEROCK_FAMILIES = {
    "gfx942": "gfx94X-dcgpu", "gfx950": "gfx950-dcgpu",
    "gfx1100": "gfx110X-dgpu", "gfx1101": "gfx110X-dgpu", "gfx1102": "gfx110X-dgpu",
    "gfx1200": "gfx120X-all", "gfx1201": "gfx120X-all", "gfx1250": "gfx125X-dcgpu",
}
_PR = "rocm-systems PR #9953"
_SHOWN = 4


@dataclass
class Resolution:
    library: str  # path inside the root, as audited
    load_path: str  # the path it is loaded from (as /proc/self/maps shows it)
    device: Device
    status: Status
    keys: list[str]
    archive: str | None = None  # the archive the loader chose (inside path)
    arch: str | None = None  # the TOC target it matched
    missing: list[str] = field(default_factory=list)
    fallback: str | None = None  # shadowed: the archive a PR #9953 loader falls through to
    tried: list[Candidate] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class KpackCoverage:
    resolutions: list[Resolution] = field(default_factory=list)
    findings: list[KpackFinding] = field(default_factory=list)
    archives: dict[str, KpackArchive] = field(default_factory=dict)  # host path -> opened archive
    aliases: dict[str, str] = field(default_factory=dict)  # another name of a judged library -> the judged name

    def rows(self, library: str, image_target: str) -> list[Resolution]:
        name = self.aliases.get(library, library)
        return [r for r in self.resolutions if r.library == name and r.device.image_target == image_target]

    def covered(self, library: str, image_target: str) -> bool:
        """Every load path in the default mode of ``image_target`` resolves all of the library's code."""
        rows = [r for r in self.rows(library, image_target) if not r.device.mode]
        return bool(rows) and all(r.ok for r in rows)

    def sources(self, library: str, image_target: str) -> list[str]:
        """The archives that supply the library for that target (the coverage matrix's source column)."""
        return sorted({r.archive for r in self.rows(library, image_target) if r.ok and r.archive})

    def held_targets(self, library: str, keys: list[str]) -> dict[str, list[str]]:
        """key -> the TOC targets holding it, over every archive the loader opened for the library."""
        name = self.aliases.get(library, library)
        hosts = sorted({c.host for r in self.resolutions if r.library == name for c in r.tried})
        opened = [a for a in (self.archives.get(h) for h in hosts) if a is not None and a.usable]
        return {key: sorted({arch for a in opened for arch in a.arches_of(key)}) for key in keys}


class ArchiveCache:
    """Each archive opened (header + TOC) once, whatever number of libraries and devices ask."""

    def __init__(self, limits: ArchiveLimits = ArchiveLimits()):
        self.limits = limits
        self.opened: dict[str, KpackArchive] = {}

    def get(self, candidate: Candidate) -> KpackArchive | None:
        """None when nothing is there; an archive that fails to parse is returned with ``usable`` False."""
        host = candidate.host  # links already resolved inside the root (kpack_resolve.physical)
        if host not in self.opened:
            if not os.path.isfile(host):
                return None
            self.opened[host] = open_archive(host, candidate.inside, self.limits)
        return self.opened[host]


def judge(libraries: dict[str, SplitLibrary], targets: list[TargetID], root: Sysroot, env: KpackEnv,
          hardlinks: HardlinkIndex | None = None, cwd: str = "/",
          limits: ArchiveLimits = ArchiveLimits(), cache: ArchiveCache | None = None) -> KpackCoverage:
    """Resolutions and findings for every split library (keyed by its path inside ``root``) on every target.

    ``cache``: archives opened already (by the caller's discovery), shared so each is read once."""
    cache = cache or ArchiveCache(limits)
    out = KpackCoverage()
    out.findings += _env_findings(env, len(libraries))
    judged: dict[tuple[int, int], str] = {}
    for inside, lib in sorted(libraries.items()):
        keys = lib.keys()
        if lib.ref is None or not keys:
            continue  # its structural findings (read_split_library) say why
        identity = _identity(root, inside)
        if identity in judged:
            out.aliases[inside] = judged[identity]  # a symlink or hardlink: judged with all its load paths
            continue
        judged[identity] = inside
        paths = load_paths(root, inside, hardlinks)
        rows = []
        for load_path in paths:
            for target in targets:
                for device in devices_for(target):
                    if env.disabled:
                        rows.append(Resolution(inside, load_path, device, "disabled", keys))
                        continue
                    tried = candidates(lib.ref, load_path, device.target, env, root, cwd)
                    rows.append(resolve(inside, load_path, device, keys, tried, cache))
        out.resolutions += rows
        out.findings += _library_findings(rows, cache)
    out.archives = cache.opened
    return out


def _identity(root: Sysroot, inside: str) -> tuple[int, int]:
    try:
        st = os.stat(physical(root, inside)[1])
    except OSError:
        return (-1, hash(inside))
    return (st.st_dev, st.st_ino)


def resolve(library: str, load_path: str, device: Device, keys: list[str], tried: list[Candidate],
            cache: ArchiveCache) -> Resolution:
    """The loader's choice for one library on one device, given the candidates it tries (in order)."""
    row = Resolution(library, load_path, device, "ok", keys, tried=tried)
    opened: list[tuple[Candidate, KpackArchive]] = []
    seen = set()
    for cand in tried:
        archive = cache.get(cand)
        if archive is not None and archive.usable and archive.path not in seen:
            seen.add(archive.path)
            opened.append((cand, archive))
    if not opened:
        row.status = "no-archive"
        return row
    order = [(t, cand, arc) for t in compatible_targets(device.target) for cand, arc in opened if t in arc.gfx_arches]
    if not order:
        row.status = "no-arch"
        return row
    target, cand, archive = order[0]
    row.archive, row.arch = cand.inside, target
    row.missing = [k for k in keys if not archive.has(k, target)]
    if row.missing:
        later = [(c.inside, a, t) for t, c, a in order[1:] if a is not archive or t != target]
        found = next((name for name, a, t in later if all(a.has(k, t) for k in row.missing)), None)
        row.status, row.fallback = ("shadowed", found) if found else ("missing-kernels", None)
    return row


def _env_findings(env: KpackEnv, count: int) -> list[KpackFinding]:
    out = []
    settings = ", ".join(f"{k}={v}" for k, v in env.settings)
    if env.disabled and count:
        out.append(KpackFinding(
            "error", "kpack-env", "image environment",
            f"ROCM_KPACK_DISABLE turns kpack off: the {count} kpack-split libraries cannot load any device code",
            "unset ROCM_KPACK_DISABLE (or set it to 0) in the image", evidence=settings))
    for name, paths in ((ENV_PATH, env.path), (ENV_PREFIX, env.prefix)):
        if any(GFXARCH in p for p in paths):
            out.append(KpackFinding(
                "warning", "kpack-env", "image environment",
                f"{name} contains {GFXARCH}, which the loader expands only in embedded search paths",
                f"list the archive files themselves in {name}", evidence=settings))
    return out


def device_package(archive_inside: str, processor: str) -> str:
    """The TheRock package that ships an archive at that path for that arch."""
    parts = archive_inside.split("/")
    name = os.path.basename(archive_inside)
    family = THEROCK_FAMILIES.get(processor)
    also = f", or the {family} family device package" if family else ""
    if "torch" in parts or name.startswith("torch_"):
        return f"amd-torch-device-{processor}{also}"
    if any(p.startswith("_rocm_sdk") for p in parts):
        return f"rocm-sdk-device-{processor}{also}"
    return f"the device package for {processor} that installs {name}{also}"


def _library_findings(rows: list[Resolution], cache: ArchiveCache) -> list[KpackFinding]:
    out = []
    good = {(r.load_path, r.device): r for r in rows if r.ok}
    default = {(r.load_path, r.device.image_target): r for r in rows if not r.device.mode}
    for row in rows:
        if row.ok or row.status == "disabled":
            continue
        base = default.get((row.load_path, row.device.image_target))
        if row.device.mode and base is not None and _same_failure(base, row):
            continue  # said once, in the default mode's finding
        severity = "error" if not row.device.mode or row.status == "shadowed" else "warning"
        mode = f" in {row.device.mode} mode" if row.device.mode else ""
        message, hint, evidence = _explain(row, mode, cache)
        also = [r.device.mode for r in rows if r.device.mode and r.load_path == row.load_path
                and r.device.image_target == row.device.image_target and _same_failure(row, r)]
        if not row.device.mode and also:
            message += f" (the same in {', '.join(also)} mode)"
        other = next((r for (path, device), r in good.items() if device == row.device and path != row.load_path), None)
        if other is not None and row.status in ("no-archive", "no-arch"):
            message += (f"; this is a hardlinked copy of {other.load_path}, and the loader looks beside the path a "
                        f"library was loaded from: from {other.load_path} it finds {other.archive} "
                        "(TheRock PR #5768)")
            hint = (f"make {row.load_path} a symlink to {other.load_path} (a symlink resolves next to its target), "
                    "or install the archives beside the copy too")
        out.append(KpackFinding(severity, "kpack-coverage", row.load_path, message, hint, evidence))
    return out


def _same_failure(a: Resolution, b: Resolution) -> bool:
    """Same outcome for the same reason (an overlay is per mode, so two shadowings differ by archive)."""
    return a.status == b.status and not a.ok and (a.status != "shadowed" or a.archive == b.archive)


def _explain(row: Resolution, mode: str, cache: ArchiveCache) -> tuple[str, str, str]:
    device, processor = row.device.target, row.device.target.split(":")[0]
    lib = row.load_path
    more = len(row.missing) - _SHOWN
    keys = ", ".join(row.missing[:_SHOWN]) + (f" (+{more} more)" if more > 0 else "")
    if row.status in ("no-archive", "no-arch"):
        wanted = [c for c in row.tried if c.expansion is None or c.expansion == processor] or row.tried
        package = device_package(wanted[0].inside, processor)
        tried = ", ".join(c.inside for c in row.tried[:_SHOWN]) + ("..." if len(row.tried) > _SHOWN else "")
        if row.status == "no-archive":
            broken = [c.inside for c in row.tried if (a := cache.get(c)) is not None and not a.usable]
            why = (f"{', '.join(broken)} exists but cannot be opened" if broken
                   else f"none of the {len(row.tried)} archive paths the loader tries exists")
            message = (f"{lib}: no kpack archive for {device}{mode}: {why}; loading its device code fails "
                       "(hipErrorFileNotFound)")
        else:
            message = (f"{lib}: no kpack archive lists {device} or a compatible target{mode} "
                       "(hipErrorNoBinaryForGpu)")
        partial = _siblings(wanted[0], processor)
        if partial:
            message += (f"; {', '.join(partial)} for {processor} is installed beside it, so the device packages "
                        "are only partly installed (pytorch#194498)")
        return message, f"install {package}", f"tried: {tried}"
    if row.status == "shadowed":
        return (f"{lib} on {device}{mode}: {row.archive} ({row.arch}) lacks {keys}, which {row.fallback} has; "
                f"loaders before {_PR} stop at the first archive matching the device and fail with "
                "hipErrorInvalidImage (TheRock#7081)",
                f"remove the incomplete overlay {os.path.basename(row.archive)} (vLLM's TheRock image deletes "
                f"them) or ship it complete; a ROCm whose loader has {_PR} falls back to "
                f"{os.path.basename(row.fallback)}",
                f"keys asked: {', '.join(row.keys[:_SHOWN])}")
    return (f"{lib} on {device}{mode}: {row.archive} ({row.arch}) lacks {keys}, and no other compatible archive "
            "has them: loading its device code fails with hipErrorInvalidImage",
            f"install the {processor} archive built with this library ({device_package(row.archive, processor)}): "
            "the library and its archives must come from the same build",
            f"keys asked: {', '.join(row.keys[:_SHOWN])}")


def _siblings(candidate: Candidate, processor: str) -> list[str]:
    """Archives for the same arch in the directory where this one is missing."""
    folder = os.path.dirname(candidate.host)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    mine = os.path.basename(candidate.host)
    return sorted(n for n in names if n != mine and fnmatch.fnmatch(n, f"*_{processor}*.kpack"))
