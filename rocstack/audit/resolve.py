"""The dynamic loader's view, without running it: find DT_NEEDED closures and symbol scopes.

Search order for a DT_NEEDED name (glibc ``elf/dl-load.c`` ``_dl_map_object``,
ld.so(8)): an already loaded object whose soname matches; a name with a slash
is a path; otherwise DT_RPATH of the needing object and of each object that
loaded it (only when the needing object has no DT_RUNPATH), then
LD_LIBRARY_PATH (unset unless the caller passes the image's value: PyTorch's binary
checks unset it too), then
the object's own DT_RUNPATH, then ld.so.cache (ld.so.conf) and the default dirs.
``$ORIGIN`` is the directory of the object carrying the entry; a candidate of
the wrong ELF class or machine is skipped, as ld.so does.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from dataclasses import dataclass, field

from rocstack.audit.elf import DT_RPATH, DT_RUNPATH, ElfError, ElfFile, MappedFile
from rocstack.audit.sysroot import Sysroot

_TOKEN = re.compile(r"\$(\{ORIGIN\}|ORIGIN|\{LIB\}|LIB|\{PLATFORM\}|PLATFORM)")
_LIB_DIR = "lib/x86_64-linux-gnu"  # what $LIB expands to on Debian/Ubuntu x86_64
_PLATFORM = "x86_64"


class LoadedLib:
    """An opened shared object: its dynamic info and (lazily) its exported symbols."""

    def __init__(self, path: str, label: str | None = None):
        self.path = path
        self._mapped = MappedFile(path)
        try:
            self.elf = ElfFile(self._mapped.buf, label=label or path)
            self.elf.dynamic  # noqa: B018 - decode now so damage shows up at open time
        except BaseException:
            self._mapped.close()
            raise
        self._exports: dict[str, list[tuple[str | None, bool]]] | None = None

    @property
    def soname(self) -> str | None:
        return self.elf.soname

    @property
    def rpath(self) -> list[str]:
        return [e for v in self.elf.dyn_strings(DT_RPATH) for e in v.split(":")]

    @property
    def runpath(self) -> list[str]:
        return [e for v in self.elf.dyn_strings(DT_RUNPATH) for e in v.split(":")]

    @property
    def exports(self) -> dict[str, list[tuple[str | None, bool]]]:
        """name -> [(version, hidden)] of every exported dynamic symbol."""
        if self._exports is None:
            self._exports = self.elf.export_table() if self.elf.has_dynsym() else {}
        return self._exports

    def defines(self, name: str, version: str | None, ref_hidden: bool = False) -> bool:
        """glibc ``check_match``: a versioned reference wants that version, or an unversioned default."""
        for def_version, def_hidden in self.exports.get(name, ()):
            if version is None:
                if not def_hidden:
                    return True
            elif def_version == version or (def_version is None and not def_hidden and not ref_hidden):
                return True
        return False

    def close(self) -> None:
        self._mapped.close()


@dataclass
class NeededEdge:
    needed_by: str
    name: str
    path: str | None  # None: not found
    searched: list[str] = field(default_factory=list)
    preloaded: bool = False


@dataclass
class Closure:
    root: LoadedLib
    libs: list[LoadedLib]  # breadth-first, root first: the local lookup scope
    edges: list[NeededEdge]
    by_name: dict[str, LoadedLib]  # DT_NEEDED name / soname -> object


class Loader:
    """Opens libraries once per audit and resolves names like ld.so inside one sysroot."""

    def __init__(self, sysroot: Sysroot, preloaded: dict[str, str] | None = None,
                 ld_library_path: list[str] | None = None):
        self.sysroot = sysroot
        self.preloaded = dict(preloaded or {})  # soname -> host path
        # the environment's LD_LIBRARY_PATH (an image's ENV), paths as seen inside the sysroot
        self.ld_library_path = [p for p in (ld_library_path or []) if p]
        self._cache: dict[str, LoadedLib | Exception] = {}

    def open(self, path: str, label: str | None = None) -> LoadedLib:
        key = os.path.realpath(path)
        cached = self._cache.get(key)
        if cached is None:
            try:
                cached = LoadedLib(path, label)
            except (OSError, ElfError) as exc:
                cached = exc
            self._cache[key] = cached
        if isinstance(cached, Exception):
            raise cached
        return cached

    def close(self) -> None:
        for lib in self._cache.values():
            if isinstance(lib, LoadedLib):
                lib.close()
        self._cache.clear()

    def expand(self, entry: str, origin_of: LoadedLib) -> str | None:
        """Host path of a search-path entry; None for an empty entry (which ld.so treats as cwd)."""
        if entry == "":
            return None
        origin_used = "$" in entry and "ORIGIN" in entry
        text = _TOKEN.sub(lambda m: {"ORIGIN": os.path.dirname(os.path.abspath(origin_of.path)),
                                     "LIB": _LIB_DIR, "PLATFORM": _PLATFORM}[m.group(1).strip("{}")], entry)
        if origin_used or not text.startswith("/"):
            return os.path.normpath(text)
        return self.sysroot.path(text)

    def _compatible(self, candidate: LoadedLib, needing: LoadedLib) -> bool:
        return candidate.elf.machine == needing.elf.machine

    def find(self, name: str, needing: LoadedLib, chain: list[LoadedLib]) -> tuple[str | None, list[str]]:
        """Host path that ld.so would load for ``name`` needed by ``needing``, and the dirs tried."""
        if "/" in name:
            path = name if os.path.isabs(name) else os.path.join(os.getcwd(), name)
            return (path if os.path.isfile(path) else None), [path]
        dirs: list[str] = []
        if not needing.runpath:
            for obj in [needing, *reversed(chain)]:
                dirs += [d for d in (self.expand(e, obj) for e in obj.rpath) if d]
        dirs += [self.sysroot.path(d) if d.startswith("/") else os.path.abspath(d) for d in self.ld_library_path]
        dirs += [d for d in (self.expand(e, needing) for e in needing.runpath) if d]
        dirs += [self.sysroot.path(d) for d in self.sysroot.search_dirs()]
        tried = []
        for directory in dict.fromkeys(dirs):
            candidate = os.path.join(directory, name)
            tried.append(directory)
            if not os.path.isfile(candidate):
                continue
            try:
                lib = self.open(candidate)
            except (OSError, ElfError):
                continue  # ld.so skips files it cannot map and goes on searching
            if self._compatible(lib, needing):
                return candidate, tried
        return None, tried

    def closure(self, root: LoadedLib, loaded: list[LoadedLib] | None = None) -> Closure:
        """Breadth-first DT_NEEDED closure of ``root``.

        ``loaded``: objects already in the process (the interpreter and its libraries):
        a DT_NEEDED name matching one of them reuses it, as ld.so does, so an old
        libstdc++ the interpreter brought (conda) is the one whose versions count.
        """
        libs = [root]
        by_name: dict[str, LoadedLib] = {}
        for obj in loaded or ():
            by_name.setdefault(os.path.basename(obj.path), obj)
            if obj.soname:
                by_name.setdefault(obj.soname, obj)
        if root.soname:
            by_name[root.soname] = root
        edges: list[NeededEdge] = []
        queue: list[tuple[LoadedLib, list[LoadedLib]]] = [(root, [])]
        seen = {id(root)}
        while queue:
            lib, chain = queue.pop(0)
            for name in lib.elf.needed:
                if name in by_name:
                    continue
                preloaded = name in self.preloaded
                if preloaded:
                    path, tried = self.preloaded[name], []
                else:
                    path, tried = self.find(name, lib, chain)
                edges.append(NeededEdge(lib.path, name, path, tried, preloaded))
                if path is None:
                    continue
                try:
                    dep = self.open(path)
                except (OSError, ElfError):
                    edges[-1].path = None
                    continue
                by_name[name] = dep
                if dep.soname:
                    by_name.setdefault(dep.soname, dep)
                if id(dep) not in seen:
                    seen.add(id(dep))
                    libs.append(dep)
                    queue.append((dep, [*chain, lib]))
        return Closure(root, libs, edges, by_name)


def find_preloads(patterns: list[str], sysroot: Sysroot, extra_roots: list[str]) -> tuple[dict[str, str], list[str]]:
    """soname -> host path for every library a policy says is loaded already; and the patterns that found none.

    A pattern without a slash or glob is a Python package (``torch``): every shared
    library under that package directory in a site-packages counts. Otherwise it is
    a glob relative to a site-packages dir (``torch/lib/libc10.so``).
    """
    roots = [*extra_roots, *sysroot.site_packages]
    found: dict[str, str] = {}
    missing: list[str] = []
    for pattern in patterns:
        hits: list[str] = []
        for root in roots:
            if "/" in pattern or any(c in pattern for c in "*?["):
                hits += glob.glob(os.path.join(root, pattern), recursive=True)
            else:
                package = os.path.join(root, pattern)
                if os.path.isdir(package):
                    hits += glob.glob(os.path.join(package, "**", "*.so*"), recursive=True)
            if hits:
                break  # the first site-packages that has the package wins, like sys.path
        libs = [h for h in hits if os.path.isfile(h) and fnmatch.fnmatch(os.path.basename(h), "*.so*")]
        if not libs:
            missing.append(pattern)
        for path in libs:
            found.setdefault(os.path.basename(path), path)
            soname = _soname(path)
            if soname:
                found.setdefault(soname, path)
    return found, missing


def _soname(path: str) -> str | None:
    try:
        with MappedFile(path) as mapped:
            return ElfFile(mapped.buf, label=path).soname
    except (OSError, ElfError, ValueError):
        return None
