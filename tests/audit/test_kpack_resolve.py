"""The loader model's pure parts: target order, device modes, environment, candidate paths, load paths;
and the segment/relocation reader against binutils on a RELR-packed library."""

from __future__ import annotations

import os
import re

import pytest

from rocstack.arches import parse_target_id
from rocstack.audit.elf import open_elf
from rocstack.audit.kpack import KpackRef
from rocstack.audit.kpack_coverage import device_package
from rocstack.audit.kpack_resolve import HardlinkIndex, KpackEnv, candidates, compatible_targets, devices_for, \
    load_paths, split_path_list
from rocstack.audit.segments import program_headers, dynamic_relocations
from rocstack.audit.sysroot import Sysroot

from audit_helpers import run


def test_compatible_targets_go_from_the_full_target_id_to_the_bare_arch():
    assert compatible_targets("gfx942:sramecc+:xnack-") == \
        ["gfx942:sramecc+:xnack-", "gfx942:sramecc+", "gfx942:xnack-", "gfx942"]
    assert compatible_targets("gfx1030") == ["gfx1030"]


@pytest.mark.parametrize("target,expected", [
    ("gfx90a", [("gfx90a:sramecc+:xnack-", ""), ("gfx90a:sramecc+:xnack+", "HSA_XNACK=1")]),
    ("gfx942:xnack+", [("gfx942:sramecc+:xnack+", "")]),
    ("gfx942:sramecc-:xnack-", [("gfx942:sramecc-:xnack-", "")]),
    ("gfx1030", [("gfx1030", "")]),
])
def test_devices_an_image_target_stands_for(target, expected):
    assert [(d.target, d.mode) for d in devices_for(parse_target_id(target))] == expected


def test_environment_follows_the_loader():
    from rocstack.validate.inventory import image_env  # how validate reads an image config's Env

    env = KpackEnv.from_mapping(image_env({"Env": ["PATH=/usr/bin", "ROCM_KPACK_PATH=/a.kpack::/b.kpack",
                                                   "ROCM_KPACK_PATH_PREFIX=/p.kpack", "ROCM_KPACK_DISABLE=0"]}))
    assert env.path == ("/a.kpack", "/b.kpack") and env.prefix == ("/p.kpack",) and not env.disabled
    assert KpackEnv.from_mapping({"ROCM_KPACK_DISABLE": "true"}).disabled  # anything not starting with 0
    assert split_path_list("::") == ()


def tree(tmp_path):
    """/opt/rocm -> /opt/rocm-7.0 (directory symlink), a library, an alias symlink, a hardlink."""
    root = tmp_path / "root"
    lib = root / "opt" / "rocm-7.0" / "lib"
    lib.mkdir(parents=True)
    (lib / "libx.so").write_bytes(b"x")
    os.symlink("rocm-7.0", root / "opt" / "rocm")
    os.symlink("/opt/rocm/lib/libx.so", lib / "libx.so.1")
    devel = root / "devel" / "lib"
    devel.mkdir(parents=True)
    os.link(lib / "libx.so", devel / "libx.so")
    return Sysroot(root)


def test_load_paths_resolve_symlinks_and_keep_hardlinks(tmp_path):
    root = tree(tmp_path)
    index = HardlinkIndex.build(root)
    assert load_paths(root, "/opt/rocm/lib/libx.so.1", index) == ["/opt/rocm-7.0/lib/libx.so", "/devel/lib/libx.so"]
    assert load_paths(root, "/opt/rocm/lib/libx.so") == ["/opt/rocm-7.0/lib/libx.so"]


