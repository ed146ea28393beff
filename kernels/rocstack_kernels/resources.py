"""Resource usage read back from a compiled code object (registers, spills, LDS/shared).

HSACO (AMD): the AMDGPU metadata note (``NT_AMDGPU_METADATA``), decoded by
``rocstack.audit.codeobject`` (VGPRs, AGPRs, SGPRs, spills, LDS, scratch, occupancy).
cubin (NVIDIA): ``cuobjdump --dump-resource-usage`` (the copy bundled with triton)
prints ``REG``, ``STACK``, ``SHARED``, ``LOCAL`` per function.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path


def decode_hsaco(blob: bytes, dynamic_lds: int = 0) -> dict:
    """Per-kernel resources from an AMDGPU code object, via rocstack's code-object decoder.

    Triton allocates its LDS dynamically (``dynamic_lds``, from its metadata), so the
    note's static group segment is usually 0; the larger of the two is reported.
    Raises ValueError when the object has no kernel metadata.
    """
    from rocstack.audit.codeobject import parse_code_object

    obj = parse_code_object(blob, label="triton code object")
    if not obj.kernels:
        raise ValueError(f"code object lists no kernels: {'; '.join(obj.problems) or 'no metadata note'}")
    kernel = obj.kernels[0]
    return {
        "target_id": obj.target_id, "vgprs": kernel.vgprs, "agprs": kernel.agprs or 0, "sgprs": kernel.sgprs,
        "vgpr_spills": kernel.vgpr_spills, "sgpr_spills": kernel.sgpr_spills,
        "lds_bytes": max(kernel.lds_bytes, dynamic_lds), "scratch_bytes": kernel.scratch_bytes,
        "wavefront_size": kernel.wavefront_size, "waves_per_simd_by_registers": kernel.occupancy,
        "source": "AMDGPU metadata note (rocstack.audit.codeobject)",
    }


def _cuobjdump() -> str | None:
    import triton

    bundled = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    return str(bundled) if bundled.exists() else shutil.which("cuobjdump")


_RES_USAGE = re.compile(r"REG:(\d+)\s+STACK:(\d+)\s+SHARED:(\d+)\s+LOCAL:(\d+)")


def decode_cubin(blob: bytes, static_shared: int) -> dict:
    """Registers / stack / local memory from cuobjdump; ``static_shared`` is Triton's (dynamic) shared memory."""
    tool = _cuobjdump()
    if tool is None:
        raise ValueError("cuobjdump not found (triton's bundled copy or PATH) to read cubin resources")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as handle:
        handle.write(blob)
        handle.flush()
        text = subprocess.run([tool, "--dump-resource-usage", handle.name], capture_output=True,
                              text=True, check=True, timeout=60).stdout
    match = _RES_USAGE.search(text)
    if match is None:
        raise ValueError(f"cuobjdump printed no resource line: {text.strip()[:200]}")
    regs, stack, shared, local = map(int, match.groups())
    return {"registers": regs, "stack_bytes": stack, "local_bytes": local,
            "spills": local > 0 or stack > 0, "shared_bytes": max(shared, static_shared),
            "source": "cuobjdump --dump-resource-usage"}


def decode(binary_kind: str, blob: bytes, static_shared: int) -> dict:
    if binary_kind == "hsaco":
        return decode_hsaco(blob, static_shared)
    if binary_kind == "cubin":
        return decode_cubin(blob, static_shared)
    raise ValueError(f"unknown code object kind {binary_kind!r}")
