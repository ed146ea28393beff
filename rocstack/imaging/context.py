"""The build context: a staged directory holding exactly what the Dockerfile may use.

Layout (the contract with images/Dockerfile.j2): ``rocstack/`` (this project:
package, recipes, images, validation suite, kernels), ``rocstack-package/`` (the
installable package alone), ``sources/<component>/``
(local component sources) and ``wheelhouse/`` (local wheels, bind-mounted into
RUN steps, so a wheel reaches the image only when pip installs it). The directory
lives under $ROCSTACK_HOME and is synced, not recreated, so BuildKit's context
transfer only sends what changed. Its digest is part of the image tag.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from rocstack.errors import RocstackError
from rocstack.fsutil import write_atomic
from rocstack.recipes.catalog import Selection
from rocstack.contracts import rocstack_home

# What of the project goes into rocstack/ (the image's /opt/rocstack/src) ...
PROJECT_ENTRIES = ("pyproject.toml", "README.md", "LICENSE", "tasks.py", "rocstack", "images", "recipes", "validation", "kernels")
# ... and into rocstack-package/ (just enough to pip-install the package: builder stages
# depend on this alone, so editing recipes, kernels or the suite does not rebuild them).
PACKAGE_ENTRIES = ("pyproject.toml", "README.md", "LICENSE", "rocstack")
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis", ".git", ".mypy_cache", ".ruff_cache"}
# setuptools' output folders, skipped only beside a pyproject.toml (a package may be named build).
_BUILD_OUTPUTS = {"build", "dist"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def _wanted(path: Path) -> bool:
    if any(part in _SKIP_DIRS or part.endswith(".egg-info") for part in path.parts):
        return False
    return not path.name.endswith(_SKIP_SUFFIXES)


def _tree(root: Path, prefix: str) -> dict[str, Path]:
    """relative path in the context -> source file, for every wanted file under ``root``."""
    if root.is_file():
        return {prefix: root}
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        skip = _SKIP_DIRS | (_BUILD_OUTPUTS if "pyproject.toml" in filenames else set())
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            source = Path(dirpath) / name
            rel = source.relative_to(root)
            if _wanted(rel) and source.is_file():
                files[f"{prefix}/{rel.as_posix()}"] = source
    return files


@dataclass(frozen=True)
class StagedContext:
    directory: Path
    files: dict[str, str]  # context path -> sha256 of its content (and exec bit)
    wheels: tuple[str, ...]

    def digest(self, prefix: str = "") -> str:
        """sha256 over the files under ``prefix`` (all files when empty)."""
        h = hashlib.sha256()
        for rel in sorted(self.files):
            if rel == prefix or rel.startswith(prefix.rstrip("/") + "/") or not prefix:
                h.update(f"{rel}\0{self.files[rel]}\n".encode())
        return h.hexdigest()

    @property
    def dockerfile(self) -> Path:
        return self.directory / "Dockerfile"


def _hash_files(directory: Path, names: list[str]) -> dict[str, str]:
    """sha256 (+x for executables) of each staged file, reusing the previous run's hash of a
    file whose path and stat are unchanged: the wheelhouse's torch wheel alone is ~200 MB,
    and a no-op rebuild must not re-read it."""
    cache_file = directory.parent / f".{directory.name}.hashes.json"
    try:
        known = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        known = {}
    used: dict[str, str] = {}
    hashes = {}
    for rel in names:
        path = directory / rel
        st = path.stat()
        key = f"{rel}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_mode}"
        if key not in known:
            h = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    h.update(block)
            known[key] = h.hexdigest() + ("+x" if st.st_mode & 0o111 else "")
        hashes[rel] = used[key] = known[key]
    write_atomic(cache_file, json.dumps(used, sort_keys=True))
    return hashes


def wheelhouse_files(directories: list[Path]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            raise RocstackError(f"wheelhouse {directory} is not a directory", "pass --wheelhouse DIR with .whl files")
        for wheel in sorted(directory.glob("*.whl")):
            files.setdefault(f"wheelhouse/{wheel.name}", wheel)
    return files


# Images are linux/amd64: a wheel runs there when its platform tag is a linux x86_64 one.
_IMAGE_PLATFORM = re.compile(r"^(manylinux\w*_x86_64|linux_x86_64)$")


def check_torch_wheel(selection: Selection, wheels: dict[str, Path], directories: list[Path]) -> None:
    """A stack that takes torch from the wheelhouse must find it there, for the image's Python and
    platform, before any build starts (pip would fail inside the engine minutes later)."""
    torch = selection.stack.torch
    if not torch.wheelhouse:
        return
    py = "cp" + selection.stack.python.replace(".", "")
    pattern = re.compile(rf"^torch-{re.escape(torch.version)}(\+[\w.]+)?-{py}-{py}-(?P<platform>[\w.]+)\.whl$")
    found = [m for m in (pattern.match(Path(rel).name) for rel in wheels) if m]
    if found and not any(_IMAGE_PLATFORM.match(tag) for m in found for tag in m["platform"].split(".")):
        platforms = ", ".join(sorted({m["platform"] for m in found}))
        raise RocstackError(
            f"the wheelhouse's torch-{torch.version} wheels are for {platforms}, not linux x86_64 "
            f"(the image's platform)",
            f"add the manylinux x86_64 wheel: pip download --no-deps --platform manylinux_2_28_x86_64 "
            f"--python-version {selection.stack.python} --only-binary=:all: -d DIR torch=={torch.version}",
        )
    if not found:
        where = ", ".join(map(str, directories)) or "no wheelhouse"
        raise RocstackError(
            f"stack {selection.stack.name} takes torch {torch.version} from the wheelhouse, "
            f"but {where} has no torch-{torch.version} wheel for {py}",
            f"pass --wheelhouse DIR holding it (pip download --no-deps -d DIR torch=={torch.version})",
        )


def _place(source: Path, target: Path, link: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    if link:
        try:
            os.link(source, tmp)
        except OSError:  # another filesystem: copy instead
            shutil.copy2(source, tmp)
    else:
        shutil.copy2(source, tmp)
    os.replace(tmp, target)


def _same(source: Path, target: Path) -> bool:
    try:
        a, b = source.stat(), target.stat()
    except FileNotFoundError:
        return False
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns and (a.st_mode & 0o777) == (b.st_mode & 0o777)


def sync_context(directory: Path, wanted: dict[str, Path]) -> None:
    """Make ``directory`` hold exactly ``wanted`` (plus the Dockerfile), touching only what changed."""
    directory.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(directory, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(directory).as_posix()
            if rel not in wanted and rel != "Dockerfile":
                path.unlink()
        for name in dirnames:
            sub = Path(dirpath) / name
            if not any(sub.iterdir()):
                sub.rmdir()
    for rel, source in wanted.items():
        target = directory / rel
        if not _same(source, target):
            _place(source, target, link=rel.startswith("wheelhouse/"))
    (directory / "wheelhouse").mkdir(exist_ok=True)  # the Dockerfile bind-mounts it even when empty


def stage_context(selection: Selection, wheels: dict[str, Path], dockerfile_text: str) -> StagedContext:
    """Stage the context for ``selection`` under $ROCSTACK_HOME/contexts/<stack>/.

    ``wheels``: the wheelhouse files (``wheelhouse_files``), checked for torch beforehand."""
    root = selection.catalog.root
    wanted: dict[str, Path] = {}
    for entry in PROJECT_ENTRIES:
        if (root / entry).exists():
            wanted.update(_tree(root / entry, f"rocstack/{entry}"))
    for entry in PACKAGE_ENTRIES:
        if (root / entry).exists():
            wanted.update(_tree(root / entry, f"rocstack-package/{entry}"))
    for recipe in selection.components:
        if recipe.source.kind == "local":
            source_dir = (root / recipe.source.path).resolve()
            if not source_dir.is_dir():
                raise RocstackError(
                    f"component {recipe.name}: source directory {source_dir} does not exist",
                    f"fix source.path in recipes/components/{recipe.name}.yaml",
                )
            wanted.update(_tree(source_dir, f"sources/{recipe.name}"))
    wanted.update(wheels)
    directory = rocstack_home() / "contexts" / selection.stack.name
    sync_context(directory, wanted)
    dockerfile = directory / "Dockerfile"
    if not dockerfile.exists() or dockerfile.read_text() != dockerfile_text:
        write_atomic(dockerfile, dockerfile_text)
    hashes = _hash_files(directory, sorted(wanted))
    return StagedContext(directory, hashes, tuple(sorted(Path(r).name for r in wheels)))


def snapshot_project(source: Path, target: Path) -> Path:
    """Copy what a build reads from a project to ``target`` (for builds of a frozen tree)."""
    for entry in PROJECT_ENTRIES:
        for rel, path in _tree(source / entry, entry).items() if (source / entry).exists() else ():
            destination = target / rel
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
    return target


@contextmanager
def context_lock(stack_name: str) -> Iterator[None]:
    """One build per stack context at a time: two would rewrite the same staged files."""
    lock_dir = rocstack_home() / "contexts"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f".{stack_name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
