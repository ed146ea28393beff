"""What a component installed: its Python distribution, top-level modules and native files.

A recipe names the component; pip names the distribution. A recipe whose wheels install
a differently named distribution says so (``artifacts.distribution``); otherwise we try
the recipe's PyPI package name, then the component name in its common spellings.
"""

from __future__ import annotations

import glob
import os
import sysconfig
from importlib import metadata
from pathlib import Path

NATIVE_SUFFIXES = (".so", ".co", ".hsaco")


def declared_distribution(component) -> str | None:
    """The pip distribution the recipe says its wheels install (``artifacts.distribution``), if it names one."""
    artifacts = getattr(component.recipe, "artifacts", None)
    return getattr(artifacts, "distribution", None)


def distribution(component) -> metadata.Distribution | None:
    """The installed distribution of a component.

    A recipe that declares ``artifacts.distribution`` is held to it: no other spelling is
    tried, so a missing flash_attn is not mistaken for some other package's metadata.
    """
    declared = declared_distribution(component)
    if declared:
        names = [declared]
    else:
        names = []
        source = getattr(component.recipe, "source", None)
        if getattr(source, "kind", None) == "pypi":
            names.append(source.package)
        names += [component.name, component.name.replace("-", "_"), component.name.replace("_", "-")]
    for name in dict.fromkeys(names):
        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def top_level_modules(dist: metadata.Distribution) -> list[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("_")]
    modules = []
    for entry in dist.files or []:
        parts = entry.parts
        if len(parts) == 2 and parts[1] == "__init__.py" and not parts[0].endswith((".dist-info", ".data")):
            modules.append(parts[0])
    return sorted(set(modules))


def is_native(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(NATIVE_SUFFIXES) or ".so." in name


def _walk_native(root: Path) -> list[Path]:
    if root.is_file():
        return [root] if is_native(root.name) else []
    found = []
    for dirpath, _dirs, files in os.walk(root):  # os.walk does not follow directory symlinks: no loops
        found += [Path(dirpath) / f for f in files if is_native(f)]
    return found


def native_files(component, sysroot: str = "/") -> list[Path]:
    """Every shared library and code object the component installed, deduplicated, sorted."""
    found: list[Path] = []
    dist = distribution(component)
    if dist is not None:
        for entry in dist.files or []:
            if is_native(str(entry)):
                path = Path(dist.locate_file(entry))
                if path.is_file():
                    found.append(path)
    recipe = component.recipe
    if recipe is not None:
        site = Path(sysconfig.get_paths()["purelib"])
        for pattern in recipe.artifacts.libraries:
            found += [Path(p) for p in glob.glob(str(site / pattern), recursive=True) if Path(p).is_file()]
        for target in recipe.artifacts.files.values():
            path = Path(sysroot) / target.lstrip("/")
            if path.exists():
                found += _walk_native(path)
    return sorted({p.resolve() for p in found})
