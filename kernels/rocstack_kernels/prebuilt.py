"""Use an AOT build at run time: point Triton's cache at it so no kernel compiles.

A build directory holds ``manifest.json`` and ``triton-cache/`` (one folder per
compiled kernel, named by Triton's cache key). Triton's group files
(``__grp__*.json``) record absolute paths, so a build that moved (copied into an
image, carried to another machine) is first relocated: the group files are
rewritten to point at where the folder is now. Then ``TRITON_CACHE_DIR`` is set to
it, and a launch whose specialization was built finds its entry and loads it. A build
the process cannot write (a read-only install, an image's /opt for a non-root user) is
first copied into the user's Triton cache, since Triton writes there on any miss.

``ROCSTACK_KERNELS_PREBUILT=DIR`` in the environment activates DIR when
``rocstack_kernels`` is imported.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from rocstack.fsutil import write_atomic

MANIFEST = "manifest.json"
CACHE_SUBDIR = "triton-cache"


def relocate(cache_dir: Path) -> int:
    """Rewrite group files whose paths point elsewhere; returns how many changed."""
    changed = 0
    for group in cache_dir.glob("*/__grp__*.json"):
        data = json.loads(group.read_text())
        paths = data.get("child_paths", {})
        wanted = {name: str(group.parent / name) for name in paths}
        if paths != wanted:
            write_atomic(group, json.dumps({"child_paths": wanted}))
            changed += 1
    return changed


def read_manifest(build_dir: str | os.PathLike) -> dict:
    path = Path(build_dir) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{build_dir} is not a kernel build (no {MANIFEST}); "
                         f"make one with `rocstack kernels build --arch ... --out {build_dir}`")
    return json.loads(path.read_text())


def activate(build_dir: str | os.PathLike) -> Path:
    """Make Triton load kernels from ``build_dir``; returns the cache folder used."""
    import triton

    manifest = read_manifest(build_dir)
    built_with = manifest.get("triton_version")
    if built_with != triton.__version__:
        raise ValueError(f"{build_dir} was built by triton {built_with} but triton {triton.__version__} "
                         f"is running; its cache keys would not match - rebuild with this triton")
    from rocstack_kernels.cache_key import local_basis

    wanted = manifest.get("key_basis", {}).get("triton_key_sha256")
    here = local_basis()
    if wanted and wanted != here["triton_key_sha256"]:
        built_for = manifest["key_basis"].get("python_ext_suffix")
        raise ValueError(f"{build_dir} is keyed for another build of triton {built_with} (built for Python "
                         f"extension suffix {built_for}, this is {here['python_ext_suffix']}); every kernel "
                         f"would recompile - rebuild with --runtime-python pointing at this Python")
    cache_dir = (Path(build_dir) / CACHE_SUBDIR).resolve()
    if not _writable(cache_dir):
        # A read-only install (an image's /opt run as a non-root user): Triton must be able
        # to write its cache on a miss, and the group files may need rewriting, so the
        # entries are copied into the user's own Triton cache and used from there.
        target = Path(os.environ.get("TRITON_CACHE_DIR") or triton.knobs.cache.dir)
        install_into(cache_dir, target)
        cache_dir = target.resolve()
    relocate(cache_dir)
    os.environ["TRITON_CACHE_DIR"] = str(cache_dir)
    triton.knobs.cache.dir = str(cache_dir)
    return cache_dir


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def install_into(cache_dir: Path, target: Path) -> int:
    """Copy the build's cache entries missing from ``target``; returns how many were copied."""
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for entry in cache_dir.iterdir():
        if entry.is_dir() and not (target / entry.name).exists():
            staging = target / f".{entry.name}.tmp{os.getpid()}"
            shutil.copytree(entry, staging)
            os.replace(staging, target / entry.name)
            copied += 1
    return copied


def activate_from_env() -> Path | None:
    """Activate ``ROCSTACK_KERNELS_PREBUILT`` at import; a build that cannot be used warns
    (kernels then compile on first use) instead of making the package unimportable."""
    build_dir = os.environ.get("ROCSTACK_KERNELS_PREBUILT")
    if not build_dir:
        return None
    try:
        return activate(build_dir)
    except ValueError as exc:
        import warnings

        warnings.warn(f"ROCSTACK_KERNELS_PREBUILT not used: {exc}", RuntimeWarning, stacklevel=2)
        return None