def test_candidates_in_loader_order(tmp_path):
    root = tree(tmp_path)
    ref = KpackRef("lib/libx.so", ("../.kpack/x_@GFXARCH@.kpack", "/abs/y.kpack"))
    got = candidates(ref, "/opt/rocm-7.0/lib/libx.so", "gfx942:sramecc+:xnack-", KpackEnv(), root)
    assert [(c.inside, c.expansion) for c in got] == [
        ("/opt/rocm-7.0/.kpack/x_gfx942:sramecc+:xnack-.kpack", "gfx942:sramecc+:xnack-"),
        ("/opt/rocm-7.0/.kpack/x_gfx942:sramecc+.kpack", "gfx942:sramecc+"),
        ("/opt/rocm-7.0/.kpack/x_gfx942:xnack-.kpack", "gfx942:xnack-"),
        ("/opt/rocm-7.0/.kpack/x_gfx942.kpack", "gfx942"),
        ("/abs/y.kpack", None)]
    assert all(c.host.startswith(str(tmp_path)) for c in got)  # absolute paths stay inside the root
    prefixed = candidates(ref, "/opt/rocm-7.0/lib/libx.so", "gfx1030", KpackEnv(prefix=("/p.kpack",)), root)
    assert [c.source for c in prefixed] == ["ROCM_KPACK_PATH_PREFIX", ref.search_paths[0], ref.search_paths[1]]
    override = candidates(ref, "/opt/rocm-7.0/lib/libx.so", "gfx1030", KpackEnv(path=("rel.kpack",)), root,
                          cwd="/work")
    assert [(c.inside, c.source) for c in override] == [("/work/rel.kpack", "ROCM_KPACK_PATH")]


@pytest.mark.parametrize("path,processor,package", [
    ("/site/torch/.kpack/torch_gfx1100.kpack", "gfx1100",
     "amd-torch-device-gfx1100, or the gfx110X-dgpu family device package"),
    ("/site/_rocm_sdk_libraries/.kpack/blas_lib_gfx942.kpack", "gfx942",
     "rocm-sdk-device-gfx942, or the gfx94X-dcgpu family device package"),
    ("/opt/rocm/lib/.kpack/hip_lib_gfx90a.kpack", "gfx90a",
     "the device package for gfx90a that installs hip_lib_gfx90a.kpack"),
])
def test_device_package_names_follow_therock(path, processor, package):
    assert device_package(path, processor) == package


def test_segments_and_relr_relocations_match_binutils(tmp_path):
    """A library with packed relative relocations (GNU ld -z pack-relative-relocs), read by us and by readelf."""
    src = tmp_path / "relr.c"
    src.write_text("static int a, b, c, d;\nint *table[] = {&a, &b, &c, &d, &a, &b, &c, &d, &a};\nint *lone = &c;\n")
    lib = tmp_path / "librelr.so"
    run(["gcc", "-shared", "-fPIC", "-O1", "-Wl,-z,pack-relative-relocs", "-o", str(lib), str(src)])
    text = run(["readelf", "-rW", str(lib)])
    relr_text = text[text.index(".relr.dyn"):]
    theirs = [int(x, 16) for x in re.findall(r"^([0-9a-f]{16})$", relr_text, re.M)]
    symbols = {line.split()[7]: int(line.split()[1], 16) for line in run(["readelf", "-sW", str(lib)]).splitlines()
               if len(line.split()) == 8 and line.split()[7] in ("a", "b", "c", "d", "table")}
    mapped, elf = open_elf(lib)
    with mapped:
        relr = [r for r in dynamic_relocations(elf) if r.section == ".relr.dyn"]
        phdrs = program_headers(elf)
    assert [r.offset for r in relr] == theirs and len(theirs) > 8
    table = {r.offset: r.target for r in relr}
    assert [table[symbols["table"] + 8 * i] for i in range(9)] == [symbols[n] for n in "abcdabcda"]
    loads = [line.split() for line in run(["readelf", "-lW", str(lib)]).splitlines() if line.strip().startswith("LOAD")]
    assert [(p.offset, p.vaddr) for p in phdrs if p.type == 1] == [(int(f[1], 16), int(f[2], 16)) for f in loads]
