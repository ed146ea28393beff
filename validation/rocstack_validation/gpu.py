"""Is there a GPU the suite can use, and which arch is it?

torch answers for both vendors (device "cuda" on ROCm and NVIDIA). When no GPU is
usable the reason is kept, so every GPU check can say why it was skipped. The host side
passes what it knows (no /dev/kfd, no NVIDIA runtime) in ``ROCSTACK_VALIDATE_GPU_REASON``.
"""

from __future__ import annotations

import os
import platform
import re
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
    driver: str | None = None  # kernel driver: amdgpu's version, or NVIDIA's kernel module
    runtime: str | None = None  # torch.version.hip / torch.version.cuda

    def to_json(self) -> dict:
        return asdict(self)


def driver_version(vendor: str) -> str | None:
    """The kernel driver, as the container sees it (sysfs and procfs are the host's)."""
    if vendor == "amd":
        try:
            with open("/sys/module/amdgpu/version") as handle:
                return f"amdgpu {handle.read().strip()}"
        except OSError:
            return f"amdgpu (in-tree, kernel {platform.release()})" if os.path.isdir("/sys/module/amdgpu") else None
    try:
        with open("/proc/driver/nvidia/version") as handle:
            first = handle.readline()
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9.]+)", first)
    return f"nvidia {match.group(1)}" if match else first.strip()[:120] or None


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
        return GpuInfo(True, "amd", props.name, target_id.split(":")[0] or None, target_id or None,
                       torch.cuda.device_count(), driver=driver_version("amd"), runtime=f"hip {torch.version.hip}")
    return GpuInfo(True, "nvidia", props.name, f"sm{props.major}{props.minor}", None, torch.cuda.device_count(),
                   driver=driver_version("nvidia"), runtime=f"cuda {torch.version.cuda}")
