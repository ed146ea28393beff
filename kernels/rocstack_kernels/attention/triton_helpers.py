"""Triton device functions shared by the attention kernels."""

import triton
import triton.language as tl

# exp(x) = exp2(x * LOG2E): the kernels fold LOG2E into the softmax scale and use exp2.
LOG2E = 1.4426950408889634


@triton.jit
def dot(a, b, acc, UPCAST_DOT: tl.constexpr):
    """tl.dot, or a float32 dot of the same (already rounded) operands.

    UPCAST_DOT is set only under TRITON_INTERPRET=1 with bfloat16: Triton 3.6's
    interpreter multiplies bfloat16 tiles as their uint16 storage. Compiled
    kernels never take this path.
    """
    if UPCAST_DOT:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc)
    return tl.dot(a, b, acc)
