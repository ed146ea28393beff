"""What an image holds, read statically from its extracted filesystem and its config.

Pure functions over a root directory (the image's ``/``) and the image config: the
environment, the interpreter on ``PATH``, Python distributions (``*.dist-info``),
dpkg's installed packages with their files, and the versions TunableOp and the
reports care about (torch, ROCm, rocBLAS, hipBLASLt). Nothing here runs code from
the image; a file that cannot be read is simply absent from the inventory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from rocstack.audit.declared import dpkg_files, dpkg_state, dpkg_status
from rocstack.audit.sysroot import Sysroot

ROCM_MAINTAINER = re.compile(r"rocm|radeon|amd\.com", re.I)
ROCM_HOMEPAGE = re.compile(r"github\.com/(ROCm|RadeonOpenCompute|ROCm-Developer-Tools|ROCmSoftwarePlatform)/", re.I)
_VERSION = re.compile(r"\d+(?:\.\d+)+")


def image_env(config: dict) -> dict[str, str]:
    """``Config.Env`` (``KEY=value`` strings) as a dict; the last assignment wins, as in the runtime."""
    out: dict[str, str] = {}
    for item in (config or {}).get("Env") or []:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


@dataclass(frozen=True)
class Interpreter:
    path: str  # as named on PATH, inside the image
    real: str  # after symlinks, inside the image
    version: str | None  # "3.12" from the real file name, when it says

    def to_json(self) -> dict:
        return {"path": self.path, "real": self.real, "version": self.version}


def find_interpreter(root: Path, env: dict[str, str]) -> Interpreter | None:
    """The ``python3`` (else ``python``) the image's PATH finds; None for an image without Python."""
    sysroot = Sysroot(root)
    path_dirs = [d for d in (env.get("PATH") or "/usr/local/bin:/usr/bin:/bin").split(":") if d.startswith("/")]
    for name in ("python3", "python"):
        for folder in path_dirs:
            inside = f"{folder.rstrip('/')}/{name}"
            host = sysroot.resolve(inside)
            if os.path.isfile(host):
                real = "/" + os.path.relpath(host, sysroot.root)
                match = re.search(r"python(\d+\.\d+)", os.path.basename(real))
                return Interpreter(inside, real, match.group(1) if match else None)
    return None


@dataclass
class Distribution:
    name: str
    version: str
    site: str  # the site-packages directory, inside the image
    files: list[str] = field(default_factory=list)  # RECORD entries, relative to ``site``

    @property
    def key(self) -> str:
        return normalize(self.name)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def walk_files(root: Path, wanted) -> list[str]:
    """Host paths of files under ``root`` whose path passes ``wanted``; directory symlinks are not
    followed (merged /usr: /lib -> usr/lib must not list everything twice)."""
    found = []
    for folder, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = os.path.join(folder, name)
            if wanted(path) and os.path.isfile(path):
                found.append(path)
    return sorted(found)


def distributions(root: Path) -> list[Distribution]:
    """Every ``*.dist-info`` with a METADATA file, anywhere its extraction put one."""
    out = []
    for metadata in walk_files(root, lambda p: p.endswith("/METADATA") and p.rsplit("/", 2)[-2].endswith(".dist-info")):
        info = os.path.dirname(metadata)
        try:
            with open(metadata, encoding="utf-8", errors="replace") as handle:
                head = HeaderParser().parse(handle, headersonly=True)
        except OSError:
            continue
        files = []
        try:
            with open(os.path.join(info, "RECORD"), encoding="utf-8", errors="replace") as handle:
                files = [line.split(",", 1)[0] for line in handle if line.strip()]
        except OSError:
            pass
        site = "/" + os.path.relpath(os.path.dirname(info), root)
        out.append(Distribution(head.get("Name") or "?", head.get("Version") or "?", site, files))
    return out


@dataclass
class Package:
    """One installed dpkg package: its control fields and its files (paths inside the image)."""

    name: str
    version: str
    fields: dict[str, str]
    files: list[str] = field(default_factory=list)

    @property
    def gpu_arches(self) -> list[str] | None:
        value = self.fields.get("X-Rocm-Gpu-Architecture")
        return value.split() if value is not None else None

    @property
    def is_rocm(self) -> bool:
        return (self.gpu_arches is not None or bool(ROCM_HOMEPAGE.search(self.fields.get("Homepage", "")))
                or (bool(ROCM_MAINTAINER.search(self.fields.get("Maintainer", "")))
                    and "rocm" in (self.fields.get("Description", "") + self.name).lower()))


def dpkg_packages(root: Path) -> list[Package]:
    """Packages dpkg records as installed, with their file lists when the image kept them."""
    out = []
    for fields in dpkg_status(root):
        if dpkg_state(fields) != "installed":
            continue
        package = Package(fields["Package"], fields.get("Version", "?"), fields)
        package.files = dpkg_files(root, fields) or []
        out.append(package)
    return out


