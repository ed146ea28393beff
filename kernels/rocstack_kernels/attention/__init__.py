"""Attention kernels in Triton: flash-attention prefill and paged-attention decode.

Each module holds the kernel(s), the launcher and a float64 torch reference, and
registers itself in ``rocstack_kernels.registry`` (AOT specializations, bench cases).
Fully masked rows (no visible key) and empty sequences produce zeros (and
lse = -inf) by definition.
"""

from rocstack_kernels.attention.flash_attention import flash_attention, flash_attention_reference
from rocstack_kernels.attention.paged_attention import paged_attention_decode, paged_attention_reference

__all__ = ["flash_attention", "flash_attention_reference", "paged_attention_decode", "paged_attention_reference"]
