"""Where the kpack loader looks for a split library's archives, inside a root filesystem.

Modelled on the rocm-kpack runtime (``runtime/src/loader.cpp``, ``path_resolution.cpp`` at
upstream commit e3483286, Feb 2026: the loader before rocm-systems PR #9953):

- the library's path is what ``/proc/self/maps`` shows for it: the path it was opened by,
  symlinks resolved (a symlink alias resolves next to its target; a *hardlinked* copy in a
  devel tree resolves next to the copy: TheRock PR #5768);
- ``ROCM_KPACK_DISABLE`` (set, not starting with "0") turns kpack off: every split library
  then fails to load its device code;
- ``ROCM_KPACK_PATH`` (":"-separated archive paths) replaces the search paths, used as
  given; otherwise ``ROCM_KPACK_PATH_PREFIX`` paths come first, then each embedded search
  path: absolute as is, relative joined to the library's directory and canonicalised;
  the first ``@GFXARCH@`` is expanded for each compatible target of the device, most
  specific first (``gfx942:sramecc+:xnack-`` -> ``gfx942:sramecc+`` -> ``gfx942:xnack-`` ->
  ``gfx942``); environment paths are not expanded;
- the device's target ID is the one the runtime reports (every feature the arch has, set:
  the image target's explicit settings, else the arch default from rocstack's registry).
  XNACK is switched at run time (``HSA_XNACK=1``), so an image target that leaves xnack
  open is also judged in the other mode.

Pure functions over paths; the only file-system access is resolving links and stat.
"""

from __future__ import annotations

import glob
import itertools
import os
import stat
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from rocstack.arches import TargetID, all_arches
from rocstack.audit.kpack import KpackRef
from rocstack.audit.sysroot import Sysroot

ENV_PATH = "ROCM_KPACK_PATH"
ENV_PREFIX = "ROCM_KPACK_PATH_PREFIX"
ENV_DISABLE = "ROCM_KPACK_DISABLE"
GFXARCH = "@GFXARCH@"
RUNTIME_SWITCHED = {"xnack": "HSA_XNACK=1"}  # features a process can flip; the others are device settings


@dataclass(frozen=True)
class KpackEnv:
    path: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    disabled: bool = False
    settings: tuple[tuple[str, str], ...] = ()  # the ROCM_KPACK_* variables as found, for evidence

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> "KpackEnv":
        disable = env.get(ENV_DISABLE, "")
        return cls(
            path=split_path_list(env.get(ENV_PATH, "")),
            prefix=split_path_list(env.get(ENV_PREFIX, "")),
            disabled=bool(disable) and not disable.startswith("0"),
            settings=tuple(sorted((k, v) for k, v in env.items() if k.startswith("ROCM_KPACK_"))),
        )


def split_path_list(value: str) -> tuple[str, ...]:
    return tuple(part for part in value.split(":") if part)


def compatible_targets(target_id: str) -> list[str]:
    """The device's target ID, then each subset of its features by decreasing size, then the bare arch."""
    processor, *features = [p for p in target_id.split(":") if p]
    out = []
    for size in range(len(features), -1, -1):
        for combo in itertools.combinations(features, size):
            out.append(":".join((processor, *combo)))
    return out


@dataclass(frozen=True)
class Device:
    target: str  # full target ID as the runtime reports it
    image_target: str  # the image target it stands for
    mode: str = ""  # "" for the default mode, else how the process gets this one ("HSA_XNACK=1")


def devices_for(target: TargetID) -> list[Device]:
    """The devices an image target stands for: its default mode, then runtime-switched alternatives."""
    arch = all_arches().get(target.processor)
    explicit = dict(target.features)
    settings = dict(explicit)
    if arch is not None:
        for name in arch.features:
            if name not in settings and name in arch.default_features:
                settings[name] = arch.default_features[name]

    def spell(values: dict) -> str:
        return target.processor + "".join(f":{n}{values[n]}" for n in sorted(values))

    out = [Device(spell(settings), str(target))]
    for name, how in RUNTIME_SWITCHED.items():
        if name in settings and name not in explicit:
            flipped = {**settings, name: "+" if settings[name] == "-" else "-"}
            out.append(Device(spell(flipped), str(target), how))
    return out


@dataclass(frozen=True)
class Candidate:
    inside: str  # the archive path as the loader forms it (inside the root)
    host: str  # where that is on this machine
    source: str  # ROCM_KPACK_PATH, ROCM_KPACK_PATH_PREFIX, or the embedded search path
    expansion: str | None = None  # what @GFXARCH@ became


