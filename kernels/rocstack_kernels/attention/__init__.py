"""Attention kernels: flash-attention prefill and paged-attention decode (Triton)."""

from rocstack_kernels.attention.flash_attention import flash_attention, flash_attention_reference

__all__ = ["flash_attention", "flash_attention_reference"]
