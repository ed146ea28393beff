"""amd-aiter from PyPI: 2613 code objects in per-arch trees (gfx942, gfx950), no gfx90a at all.

The issue's case: audited for gfx90a it passed with 23,633 lines of per-file warnings;
none of its code objects runs there, so it must fail naming hipErrorNoBinaryForGpu.
"""

from __future__ import annotations

import collections
import re
import subprocess
import zipfile

import pytest

from rocstack.arches import parse_arch_list
from rocstack.audit import run_audit

import debian_packages as debian
from audit_helpers import pip_download

VERSION = "0.1.7.post2.dev18"
# (arch, code object version) -> objects, read independently below with llvm-readobj
EXPECTED = {("gfx942", 4): 11, ("gfx942", 5): 1185, ("gfx942", 6): 85, ("gfx950", 5): 117, ("gfx950", 6): 1215}


@pytest.fixture(scope="module")
def aiter_wheel(test_cache):
    return pip_download(test_cache, f"amd-aiter=={VERSION}", f"amd-aiter-{VERSION}")


@pytest.fixture(scope="module")
def gfx90a_report(aiter_wheel):
    return run_audit([aiter_wheel], targets=parse_arch_list("gfx90a"))


def test_no_code_for_gfx90a_is_an_error(gfx90a_report, aiter_wheel):
    report = gfx90a_report
    assert report.exit_code == 1
    [error] = [f for f in report.findings if f.severity == "error"]
    assert error.check == "arch-coverage" and error.file == str(aiter_wheel)
    assert "hipErrorNoBinaryForGpu" in error.message and "1551 kernel-sets" in error.message
    assert error.evidence == "built for: gfx942, gfx950"
    assert len(report.findings) < 10  # one finding, not one per file


def test_per_arch_and_code_object_version_agree_with_llvm_readobj(gfx90a_report, aiter_wheel, tmp_path):
    counts = collections.Counter((o.processor, o.code_object_version) for f in gfx90a_report.files
                                 for o in f.code_objects)
    assert counts == EXPECTED
    assert sum(counts.values()) == 2613
    readobj = debian.sid_command(debian.LLVM21_TOOLS, "usr/lib/llvm-21/bin/llvm-readobj")
    checked = set()
    with zipfile.ZipFile(aiter_wheel) as archive:
        for summary in gfx90a_report.files:
            [obj] = summary.code_objects
            key = (obj.processor, obj.code_object_version)
            if key in checked:
                continue
            checked.add(key)
            path = tmp_path / f"{len(checked)}.co"
            path.write_bytes(archive.read(summary.path.split("!", 1)[1]))
            text = subprocess.run([*readobj, "--file-headers", str(path)], capture_output=True, text=True).stdout
            assert f"EF_AMDGPU_MACH_AMDGCN_{obj.processor.upper()} (0x{obj.mach:X})" in text
            abi = int(re.search(r"ABIVersion: (\d+)", text).group(1))
            assert abi + 2 == obj.code_object_version  # EI_ABIVERSION 2..4 = code object v4..v6
    assert checked == set(EXPECTED)


def test_gfx942_is_partial_not_missing(aiter_wheel):
    report = run_audit([aiter_wheel], targets=parse_arch_list("gfx942,gfx950"))
    assert report.exit_code == 0, [f.message for f in report.findings if f.severity == "error"]
    warnings = {f.message.split(" kernel sets")[0]: f for f in report.findings if f.check == "arch-coverage"}
    assert set(warnings) == {"270", "219"}  # sets without gfx942 / without gfx950
    matrix = report.coverage.to_dict()
    assert matrix["components"] == [{"name": str(aiter_wheel), "cells": {"gfx942": "partial", "gfx950": "partial"}}]
    covered = collections.Counter(r["cells"]["gfx942"]["status"] for r in matrix["rows"])
    assert covered == {"covered": 1281, "missing": 270}
