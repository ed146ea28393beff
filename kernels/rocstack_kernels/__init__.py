"""rocstack-kernels: portable Triton kernels, built ahead of time per GPU arch.

Public API (each a launcher that validates its arguments and raises ValueError
naming a bad one): ``rms_norm``, ``add_rms_norm``, ``rotary_embedding``,
``build_cos_sin_cache``, ``silu_and_mul``, ``quantize_fp8_per_token``,
``fp8_rowwise_gemm``. ``registry`` lists every kernel for the AOT builder and the
bench harness; ``prebuilt.activate(DIR)`` (or ``ROCSTACK_KERNELS_PREBUILT=DIR``)
loads an AOT build so nothing compiles at run time.

The launchers are imported on first use (PEP 562): importing the package, or its
``tasks`` module for the rocstack command, does not import torch and triton. The
prebuilt build is activated at import, before any kernel can compile.
"""

import importlib

from rocstack_kernels.prebuilt import activate as use_prebuilt
from rocstack_kernels.prebuilt import activate_from_env as _activate_from_env

__version__ = "0.1.0"
# public name -> module that defines it
_LAUNCHERS = {
    "rms_norm": "rms_norm", "add_rms_norm": "rms_norm",
    "rotary_embedding": "rotary", "build_cos_sin_cache": "rotary", "Llama3Scaling": "rotary",
    "silu_and_mul": "silu_and_mul",
    "quantize_fp8_per_token": "fp8_quant",
    "fp8_rowwise_gemm": "fp8_gemm",
}
__all__ = [*_LAUNCHERS, "use_prebuilt"]

_activate_from_env()


def __getattr__(name: str):
    module = _LAUNCHERS.get(name)
    if module is None:
        raise AttributeError(f"module 'rocstack_kernels' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rocstack_kernels.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAUNCHERS])
