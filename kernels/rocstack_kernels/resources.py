"""Resource usage read back from a compiled code object (registers, spills, LDS/shared).

HSACO (AMD): the AMDGPU metadata note (``NT_AMDGPU_METADATA``, owner "AMDGPU") is a
msgpack map whose ``amdhsa.kernels`` entries carry ``.vgpr_count``, ``.sgpr_count``,
``.agpr_count``, ``.vgpr_spill_count``, ``.sgpr_spill_count``,
``.group_segment_fixed_size`` (LDS bytes) and ``.private_segment_fixed_size`` (scratch).
cubin (NVIDIA): ``cuobjdump --dump-resource-usage`` (the copy bundled with triton)
prints ``REG``, ``STACK``, ``SHARED``, ``LOCAL`` per function.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import msgpack
from elftools.elf.elffile import ELFFile

NT_AMDGPU_METADATA = 32


def decode_hsaco(blob: bytes, dynamic_lds: int = 0) -> dict:
    """Per-kernel resources from an AMDGPU code object; raises ValueError if it has no metadata note.

    Triton allocates its LDS dynamically (``dynamic_lds``, from its metadata), so the
    note's static group segment is usually 0; the larger of the two is reported.
    """
    elf = ELFFile(io.BytesIO(blob))
    for section in elf.iter_sections():
        if section.header["sh_type"] != "SHT_NOTE":
            continue
        for note in section.iter_notes():
            if note["n_name"] != "AMDGPU" or note["n_type"] not in (NT_AMDGPU_METADATA, "NT_AMDGPU_METADATA"):
                continue
            desc = note["n_descdata"]
            meta = msgpack.unpackb(desc if isinstance(desc, bytes) else desc.encode("latin-1"), raw=False)
            kernel = meta["amdhsa.kernels"][0]
            return {
                "vgprs": kernel.get(".vgpr_count"),
                "agprs": kernel.get(".agpr_count", 0),
                "sgprs": kernel.get(".sgpr_count"),
                "vgpr_spills": kernel.get(".vgpr_spill_count", 0),
                "sgpr_spills": kernel.get(".sgpr_spill_count", 0),
                "lds_bytes": max(kernel.get(".group_segment_fixed_size", 0), dynamic_lds),
                "scratch_bytes": kernel.get(".private_segment_fixed_size", 0),
                "wavefront_size": kernel.get(".wavefront_size"),
                "source": "AMDGPU metadata note",
            }
    raise ValueError("code object has no AMDGPU metadata note")


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
