"""The stack models of a locally made ROCm toolchain: the base's pinned apt layer and what the compiler targets.

Split from ``models`` (which re-exports them) to keep one concern per module: these say how
a debootstrap base gets Debian's ROCm packages (sources, pins, exact versions) and which
``--offload-arch`` values the resulting hipcc takes or refuses.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from rocstack.recipes.strict import NAME_RE as _NAME_RE
from rocstack.recipes.strict import Strict


_DEB_NAME = r"[a-z0-9][a-z0-9+.-]+"
DEB_PINNED = re.compile(rf"^({_DEB_NAME})=([0-9A-Za-z.+~:-]+)$")


class AptSource(Strict):
    suite: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="a suite of debootstrap's mirror (sid, experimental)")
    components: list[str] = Field(["main"], min_length=1)


class AptPin(Strict):
    """One stanza of /etc/apt/preferences.d/rocstack (apt_preferences(5)), in the stack's order."""

    packages: list[str] = Field(min_length=1, description='package names, or "*"')
    release: str | None = Field(None, description="Pin: release a=<this>")
    version: str | None = Field(None, description="Pin: version <this>")
    priority: int

    @model_validator(mode="after")
    def _one_pin(self) -> "AptPin":
        if (self.release is None) == (self.version is None):
            raise ValueError("a pin needs exactly one of 'release' (a suite) or 'version'")
        return self


class AptLayer(Strict):
    """The toolchain layer: apt configuration written into the debootstrap tree, then ``packages``
    installed by exact version in one apt-get call. Part of the base's input hash."""

    check_valid_until: bool = Field(True, description='false writes Acquire::Check-Valid-Until "false" (a frozen archive)')
    no_recommends: bool = True
    sources: list[AptSource] = Field(min_length=1, description="/etc/apt/sources.list, on debootstrap's mirror")
    pins: list[AptPin] = []
    packages: list[str] = Field(min_length=1, description="name=version, every one pinned")

    @field_validator("packages")
    @classmethod
    def _pinned(cls, packages: list[str]) -> list[str]:
        for item in packages:
            if not DEB_PINNED.match(item):
                raise ValueError(f"'{item}' is not name=version: every package of the toolchain layer is pinned "
                                 f"(find the version with `apt-cache policy {item.split('=')[0]}` in the tree)")
        return packages



class Toolchain(Strict):
    """What the stack's device compiler can target, measured, so an impossible arch is refused before any build."""

    name: str = Field(pattern=_NAME_RE)
    hipcc: str
    llvm: str
    offload_arches: list[str] = Field(min_length=1, description="--offload-arch values the compiler accepts")
    refused: dict[str, str] = Field({}, description="arch -> why this compiler cannot target it")
    flags: dict[str, list[str]] = Field({}, description="named per-toolchain flag sets (recipes' build.toolchain_flags)")

    @field_validator("offload_arches")
    @classmethod
    def _arch_names(cls, arches: list[str]) -> list[str]:
        for arch in arches:
            if not re.match(r"^gfx[0-9a-f]+(-[0-9]+)*(-generic)?$", arch):
                raise ValueError(f"'{arch}' is not a gfx processor name")
        return arches

    @model_validator(mode="after")
    def _disjoint(self) -> "Toolchain":
        both = sorted(set(self.refused) & set(self.offload_arches))
        if both:
            raise ValueError(f"{', '.join(both)} both targeted and refused: list each arch in one of offload_arches / refused")
        return self
