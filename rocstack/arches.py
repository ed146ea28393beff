"""GPU architecture registry and target IDs.

The facts live in ``data/arches.json`` (one table); this module only loads and
queries it. Target IDs follow LLVM's AMDGPUUsage "Target ID" grammar:
``gfx942``, ``gfx942:sramecc+:xnack-``, ``gfx90a:xnack+``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Literal

from rocstack.errors import ArchError

FeatureState = Literal["+", "-", "any"]


@dataclass(frozen=True)
class Arch:
    name: str
    family: str
    products: tuple[str, ...]
    wavefront_size: int
    max_waves_per_simd: int
    vgprs_per_simd_lane: int
    agprs_per_simd_lane: int
    vgpr_granule: int
    lds_bytes_per_workgroup: int
    fp8: str
    mach: int
    min_rocm: str | None  # None: rocstack has not recorded which ROCm first targets it
    features: tuple[str, ...]
    default_features: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def fp8_dtypes(self) -> tuple[str, str] | None:
        """torch dtype names (e4m3, e5m2) for this arch's FP8 flavour, or None."""
        flavour = _registry()["fp8_flavours"][self.fp8]
        if flavour["e4m3"] is None:
            return None
        return flavour["e4m3"], flavour["e5m2"]

    @property
    def is_cdna(self) -> bool:
        return self.family.startswith("CDNA")

    def occupancy(self, vgprs: int, agprs: int = 0) -> int:
        """Waves per SIMD a kernel using ``vgprs`` (+ ``agprs``) can reach.

        gfx90a+ share one unified 512-entry file between VGPRs and AGPRs (AGPRs
        start at a granule-aligned offset); gfx908 has separate 256-entry files.
        """
        granule = self.vgpr_granule

        def align(n: int) -> int:
            return max(granule, -(-n // granule) * granule)

        if self.agprs_per_simd_lane:  # gfx908: separate register files
            used = max(align(vgprs), align(agprs) if agprs else 0)
            budget = self.vgprs_per_simd_lane
        else:
            used = align(align(vgprs) + agprs) if agprs else align(vgprs)
            budget = self.vgprs_per_simd_lane
        return max(0, min(self.max_waves_per_simd, budget // used))


@lru_cache(maxsize=1)
def _registry() -> dict:
    # a plain file read: importlib.resources costs the audit's start-up more than the table itself
    return json.loads((Path(__file__).resolve().parent / "data" / "arches.json").read_text())


@lru_cache(maxsize=1)
def all_arches() -> dict[str, Arch]:
    out: dict[str, Arch] = {}
    for row in _registry()["arches"]:
        out[row["name"]] = Arch(
            name=row["name"],
            family=row["family"],
            products=tuple(row["products"]),
            wavefront_size=row["wavefront_size"],
            max_waves_per_simd=row["max_waves_per_simd"],
            vgprs_per_simd_lane=row["vgprs_per_simd_lane"],
            agprs_per_simd_lane=row["agprs_per_simd_lane"],
            vgpr_granule=row["vgpr_granule"],
            lds_bytes_per_workgroup=row["lds_bytes_per_workgroup"],
            fp8=row["fp8"],
            mach=int(row["mach"], 16),
            min_rocm=row.get("min_rocm"),
            features=tuple(row["features"]),
            default_features=dict(row["default_features"]),
        )
    return out


def arch_names() -> list[str]:
    return list(all_arches())


@dataclass(frozen=True)
class GenericTarget:
    """A generic processor (LLVM AMDGPUUsage "Generic Processors"): one code object for several arches.

    Only code object v6+ carries them, with the generic version in e_flags bits 24-31; only a
    runtime that understands generic code objects loads them.
    """

    name: str
    mach: int
    members: tuple[str, ...]
    features: tuple[str, ...]


@lru_cache(maxsize=1)
def generic_targets() -> dict[str, GenericTarget]:
    return {row["name"]: GenericTarget(row["name"], int(row["mach"], 16), tuple(row["members"]), tuple(row["features"]))
            for row in _registry()["generic_targets"]}


@lru_cache(maxsize=1)
def mach_table() -> dict[int, tuple[str, str]]:
    """Every EF_AMDGPU_MACH value LLVM names: mach -> (name, kind), kind one of
    ``processor``, ``generic``, ``retired`` (a processor LLVM removed), ``r600`` (pre-GCN, not HSA)."""
    table: dict[int, tuple[str, str]] = {}
    registry = _registry()
    for kind, rows in (("r600", registry["r600_mach"]), ("retired", registry["retired_mach"])):
        for mach, name in rows.items():
            table[int(mach, 16)] = (name, kind)
    for arch in all_arches().values():
        table[arch.mach] = (arch.name, "processor")
    for generic in generic_targets().values():
        table[generic.mach] = (generic.name, "generic")
    return table


def arch_for_mach(mach: int) -> str | None:
    """Processor name for an EF_AMDGPU_MACH value, including retired and generic targets."""
    entry = mach_table().get(mach)
    return entry[0] if entry else None


def supported_features(processor: str) -> tuple[str, ...] | None:
    """Target-ID features (xnack, sramecc) a processor or generic target has; None when unknown."""
    arch = all_arches().get(processor)
    if arch is not None:
        return arch.features
    generic = generic_targets().get(processor)
    return generic.features if generic is not None else None


def therock_family(name: str) -> tuple[str, ...] | None:
    """Arches of a TheRock device-package family (``gfx94X-dcgpu``) or single arch; None when unknown."""
    families = _registry()["therock_families"]
    if name in families and not name.startswith("_"):
        return tuple(families[name])
    return (name,) if name in all_arches() else None


def _product_index() -> dict[str, str]:
    index = {}
    for arch in all_arches().values():
        for product in arch.products:
            index[_squash(product)] = arch.name
    return index


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def get_arch(name: str) -> Arch:
    """Look up an arch by name; unknown names get a one-line error with a suggestion."""
    arches = all_arches()
    if name in arches:
        return arches[name]
    known = ", ".join(arches)
    generic = generic_targets().get(name)
    if generic is not None:
        raise ArchError(
            f"'{name}' is a generic code-object target, not a GPU",
            f"name the GPUs it runs on instead: {', '.join(generic.members)}",
        )
    if name in _registry()["retired_mach"].values():
        raise ArchError(f"'{name}' is retired: LLVM removed it and no current ROCm targets it",
                        "MI300-series GPUs are gfx942: use --arch gfx942")
    product_arch = _product_index().get(_squash(name))
    if product_arch:
        raise ArchError(
            f"unknown arch '{name}': that is a product name, {name.upper()} is {product_arch}",
            f"use --arch {product_arch} (known arches: {known})",
        )
    import difflib  # only on the error path

    close = difflib.get_close_matches(name.lower(), list(arches), n=1, cutoff=0.6)
    suggestion = f"did you mean {close[0]}? " if close else ""
    raise ArchError(f"unknown arch '{name}'", f"{suggestion}known arches: {known}")


_FEATURE_RE = re.compile(r"^([a-z]+)([+-])$")


@dataclass(frozen=True)
class TargetID:
    """A processor plus explicit feature settings; a feature absent means "any"."""

    processor: str
    features: tuple[tuple[str, str], ...] = ()  # sorted (name, "+"|"-")

    @property
    def arch(self) -> Arch:
        return get_arch(self.processor)

    def feature(self, name: str) -> FeatureState:
        return dict(self.features).get(name, "any")  # type: ignore[return-value]

    def __str__(self) -> str:
        return self.processor + "".join(f":{n}{s}" for n, s in self.features)

    def runs_on(self, device: "TargetID") -> bool:
        """Can a code object built for ``self`` run on ``device``?

        LLVM rule: a feature built "any" runs with the feature on or off; a
        feature built "+" or "-" runs only where the device matches. A device
        setting left unspecified is the arch's default mode (MI-series ship
        sramecc on, xnack off), taken from the registry.
        """
        if self.processor != device.processor:
            return False
        defaults = _known_defaults(device.processor)
        for name, built in self.features:
            wanted = device.feature(name)
            if wanted == "any":
                wanted = defaults.get(name, "any")
            if wanted != "any" and wanted != built:
                return False
        return True


def _known_defaults(processor: str) -> dict[str, str]:
    arch = all_arches().get(processor)
    return dict(arch.default_features) if arch else {}


def parse_target_id(text: str, *, known_only: bool = True) -> TargetID:
    """Parse ``gfx942:sramecc+:xnack-``. With ``known_only`` the processor must be in the registry."""
    raw = text.strip()
    if not raw:
        raise ArchError("empty arch name", "pass an arch such as --arch gfx942")
    processor, *parts = raw.split(":")
    processor = processor.strip()
    if known_only:
        arch = get_arch(processor)
        supported = set(arch.features)
    else:
        supported = None
    features: dict[str, str] = {}
    for part in parts:
        match = _FEATURE_RE.match(part.strip())
        if not match:
            raise ArchError(
                f"malformed target ID '{raw}': feature '{part}' must look like xnack+ or sramecc-",
                "write target IDs as gfx942:sramecc+:xnack-",
            )
        name, state = match.groups()
        if supported is not None and name not in supported:
            allowed = ", ".join(sorted(supported)) or "none"
            raise ArchError(
                f"target ID '{raw}': {processor} has no '{name}' feature",
                f"features {processor} supports: {allowed}",
            )
        if name in features:
            raise ArchError(f"target ID '{raw}' sets '{name}' twice", "give each feature once")
        features[name] = state
    return TargetID(processor, tuple(sorted(features.items())))


def split_arch_list(value: str | Iterable[str]) -> list[str]:
    """``gfx90a, gfx942`` (or a list) -> ["gfx90a", "gfx942"]: the one way an arch list is split."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if item and str(item).strip()]


def parse_arch_list(value: str | Iterable[str]) -> list[TargetID]:
    """``gfx90a,gfx942`` (or a list) -> de-duplicated target IDs in the given order."""
    items = split_arch_list(value)
    if not items:
        raise ArchError("no arch given", f"pass --arch with one or more of: {', '.join(arch_names())}")
    out: list[TargetID] = []
    for item in items:
        target = parse_target_id(item)
        if target not in out:
            out.append(target)
    return out


def arches_slug(targets: Iterable[TargetID]) -> str:
    """Tag-safe name of an arch selection: ``gfx90a-gfx942`` (features spelled out)."""
    parts = []
    for target in targets:
        text = target.processor + "".join(
            f"-{n}{'on' if s == '+' else 'off'}" for n, s in target.features
        )
        parts.append(text)
    return "_".join(parts)