def upstream_version(text: str | None) -> str | None:
    """``1:7.2.4+dfsg-1~exp1`` -> ``7.2.4`` (epoch, Debian revision and suffixes dropped)."""
    if not text:
        return None
    text = text.split(":", 1)[-1]
    match = _VERSION.search(text)
    return match.group(0) if match else None


@dataclass(frozen=True)
class Version:
    """A version the image states somewhere, and where (the evidence a report names)."""

    value: str
    source: str

    def to_json(self) -> dict:
        return {"value": self.value, "source": self.source}


def _first_line(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[0].strip()
    except (OSError, IndexError):
        return None


def rocm_version(root: Path, packages: list[Package]) -> Version | None:
    """ROCm's version: rocm-core's header (ROCM_BUILD_INFO), ``/opt/rocm*/.info/version``, else dpkg's HIP runtime."""
    for header in walk_files(root, lambda p: p.endswith("/rocm_version.h")):
        text = Path(header).read_text(encoding="utf-8", errors="replace")
        info = re.search(r'#define\s+ROCM_BUILD_INFO\s+"([^"]+)"', text)
        if info:
            return Version(info.group(1), "/" + os.path.relpath(header, root) + " (ROCM_BUILD_INFO)")
        parts = [re.search(rf"#define\s+ROCM_VERSION_{p}\s+(\d+)", text) for p in ("MAJOR", "MINOR", "PATCH")]
        if all(parts):
            return Version(".".join(m.group(1) for m in parts), "/" + os.path.relpath(header, root))
    for info in sorted(root.glob("opt/rocm*/.info/version")):
        line = _first_line(info)
        if line:
            return Version(line, "/" + str(info.relative_to(root)))
    for package in packages:
        if re.fullmatch(r"(libamdhip64-\d+|hip-runtime-amd|rocm-core)", package.name):
            value = upstream_version(package.version)
            if value:
                return Version(value, f"dpkg {package.name} {package.version}")
    return None


def _library_version(root: Path, stem: str) -> Version | None:
    """``librocblas.so.4.2.60200`` -> 4.2.60200: the real file name of an installed library."""
    best = None
    for found in walk_files(root, lambda p: os.path.basename(p).startswith(f"{stem}.so.")):
        path = Path(found)
        if not path.is_symlink():
            best = Version(path.name.split(".so.", 1)[1], "/" + str(path.relative_to(root)))
    return best


def library_version(root: Path, packages: list[Package], dist: list[Distribution], library: str) -> Version | None:
    """rocBLAS / hipBLASLt's own version: the real file name of the library (``librocblas.so.4.4``: Debian
    and AMD alike), else AMD's package of that name (``rocblas 4.2.0.60200-66``: a library version; Debian's
    ``librocblasN`` carries the ROCm release instead), else a wheel of that name."""
    found = _library_version(root, f"lib{library}")
    if found:
        return found
    for package in packages:
        if package.name == library:
            value = upstream_version(package.version)
            if value:
                return Version(value, f"dpkg {package.name} {package.version}")
    for item in dist:
        if item.key in (library, f"rocm-sdk-{library}"):
            return Version(item.version, f"{item.site}/{item.name}-{item.version}.dist-info")
    return None


def torch_version(dist: list[Distribution]) -> Version | None:
    for item in dist:
        if item.key == "torch":
            return Version(item.version, f"{item.site}/torch-{item.version}.dist-info")
    return None


def torch_hip(root: Path, dist: list[Distribution]) -> str | None:
    """``torch.version.hip`` as torch/version.py states it (None for a CPU or CUDA build)."""
    for item in dist:
        if item.key == "torch":
            text = _first_match(root / item.site.lstrip("/") / "torch" / "version.py", r"^hip\s*[:=].*?'([^']+)'")
            return text
    return None


def _first_match(path: Path, pattern: str) -> str | None:
    try:
        match = re.search(pattern, path.read_text(encoding="utf-8", errors="replace"), re.M)
    except OSError:
        return None
    return match.group(1) if match else None


@dataclass
class Inventory:
    root: Path
    env: dict[str, str]
    interpreter: Interpreter | None
    distributions: list[Distribution]
    packages: list[Package]

    @classmethod
    def read(cls, root: Path, config: dict) -> "Inventory":
        env = image_env(config)
        return cls(Path(root), env, find_interpreter(Path(root), env), distributions(Path(root)), dpkg_packages(Path(root)))

    def versions(self) -> dict[str, Version | None]:
        return {
            "torch": torch_version(self.distributions),
            "rocm": rocm_version(self.root, self.packages),
            "rocblas": library_version(self.root, self.packages, self.distributions, "rocblas"),
            "hipblaslt": library_version(self.root, self.packages, self.distributions, "hipblaslt"),
        }

    def rocm_packages(self) -> list[Package]:
        return [p for p in self.packages if p.is_rocm]
