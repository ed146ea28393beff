"""Kernel tests run on a GPU when torch sees one, else through Triton's CPU interpreter.

TRITON_INTERPRET must be set before triton is imported (triton.jit reads it when the
kernel modules are imported), so it is decided here, at collection time.
"""

from __future__ import annotations

import os

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


@pytest.fixture(autouse=True)
def _seed(request):
    # A fresh seed per test, derived from its name: inputs differ between tests, runs reproduce.
    torch.manual_seed(hash(request.node.nodeid) % (2**31))
