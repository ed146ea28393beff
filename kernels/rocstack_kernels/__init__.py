"""rocstack-kernels: portable Triton kernels, built ahead of time per GPU arch.

Public API (each a launcher that validates its arguments and raises ValueError
naming a bad one): ``rms_norm``, ``add_rms_norm``, ``rotary_embedding``,
``build_cos_sin_cache``, ``silu_and_mul``, ``quantize_fp8_per_token``,
``fp8_rowwise_gemm``. ``registry`` lists every kernel for the AOT builder and the
bench harness; ``prebuilt.activate(DIR)`` (or ``ROCSTACK_KERNELS_PREBUILT=DIR``)
loads an AOT build so nothing compiles at run time.
"""

from rocstack_kernels.prebuilt import activate as use_prebuilt
from rocstack_kernels.prebuilt import activate_from_env as _activate_from_env
from rocstack_kernels.fp8_gemm import fp8_rowwise_gemm
from rocstack_kernels.fp8_quant import quantize_fp8_per_token
from rocstack_kernels.rms_norm import add_rms_norm, rms_norm
from rocstack_kernels.rotary import Llama3Scaling, build_cos_sin_cache, rotary_embedding
from rocstack_kernels.silu_and_mul import silu_and_mul

__version__ = "0.1.0"
__all__ = ["rms_norm", "add_rms_norm", "rotary_embedding", "build_cos_sin_cache", "Llama3Scaling",
           "silu_and_mul", "quantize_fp8_per_token", "fp8_rowwise_gemm", "use_prebuilt"]

_activate_from_env()
