"""Compile a :class:`valtest_cases.Case` on the host and build its image on the real engine."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import sysconfig
import tempfile
import urllib.request
from dataclasses import asdict
from pathlib import Path

import valtest_cases as cases
from valtest_images import PREFIX, _has_image, _run, build_context_image, cache_dir, labels_for, manifest, remove_stale

VERSION = "1.0.0"


def python_includes() -> str:
    return f"-I{sysconfig.get_paths()['include']}"


def old_libstdcxx() -> Path:
    """Debian 11's libstdc++ (GLIBCXX up to 3.4.28), fetched once from Debian's archive."""
    folder = cache_dir() / "libstdc++6_10.2.1-6"
    lib = folder / "libstdc++.so.6"
    if not lib.exists():
        folder.mkdir(parents=True, exist_ok=True)
        deb = folder / "pkg.deb"
        with urllib.request.urlopen(cases.OLD_LIBSTDCXX_DEB, timeout=120) as response:
            deb.write_bytes(response.read())
        _run(["dpkg-deb", "-x", str(deb), str(folder / "root")])
        found = sorted((folder / "root").rglob("libstdc++.so.6.0.*"))
        shutil.copy2(found[0], lib)
    return lib


def write_project(case: cases.Case, project: Path) -> None:
    """The component's source tree: package, pyproject (wheel with the .so files), native sources."""
    pkg = project / case.package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import _C  # loads the native extension, as real packages do\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{case.component}"\nversion = "{VERSION}"\n'
        f'[tool.setuptools]\npackages = ["{case.package}"]\n'
        f'[tool.setuptools.package-data]\n{case.package} = ["*.so", "*.so.*"]\n')
    for name, text in case.sources.items():
        (project / name).write_text(text)


def _package(case: cases.Case, work: Path) -> Path:
    """Compile the component on the host, then make it a wheel (installed with pip like any component)."""
    project = work / "project"
    write_project(case, project)
    for command in case.build:
        _run(["bash", "-c", command.format(pkg=case.package, pyinc=python_includes())], cwd=project, timeout=600)
    wheels = work / "wheel"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(project)], timeout=600)
    return wheels


def _dockerfile(runtime: str, case: cases.Case) -> str:
    extra = "\n".join(case.dockerfile)
    return (f"FROM {runtime}\n{extra}\n"
            "COPY wheel/ /tmp/wheel/\n"
            "RUN pip install --no-index --no-deps /tmp/wheel/*.whl && rm -rf /tmp/wheel /root/.cache\n"
            "COPY src/ /opt/rocstack/src/\n"
            "COPY manifest.json /opt/rocstack/manifest.json\n")


def case_tag(case: cases.Case, runtime: str) -> str:
    key = hashlib.sha256(json.dumps([asdict(case), runtime, VERSION], sort_keys=True).encode()).hexdigest()[:12]
    return f"{PREFIX}-{case.name}:{key}"


def build_case(client, case: cases.Case, runtime: str) -> str:
    tag = case_tag(case, runtime)
    if _has_image(client, tag):
        return tag
    missing = [tool for tool in case.needs if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"case {case.name} needs {', '.join(missing)} on the host (apt-get install {' '.join(missing)})")
    man = manifest(case.stack, list(case.arches),
                   [{"name": case.component, "version": VERSION, "ref": "local", "source_sha256": "0" * 64}])
    with tempfile.TemporaryDirectory(prefix=f"valtest-{case.name}-") as tmp:
        work = Path(tmp)
        files: dict[str, Path | bytes] = {
            "wheel": _package(case, work),
            "manifest.json": json.dumps(man, indent=2).encode(),
            f"src/recipes/components/{case.component}.yaml": cases.recipe_yaml(case, VERSION).encode(),
            f"src/recipes/stacks/{case.stack}.yaml": cases.stack_yaml(case.stack, case.component).encode(),
            "src/images/README": b"templates are not needed to validate\n",
        }
        files.update({f"src/{path}": text.encode() for path, text in case.tests.items()})
        if any("condaenv" in line for line in case.dockerfile):
            files["condaenv/libstdc++.so.6"] = old_libstdcxx()
        build_context_image(client, tag, _dockerfile(runtime, case), files, labels=labels_for(man))
    remove_stale(client, tag.split(":")[0], tag)
    return tag


