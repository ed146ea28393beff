"""Is there a GPU the suite can use, and which arch is it?

torch answers for both vendors (device "cuda" on ROCm and NVIDIA). When no GPU is
usable the reason is kept, so every GPU check can say why it was skipped. The host side
passes what it knows (no /dev/kfd, no NVIDIA runtime) in ``ROCSTACK_VALIDATE_GPU_REASON``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

HOST_REASON_ENV = "ROCSTACK_VALIDATE_GPU_REASON"


@dataclass(frozen=True)
class GpuInfo:
    available: bool
    vendor: str | None = None  # "amd" | "nvidia"
    name: str | None = None
    arch: str | None = None  # gfx942 / sm90
    target_id: str | None = None  # full gcnArchName on AMD: gfx942:sramecc+:xnack-
    count: int = 0
    reason: str | None = None  # why not available

    def to_json(self) -> dict:
        return asdict(self)


def detect() -> GpuInfo:
    host_reason = os.environ.get(HOST_REASON_ENV)
    try:
        import torch
    except ImportError as exc:
        return GpuInfo(False, reason=host_reason or f"torch is not importable ({exc}), so no GPU check can run")
    try:
        available = torch.cuda.is_available()
    except Exception as exc:  # a broken driver stack must read as "no GPU", with the cause
        return GpuInfo(False, reason=f"torch.cuda.is_available() failed: {exc}")
    if not available:
        if host_reason:
            return GpuInfo(False, reason=host_reason)
        build = "a CPU-only build" if not (torch.version.hip or torch.version.cuda) else "no visible device"
        return GpuInfo(False, reason=f"torch.cuda.is_available() is False ({build}, torch {torch.__version__})")
    props = torch.cuda.get_device_properties(0)
    if torch.version.hip:
        target_id = getattr(props, "gcnArchName", "") or ""
        return GpuInfo(True, "amd", props.name, target_id.split(":")[0] or None, target_id or None, torch.cuda.device_count())
    return GpuInfo(True, "nvidia", props.name, f"sm{props.major}{props.minor}", None, torch.cuda.device_count())
