"""Where the dynamic loader of a root filesystem looks: ld.so.conf, default dirs, site-packages.

Interpreters and site-packages are looked for where images put them: ``/usr``,
``/usr/local``, virtual environments under ``/opt``, and conda, including its named
environments (``/opt/conda/envs/<name>``: vendor images such as rocm/pytorch install
torch there, with the environment's ``bin`` first on ``PATH``).

Paths inside the sysroot are resolved the way the image itself would see them:
an absolute symlink target is re-rooted under the sysroot instead of escaping
to the host.
"""

from __future__ import annotations

import glob
import os
import site
import sys
from functools import cached_property
from pathlib import Path

# glibc's built-in trusted dirs for x86_64 (Debian multiarch first); ld.so.cache adds ld.so.conf's.
_DEFAULT_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib")
_SITE_GLOBS = (
    "usr/local/lib/python3*/site-packages", "usr/local/lib/python3*/dist-packages",
    "usr/lib/python3*/site-packages", "usr/lib/python3/dist-packages", "usr/lib64/python3*/site-packages",
    "opt/*/lib/python3*/site-packages", "opt/venv*/lib/python3*/site-packages",
    "opt/conda/envs/*/lib/python3*/site-packages", "root/.local/lib/python3*/site-packages",
)
# in order; a glob stands for each match, sorted: a conda environment's python is the one on PATH in
# images that have one, ahead of the system python3 apt installed beside it
_PYTHON_CANDIDATES = ("opt/venv/bin/python3", "usr/local/bin/python3", "opt/conda/envs/*/bin/python3",
                      "usr/bin/python3", "opt/conda/bin/python3")
_MAX_LINKS = 40  # like the kernel's ELOOP limit


class Sysroot:
    def __init__(self, root: str | os.PathLike = "/"):
        self.root = os.path.abspath(os.fspath(root))
        self.is_host = self.root == "/"

    def path(self, inside: str) -> str:
        """Host path of an absolute path as seen inside the sysroot (symlinks re-rooted)."""
        if self.is_host:
            return inside
        return self.resolve(inside)

    def resolve(self, inside: str) -> str:
        parts = [p for p in inside.split("/") if p not in ("", ".")]
        done: list[str] = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = os.path.join(self.root, *done, part)
            if os.path.islink(candidate):
                links += 1
                if links > _MAX_LINKS:
                    return candidate  # the open() that follows reports ELOOP
                target = os.readlink(candidate)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            done.append(part)
        return os.path.join(self.root, *done)

    @cached_property
    def ld_conf_dirs(self) -> list[str]:
        out: list[str] = []
        self._read_conf("/etc/ld.so.conf", out, depth=0)
        return list(dict.fromkeys(out))

    def _read_conf(self, inside: str, out: list[str], depth: int) -> None:
        if depth > 8:  # include cycles
            return
        try:
            text = Path(self.path(inside)).read_text(errors="replace")
        except OSError:
            return
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("include"):
                pattern = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
                if not pattern.startswith("/"):
                    pattern = os.path.join(os.path.dirname(inside), pattern)
                for match in sorted(glob.glob(os.path.join(self.root, pattern.lstrip("/")))):
                    self._read_conf("/" + os.path.relpath(match, self.root), out, depth + 1)
            elif line.startswith("hwcap"):
                continue
            else:
                out.append(line.split("=", 1)[0].strip())

    @cached_property
    def default_dirs(self) -> list[str]:
        return ["/" + d for d in _DEFAULT_DIRS]

    def search_dirs(self) -> list[str]:
        """ld.so.conf dirs then the built-in defaults, as paths inside the sysroot."""
        return list(dict.fromkeys([*self.ld_conf_dirs, *self.default_dirs]))

    @cached_property
    def site_packages(self) -> list[str]:
        """Host paths of the sysroot's site-packages dirs (the running Python's too when the sysroot is /)."""
        found: list[str] = []
        if self.is_host:
            found += [*site.getsitepackages(), site.getusersitepackages()]
        for pattern in _SITE_GLOBS:
            found += sorted(glob.glob(os.path.join(self.root, pattern)))
        return [p for p in dict.fromkeys(found) if os.path.isdir(p)]

    @cached_property
    def python(self) -> str | None:
        """Host path of the interpreter that will load extensions in this sysroot."""
        if self.is_host:
            return os.path.realpath(sys.executable)
        for pattern in _PYTHON_CANDIDATES:
            names = [pattern] if "*" not in pattern else \
                ["/" + os.path.relpath(p, self.root) for p in sorted(glob.glob(os.path.join(self.root, pattern)))]
            for inside in names:
                path = self.path("/" + inside.lstrip("/"))
                if os.path.isfile(path):
                    return path
        return None
