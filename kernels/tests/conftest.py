"""Kernel tests run on a GPU when torch sees one, else through Triton's CPU interpreter.

TRITON_INTERPRET must be set before triton is imported (triton.jit reads it when the
kernel modules are imported), so it is decided here, at collection time.
"""

from __future__ import annotations

import os
import random
import zlib

import pytest
import torch

HAS_GPU = torch.cuda.is_available()
if not HAS_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")
    from rocstack_kernels.testing import fix_interpreter_scalar_index

    fix_interpreter_scalar_index()



def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` (realistic shapes, real FP8 hardware) skip with a reason without one."""
    if HAS_GPU:
        return
    skip = pytest.mark.skip(reason="needs a GPU (realistic shapes / FP8 hardware); "
                                   "the interpreter runs the small-shape tests")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if HAS_GPU else "cpu")


# Fresh random inputs every session; ROCSTACK_KERNELS_SEED=<n> (printed in the header) replays one.
SESSION_SEED = int(os.environ.get("ROCSTACK_KERNELS_SEED", random.SystemRandom().randrange(2**31)))


def pytest_report_header(config):
    return f"rocstack-kernels: ROCSTACK_KERNELS_SEED={SESSION_SEED}, " \
           f"{'GPU ' + torch.cuda.get_device_name() if HAS_GPU else 'TRITON_INTERPRET=1 (no GPU)'}"


@pytest.fixture(autouse=True)
def _seed(request):
    # Per test: the session seed mixed with the test's id, so tests draw different inputs.
    torch.manual_seed((SESSION_SEED + zlib.crc32(request.node.nodeid.encode())) % (2**31))
