"""Shared by the attention tests: AOT-compile one kernel for an AMD arch and check its resources."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def assert_builds_without_spills(tmp_path, kernel: str, expected_variants: int, arch: str = "gfx942",
                                 match: str = "d128") -> None:
    """The real AOT compile (no GPU needed), in a process without the interpreter: no spills, no scratch."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "rocstack_kernels.attention.resource_check", "--arch", arch,
                           "--kernel", kernel, "--match", match],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == expected_variants, [row["label"] for row in rows]
    for row in rows:
        res = row["resources"]
        assert res["vgpr_spills"] == 0 and res["sgpr_spills"] == 0 and res["scratch_bytes"] == 0, row
        assert 0 < res["vgprs"] <= 256 and 0 < res["lds_bytes"] <= 65536, row
