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

GPU_ONLY = pytest.mark.skipif(not HAS_GPU, reason="realistic shapes need a GPU; the interpreter runs the small ones")


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if HAS_GPU else "cpu")


@pytest.fixture(autouse=True)
def _seed(request):
    # A fresh seed per test, derived from its name: inputs differ between tests, runs reproduce.
    torch.manual_seed(hash(request.node.nodeid) % (2**31))