def physical(root: Sysroot, inside: str) -> tuple[str, str]:
    """(path inside the root with every symlink resolved, host path): what the loader's canonical() gives."""
    if root.is_host:
        host = os.path.realpath(inside)
        return host, host
    host = root.resolve(inside)
    rel = os.path.relpath(host, root.root)
    return ("/" + rel if rel != "." else "/"), host


def candidates(ref: KpackRef, binary_path: str, device: str, env: KpackEnv, root: Sysroot,
               cwd: str = "/") -> list[Candidate]:
    """Archive paths the loader tries for one library loaded from ``binary_path`` on ``device``, in order."""
    def direct(path: str, source: str) -> Candidate:
        inside = os.path.normpath(path if path.startswith("/") else os.path.join(cwd, path))
        return Candidate(inside, physical(root, inside)[1], source)

    if env.path:
        return [direct(p, ENV_PATH) for p in env.path]
    out = [direct(p, ENV_PREFIX) for p in env.prefix]
    base = os.path.dirname(binary_path)
    for rel in ref.search_paths:
        # absolute: used as written; relative: joined to the library's directory, canonicalised
        inside = rel if rel.startswith("/") else physical(root, os.path.join(base, rel))[0]
        if GFXARCH not in inside:
            out.append(Candidate(inside, physical(root, inside)[1], rel))
            continue
        for target in compatible_targets(device):
            expanded = inside.replace(GFXARCH, target, 1)
            out.append(Candidate(expanded, physical(root, expanded)[1], rel, target))
    return out


def archive_files(ref: KpackRef, binary_path: str, env: KpackEnv, root: Sysroot) -> list[Candidate]:
    """Every archive file the loader could try for a library on some GPU: each ``@GFXARCH@`` as a wildcard.

    Without a target to judge, this is what the installed archives offer (``expansion`` is
    the matched part of the name); environment paths are taken as they are."""
    out = []
    for cand in candidates(ref, binary_path, "*", env, root):
        if cand.expansion is None:
            if os.path.isfile(cand.host):
                out.append(cand)
            continue
        before, after = cand.host.split("*", 1)
        for host in sorted(glob.glob(glob.escape(before) + "*" + glob.escape(after))):
            token = host[len(before):len(host) - len(after)]
            if "/" not in token and os.path.isfile(host):
                out.append(Candidate(cand.inside.replace("*", token, 1), host, cand.source, token))
    return out


@dataclass
class HardlinkIndex:
    """Library files with more than one link, by inode: every path a hardlinked library loads from."""

    root: Sysroot
    by_inode: dict[tuple[int, int], list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, root: Sysroot, under: Iterable[str] = ("/",),
              wanted: dict[tuple[int, int], int] | None = None) -> "HardlinkIndex":
        """``wanted``: only these inodes (-> their link count); the walk stops once every link of each is found."""
        index = cls(root)
        seen: set[str] = set()
        for inside in under:
            top = root.path(inside)
            for folder, _dirs, files in os.walk(top):  # os.walk does not follow directory symlinks
                if folder in seen:
                    continue
                seen.add(folder)
                for name in files:
                    if ".so" not in name:
                        continue
                    host = os.path.join(folder, name)
                    try:
                        st = os.lstat(host)
                    except OSError:
                        continue
                    key = (st.st_dev, st.st_ino)
                    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and (wanted is None or key in wanted):
                        index.by_inode.setdefault(key, []).append(index._inside(host))
                if wanted is not None and all(len(index.by_inode.get(k, ())) >= n for k, n in wanted.items()):
                    return index
        return index

    def _inside(self, host: str) -> str:
        if self.root.is_host:
            return host
        return "/" + os.path.relpath(host, self.root.root)

    def links(self, host_path: str) -> list[str]:
        try:
            st = os.stat(host_path)
        except OSError:
            return []
        return sorted(self.by_inode.get((st.st_dev, st.st_ino), []))


def load_paths(root: Sysroot, inside: str, hardlinks: HardlinkIndex | None = None) -> list[str]:
    """Every path (inside the root, as /proc/self/maps would show it) the library can be loaded from."""
    real, host = physical(root, inside)
    out = [real]
    if hardlinks is not None:
        for link in hardlinks.links(host):
            real_link = physical(root, link)[0]
            if real_link not in out:
                out.append(real_link)
    return out
