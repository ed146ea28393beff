"""Build the deliberately broken (and one healthy) test images that validation must judge.

Layers, each cached by tag so a second run reuses them:
- ``rocstack-validate-test-base:bookworm-binutils``: debootstrap minbase + python3/venv + binutils
  (c++filt demangles for the audit, as in the local stack), imported.
- ``rocstack-valtest-runtime:<hash>``: a venv with the CPU torch wheel, pytest, and this
  checkout's rocstack + rocstack-validation (what every rocstack image carries).
- ``rocstack-valtest-<case>:<hash>``: one component from :mod:`valtest_cases`, compiled
  on the host with the real toolchains, installed as a wheel, with its recipes and a
  build manifest, exactly where a rocstack build puts them.
Only images with these names are created; tests remove only what they created.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_TAG = "rocstack-validate-test-base:bookworm-binutils"
RUNTIME_REPO = "rocstack-valtest-runtime"
PREFIX = "rocstack-valtest"
MIRROR = os.environ.get("ROCSTACK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
TORCH = "torch==2.13.0"


def cache_dir() -> Path:
    root = Path(os.environ.get("ROCSTACK_TEST_CACHE") or Path.home() / ".cache" / "rocstack-tests")
    path = root / "validate"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(argv, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))[:200]} failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
    return proc


def _has_image(client, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_base(client) -> str:
    if _has_image(client, BASE_TAG):
        return BASE_TAG
    with tempfile.TemporaryDirectory(prefix="valtest-rootfs-") as tmp:
        root = Path(tmp) / "root"
        _run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates,binutils",
              "bookworm", str(root), MIRROR], timeout=1200)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        _run(["docker", "import", "-", BASE_TAG], stdin=tar.stdout, timeout=600)
        tar.wait()
    return BASE_TAG


def _wheel_deps() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], "pytest>=7", TORCH]


def _dep_wheels() -> Path:
    """The dependency wheels (torch, pytest, rocstack's deps) downloaded once, keyed by the list."""
    deps = _wheel_deps()
    key = hashlib.sha256("\n".join(deps).encode()).hexdigest()[:12]
    folder = cache_dir() / f"deps-{key}"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-d", str(folder), *deps], timeout=1800)
        (folder / ".complete").write_text("\n".join(deps))
    return folder


def _source_hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                                                      and not any(part.endswith(".egg-info") for part in p.parts))
        for path in files:
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _build_wheel(source: Path, out: Path, parts: list[str]) -> None:
    """pip wheel from a copy, so the shared checkout gets no build/ or egg-info litter."""
    with tempfile.TemporaryDirectory(prefix="valtest-src-") as tmp:
        for part in parts:
            src = source / part
            dst = Path(tmp) / part
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy2(src, dst)
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), tmp], timeout=600)


def build_context_image(client, tag: str, dockerfile: str, files: dict[str, Path | bytes], labels: dict | None = None) -> str:
    """Build ``dockerfile`` with ``files`` (context path -> host path or bytes) on the real engine."""
    with tempfile.TemporaryDirectory(prefix="valtest-ctx-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(dockerfile)
        for name, content in files.items():
            target = ctx / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            elif content.is_dir():
                shutil.copytree(content, target)
            else:
                shutil.copy2(content, target)
        try:
            client.images.build(path=str(ctx), tag=tag, rm=True, forcerm=True, labels=labels or {})
        except Exception as exc:  # the engine's build log is the useful part
            log = "".join(chunk.get("stream", "") for chunk in getattr(exc, "build_log", []) or [])
            raise RuntimeError(f"building {tag} failed: {exc}\n{log[-3000:]}") from None
    return tag


RUNTIME_DOCKERFILE = f"""FROM {BASE_TAG}
COPY deps/ /wheels/deps/
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-index --find-links /wheels/deps {TORCH} pytest \\
    && rm -rf /root/.cache
COPY rocstack/ /wheels/rocstack/
RUN /opt/venv/bin/pip install --no-index --find-links /wheels/deps --find-links /wheels/rocstack \\
        rocstack rocstack-validation && rm -rf /wheels /root/.cache
ENV PATH=/opt/venv/bin:$PATH
"""


def remove_stale(client, repo: str, keep: str) -> None:
    """Drop older builds of this very test image (same repo, other hash): only ours, never others'."""
    import docker.errors

    for image in client.images.list(name=repo):
        if keep not in image.tags and all(t.startswith(f"{repo}:") for t in image.tags):
            try:
                client.images.remove(image.id, force=True)
            except docker.errors.APIError:
                pass


def ensure_runtime(client) -> str:
    ensure_base(client)
    key = _source_hash([REPO / "pyproject.toml", REPO / "rocstack", REPO / "validation"])
    tag = f"{RUNTIME_REPO}:{key}"
    if _has_image(client, tag):
        return tag
    deps = _dep_wheels()
    with tempfile.TemporaryDirectory(prefix="valtest-wheels-") as tmp:
        out = Path(tmp)
        _build_wheel(REPO, out, ["pyproject.toml", "rocstack"])
        _build_wheel(REPO / "validation", out, ["pyproject.toml", "rocstack_validation"])
        build_context_image(client, tag, RUNTIME_DOCKERFILE, {"deps": deps, "rocstack": out})
    remove_stale(client, RUNTIME_REPO, tag)
    return tag


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def manifest(stack: str, arches: list[str], components: list[dict]) -> dict:
    return {"schema": "rocstack.build-manifest/v1", "stack": stack, "arches": arches, "components": components,
            "base_image_id": None, "tools": {}, "stages": {}, "created": "2026-11-21T00:00:00+00:00"}


def labels_for(man: dict) -> dict[str, str]:
    return {
        "io.rocstack.stack": man["stack"],
        "io.rocstack.arches": ",".join(man["arches"]),
        "io.rocstack.components": json.dumps({c["name"]: c["ref"] for c in man["components"]}),
        "io.rocstack.manifest": json.dumps(man, separators=(",", ":")),
    }
