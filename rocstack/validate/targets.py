"""Which GPU arches an image is validated for, and the evidence for that choice.

In order, the first source that names any arch wins (the report says which):

1. ``--arch`` on the command line;
2. rocstack's own label ``io.rocstack.arches`` (images rocstack built);
3. the image config's environment: ``PYTORCH_ROCM_ARCH`` (PyTorch extensions, vLLM),
   then ``GPU_ARCHS`` (flash-attention, AITER), ``GPU_TARGETS`` / ``AMDGPU_TARGETS``
   (CMake projects), ``HIP_ARCHITECTURES`` (xFormers);
4. torch's own arch list, read statically: the offload targets of ``libtorch_hip.so``;
5. dpkg's ``X-Rocm-Gpu-Architecture`` of the installed ROCm packages: the arches every
   declaring package claims (their intersection), the image's claim as a whole.

Names are split on ``;``, ``,`` and spaces; generic targets (``gfx9-4-generic``) and
names that are not target IDs are set aside and reported, never guessed into arches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rocstack.arches import TargetID, parse_target_id
from rocstack.contracts import LABEL_ARCHES
from rocstack.errors import ArchError

ENV_VARIABLES = ("PYTORCH_ROCM_ARCH", "GPU_ARCHS", "GPU_TARGETS", "AMDGPU_TARGETS", "HIP_ARCHITECTURES")
_SPLIT = re.compile(r"[;,\s]+")
_ARCH = re.compile(r"^gfx[0-9a-f]+(:[a-z]+[+-])*$")


@dataclass
class TargetChoice:
    targets: list[TargetID]
    source: str  # "--arch", "label io.rocstack.arches", "env PYTORCH_ROCM_ARCH", ...
    detail: str = ""  # the raw value or how it was derived
    ignored: list[str] = field(default_factory=list)  # names that are not concrete target IDs
    considered: list[dict] = field(default_factory=list)  # every source looked at, with what it said

    @property
    def names(self) -> list[str]:
        return [str(t) for t in self.targets]

    def to_json(self) -> dict:
        return {"arches": self.names, "source": self.source, "detail": self.detail, "ignored": self.ignored,
                "considered": self.considered}


def parse_names(value: str) -> tuple[list[TargetID], list[str]]:
    """Concrete target IDs in ``value`` (any separator), and the names that are not."""
    targets: list[TargetID] = []
    ignored: list[str] = []
    for name in filter(None, _SPLIT.split(value.strip())):
        if not _ARCH.match(name):
            ignored.append(name)  # "native", "gfx9-4-generic", "sm_90" ...
            continue
        try:
            target = parse_target_id(name, known_only=False)
        except ArchError:
            ignored.append(name)
            continue
        if target not in targets:
            targets.append(target)
    return targets, ignored


def _intersection(declared: dict[str, list[str]]) -> list[str]:
    lists = [set(v) for v in declared.values() if v]
    if not lists:
        return []
    common = set.intersection(*lists)
    order = next(iter(declared.values()))
    return [a for a in order if a in common] + sorted(common - set(order))


def choose_targets(*, cli: list[TargetID] | None, labels: dict, env: dict[str, str],
                   torch_arches: tuple[list[str], str] | None, dpkg_declared: dict[str, list[str]]) -> TargetChoice:
    """The first source that names arches; ``torch_arches`` is (offload targets, library path)."""
    considered: list[dict] = []
    if cli:
        return TargetChoice(list(cli), "--arch", ",".join(str(t) for t in cli), considered=considered)
    if labels.get(LABEL_ARCHES):
        targets, ignored = parse_names(labels[LABEL_ARCHES])
        considered.append({"source": f"label {LABEL_ARCHES}", "value": labels[LABEL_ARCHES]})
        if targets:
            return TargetChoice(targets, f"label {LABEL_ARCHES}", labels[LABEL_ARCHES], ignored, considered)
    for variable in ENV_VARIABLES:
        if env.get(variable):
            targets, ignored = parse_names(env[variable])
            considered.append({"source": f"env {variable}", "value": env[variable]})
            if targets:
                return TargetChoice(targets, f"env {variable}", env[variable], ignored, considered)
    if torch_arches and torch_arches[0]:
        targets, ignored = parse_names(" ".join(torch_arches[0]))
        considered.append({"source": "torch", "value": " ".join(torch_arches[0])})
        if targets:
            return TargetChoice(targets, "torch's arch list (offload targets of libtorch_hip.so)",
                                torch_arches[1], ignored, considered)
    if dpkg_declared:
        common = _intersection(dpkg_declared)
        considered.append({"source": "dpkg X-Rocm-Gpu-Architecture", "value": dpkg_declared})
        targets, ignored = parse_names(" ".join(common))
        if targets:
            detail = f"declared by every one of {', '.join(sorted(dpkg_declared))}"
            return TargetChoice(targets, "dpkg X-Rocm-Gpu-Architecture", detail, ignored, considered)
    return TargetChoice([], "none", "no source names a GPU arch: pass --arch", considered=considered)
