"""The whole EF_AMDGPU_MACH table (LLVM's AMDGPUUsage), cross-checked with LLVM 19's and LLVM 21's readobj."""

from __future__ import annotations

import re
import subprocess

import pytest

from rocstack.arches import all_arches, generic_targets, get_arch, mach_table, parse_target_id
from rocstack.errors import ArchError

import debian_packages as debian
from audit_helpers import need_tool

# in LLVM's table after LLVM 21 was released (llvm-project main, 2026): no released readobj names them
NEWER_THAN_LLVM_21 = {"gfx1154", "gfx1170", "gfx1171", "gfx1172", "gfx1251", "gfx1310", "gfx11-7-generic",
                      "gfx12-5-generic", "gfx13-generic"}
# and after LLVM 19 (Debian 12's)
NEWER_THAN_LLVM_19 = NEWER_THAN_LLVM_21 | {"gfx950", "gfx1153", "gfx1250", "gfx9-4-generic"}
RETIRED_AFTER_19 = {"gfx940", "gfx941"}  # LLVM 20 removed them; 19 still names them


def probe_header(mach: int) -> bytes:
    """A 64-byte AMDGPU ELF header (code object v5) whose e_flags is ``mach``."""
    header = bytearray(64)
    header[:9] = b"\x7fELF\x02\x01\x01\x40\x03"
    header[16:20] = (3).to_bytes(2, "little") + (224).to_bytes(2, "little")
    header[48:52] = mach.to_bytes(4, "little")
    header[52:54] = (64).to_bytes(2, "little")
    return bytes(header)


def llvm_names(command: list[str], folder) -> dict[int, str | None]:
    out = {}
    for mach in mach_table():
        path = folder / f"mach-{mach:02x}.o"
        path.write_bytes(probe_header(mach))
        text = subprocess.run([*command, "--file-headers", str(path)], capture_output=True, text=True).stdout
        match = re.search(r"EF_AMDGPU_MACH_(?:AMDGCN|R600)_(\S+) \(0x", text)
        out[mach] = match.group(1) if match else None
    return out


def ours(name: str) -> str:
    return name.upper().replace("-", "_")


def test_table_is_complete_and_consistent():
    table = mach_table()
    kinds = {kind for _name, kind in table.values()}
    assert kinds == {"processor", "generic", "retired", "r600"}
    assert len(table) == len({name for name, _kind in table.values()})  # one name per value
    for name, arch in all_arches().items():
        assert table[arch.mach] == (name, "processor")
    for generic in generic_targets().values():
        assert table[generic.mach] == (generic.name, "generic")
        assert all(member in all_arches() for member in generic.members)
    # the values met in Debian's rocBLAS / hipBLASLt that rocstack once refused
    assert {m: table[m][0] for m in (0x2A, 0x33, 0x43, 0x44, 0x47)} == {
        0x2A: "gfx803", 0x33: "gfx1010", 0x43: "gfx1150", 0x44: "gfx1103", 0x47: "gfx1102"}


@pytest.mark.parametrize("arch", ["gfx1102", "gfx803", "gfx1150", "gfx1103", "gfx1250", "gfx90c"])
def test_every_processor_is_an_accepted_arch(arch):
    assert parse_target_id(arch).processor == arch and get_arch(arch).wavefront_size in (32, 64)


def test_generic_and_retired_targets_are_refused_as_device_arches():
    with pytest.raises(ArchError, match="generic code-object target.*gfx942, gfx950"):
        parse_target_id("gfx9-4-generic")
    with pytest.raises(ArchError, match="retired.*gfx942"):
        parse_target_id("gfx940")


def test_llvm19_names_every_value_it_knows_as_rocstack_does(tmp_path):
    need_tool("llvm-readobj-19")
    names = llvm_names(["llvm-readobj-19"], tmp_path)
    table = mach_table()
    unknown = {table[m][0] for m, n in names.items() if n is None}
    assert unknown == NEWER_THAN_LLVM_19
    for mach, name in names.items():
        if name is not None:
            assert name == ours(table[mach][0]), (hex(mach), name, table[mach])


def test_llvm21_names_every_value_it_knows_as_rocstack_does(tmp_path):
    readobj = debian.sid_command(debian.LLVM21_TOOLS, "usr/lib/llvm-21/bin/llvm-readobj")
    names = llvm_names(readobj, tmp_path)
    table = mach_table()
    unknown = {table[m][0] for m, n in names.items() if n is None}
    assert unknown == NEWER_THAN_LLVM_21 | RETIRED_AFTER_19
    for mach, name in names.items():
        if name is not None:
            assert name == ours(table[mach][0]), (hex(mach), name, table[mach])
