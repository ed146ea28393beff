"""Fixtures for the upstream-component tests: FBGEMM's published cpu wheels (cached downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pypi_cache import pypi_download


@pytest.fixture(scope="session")
def fbgemm_cpu_wheel() -> Path:
    """FBGEMM_GPU's published cpu wheel, the version the local stack pins (torch 2.13)."""
    return pypi_download("fbgemm-gpu-cpu==1.8.0", "fbgemm_gpu_cpu-1.8.0-*.whl")


@pytest.fixture(scope="session")
def fbgemm_cpu_wheel_for_torch_2_9() -> Path:
    """An older FBGEMM cpu wheel, built against torch 2.9: the wrong torch for this machine."""
    return pypi_download("fbgemm-gpu-cpu==1.4.0", "fbgemm_gpu_cpu-1.4.0-*.whl")
