"""Helpers shared by the audit tests: tool checks, subprocess runs, g++ builds, cached PyPI downloads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML


def need_tool(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            pytest.skip(f"{name} is not installed (CI installs it)")


def run(cmd: list[str], cwd: Path | None = None, env: dict | None = None, timeout: int = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


class Builder:
    """Compiles small C/C++ shared libraries into one directory."""

    def __init__(self, root: Path):
        self.root = root

    def lib(self, name: str, source: str, *flags: str, lang: str = "c++", subdir: str = "") -> Path:
        compiler = "g++" if lang == "c++" else "gcc"
        need_tool(compiler)
        folder = self.root / subdir if subdir else self.root
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / (name + (".cpp" if lang == "c++" else ".c"))
        src.write_text(source)
        out = folder / name
        run([compiler, "-shared", "-fPIC", "-O1", "-o", str(out), str(src), *flags], cwd=folder)
        return out


def pip_download(cache: Path, requirement: str, folder: str) -> Path:
    """A wheel from PyPI, downloaded once into the test cache (``pip download --no-deps``)."""
    target = cache / folder
    wheels = sorted(target.glob("*.whl"))
    if not wheels:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
             f"{sys.version_info.major}.{sys.version_info.minor}", "-d", str(target), requirement],
            capture_output=True, text=True, timeout=900,
        )
        wheels = sorted(target.glob("*.whl"))
        if done.returncode != 0 or not wheels:
            pytest.skip(f"cannot download {requirement} from PyPI: {done.stderr.strip().splitlines()[-1:]}")
    return wheels[-1]


def llvm_notes(code_object) -> dict:
    """The metadata as llvm-readelf-19 --notes prints it (YAML between --- and ...)."""
    need_tool("llvm-readelf-19")
    out = run(["llvm-readelf-19", "--notes", str(code_object)])
    text = out[out.index("---"):out.index("\n...") + 4]
    return YAML(typ="safe").load(text)
