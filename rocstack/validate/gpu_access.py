"""Which GPU this host can hand to a container, and how (docker run options).

AMD: the ROCm device nodes, the groups that own them, and no seccomp filter (ROCm's
documented ``--device /dev/kfd --device /dev/dri --group-add video --security-opt
seccomp=unconfined``; the groups go by number - the host's video group and the groups
owning the device nodes - so images without a ``video`` entry in /etc/group work too). NVIDIA: ``--gpus all`` when the engine has the
NVIDIA runtime. Otherwise: no GPU, and the reason travels into the report.
"""

from __future__ import annotations

import glob
import grp
import os
import shutil
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuAccess:
    vendor: str | None  # "amd" | "nvidia" | None
    reason: str  # what was found, or why no GPU is passed
    run_options: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def available(self) -> bool:
        return self.vendor is not None

    def to_json(self) -> dict:
        return {"vendor": self.vendor, "reason": self.reason,
                "docker_options": {k: v for k, v in self.run_options.items() if k != "device_requests"}
                | ({"gpus": "all"} if "device_requests" in self.run_options else {})}


def _amd(dev_root: str) -> GpuAccess | None:
    kfd = os.path.join(dev_root, "kfd")
    dri = os.path.join(dev_root, "dri")
    if not os.path.exists(kfd):
        return None
    if not os.path.isdir(dri):
        return GpuAccess(None, f"{kfd} exists but {dri} does not: the amdgpu driver is only half loaded")
    nodes = [kfd, *sorted(glob.glob(os.path.join(dri, "renderD*"))), *sorted(glob.glob(os.path.join(dri, "card*")))]
    # By number: the kernel checks the host gids that own the nodes, and a name like "video"
    # fails to start a container whose /etc/group lacks it.
    groups = {str(os.stat(n).st_gid) for n in nodes}
    try:
        groups.add(str(grp.getgrnam("video").gr_gid))
    except KeyError:
        pass
    groups = sorted(groups, key=int)
    options = {
        "devices": [f"{kfd}:/dev/kfd:rwm", f"{dri}:/dev/dri:rwm"],
        "group_add": groups,
        "security_opt": ["seccomp=unconfined"],
    }
    renders = len(glob.glob(os.path.join(dri, "renderD*")))
    return GpuAccess("amd", f"AMD GPU: {kfd} and {renders} render node(s) passed to the container", options)


def _nvidia(dev_root: str, engine_runtimes: set[str]) -> GpuAccess | None:
    if not (os.path.exists(os.path.join(dev_root, "nvidiactl")) or shutil.which("nvidia-smi")):
        return None
    if "nvidia" not in engine_runtimes:
        return GpuAccess(None, "the host has an NVIDIA GPU but the Docker engine has no nvidia runtime "
                               "(install nvidia-container-toolkit and restart the engine)")
    import docker

    request = docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])
    return GpuAccess("nvidia", "NVIDIA GPU: passed with --gpus all", {"device_requests": [request]})


def detect(engine_runtimes: set[str] | None = None, dev_root: str = "/dev") -> GpuAccess:
    """What to pass to the container; ``dev_root`` is a parameter so tests can point it at a fake tree."""
    found = _amd(dev_root) or _nvidia(dev_root, engine_runtimes or set())
    if found is not None:
        return found
    return GpuAccess(None, f"this host has no GPU for containers (no {dev_root}/kfd for AMD, no NVIDIA device)")
