"""FP8 GEMM with row-wise scales fused into the epilogue (the GEMM half of PTPC-FP8).

``out[m, n] = scale_a[m] * scale_b[n] * sum_k a[m, k] * b[k, n] (+ bias[n])``, with
``a`` [M, K] and ``b`` [K, N] in the arch's FP8 e4m3 flavour (``b`` usually the
transpose of a row-major [N, K] weight, as ``torch._scaled_mm`` takes it), fp32
accumulation, and the scaling, bias and cast applied to the accumulator tile before
the one store - no fp32 [M, N] intermediate ever reaches memory.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from rocstack_kernels import fp8_gemm_tma
from rocstack_kernels.checks import check_same_device, check_shape, check_tensor
from rocstack_kernels.configs import (
    config_for,
    known_keys,
    launch_options,
    override_from_key,
    override_key,
    with_override,
)
from rocstack_kernels.fp8_quant import FP8_DTYPES, quantize_fp8_per_token, quantize_fp8_per_token_torch
from rocstack_kernels.launch import cdiv
from rocstack_kernels.registry import BenchCase, BenchSetup, KernelEntry, Specialization, Unsupported
from rocstack_kernels.target import Target, compute_units, target_of

OUT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
_MAX_ELEMENTS = 2**31  # offsets are 32-bit inside the kernel


@triton.jit(do_not_specialize=["M"])
def _fp8_gemm_kernel(a_ptr, b_ptr, c_ptr, scale_a_ptr, scale_b_ptr, bias_ptr, M, N, K,
                     stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                     GROUP_M: tl.constexpr, EVEN_K: tl.constexpr, HAS_BIAS: tl.constexpr):
    # Grouped tile order: GROUP_M row-tiles share their B columns while they are in L2.
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    group_size = GROUP_M * num_pid_n
    first_m = (pid // group_size) * GROUP_M
    rows_in_group = min(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + ((pid % group_size) % rows_in_group)
    pid_n = (pid % group_size) // rows_in_group

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    # Wrap out-of-range rows/cols onto valid ones: loads need no mask, the store masks them.
    offs_am = tl.max_contiguous(tl.multiple_of(offs_m % M, BLOCK_M), BLOCK_M)
    offs_bn = tl.max_contiguous(tl.multiple_of(offs_n % N, BLOCK_N), BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k_tile in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            k_left = K - k_tile * BLOCK_K
            a = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
            b = tl.load(b_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
        acc = tl.dot(a, b, acc)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    # Epilogue: row and column scales (and bias) on the fp32 tile, one cast, one store.
    mask_m = offs_m < M
    mask_n = offs_n < N
    scale_a = tl.load(scale_a_ptr + offs_m, mask=mask_m, other=0.0)
    scale_b = tl.load(scale_b_ptr + offs_n, mask=mask_n, other=0.0)
    acc = acc * scale_a[:, None] * scale_b[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    c_ptrs = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_n[None, :])


def _plan(target: Target, k: int, has_bias: bool, override: dict | None = None,
          tma: bool = False) -> tuple[dict, dict]:
    """Constexprs and options of one launch (cached; callers must not modify them).

    ``override`` replaces keys of the arch's config (``block_m``, ``num_stages``, ...): for sweeps.
    ``tma``: the constexprs of the TMA kernel (``fp8_gemm_tma``) instead of the pointer kernel's.
    """
    return _cached_plan(target, k, has_bias, override_key(override), tma)


@functools.lru_cache(maxsize=256)
def _cached_plan(target: Target, k: int, has_bias: bool, override: str | None, tma: bool) -> tuple[dict, dict]:
    config = _config(target, override)
    constexprs = {"BLOCK_M": config["block_m"], "BLOCK_N": config["block_n"], "BLOCK_K": config["block_k"],
                  "GROUP_M": config["group_m"], "HAS_BIAS": has_bias}
    if tma:
        constexprs.update(PERSISTENT=bool(config["persistent"]), FLATTEN=bool(config["flatten"]))
    else:
        constexprs["EVEN_K"] = k % config["block_k"] == 0
    return constexprs, launch_options(config, target)


@functools.lru_cache(maxsize=256)
def _config(target: Target, override: str | None) -> dict:
    return with_override(config_for("fp8_rowwise_gemm", target), override_from_key(override),
                         known_keys("fp8_rowwise_gemm"), "fp8_rowwise_gemm")


def _uses_tma(target: Target, config: dict, a, b, out) -> bool:
    """The TMA kernel runs where the config asks for it, the target has TMA and the layouts fit."""
    return bool(config["tma"]) and fp8_gemm_tma.has_tma(target) and fp8_gemm_tma.describable(a, b, out)


def _check(a, b, scale_a, scale_b, out_dtype, bias):
    check_tensor("a_fp8", a, dtypes=FP8_DTYPES, ndim=2)
    check_tensor("b_fp8", b, dtypes=(a.dtype,), ndim=2)
    m, k = a.shape
    if b.shape[0] != k:
        raise ValueError(f"b_fp8 has shape {tuple(b.shape)}; its first dim must be K={k} (a_fp8 is {tuple(a.shape)}); "
                         f"pass the [N, K] weight as weight.t()")
    n = b.shape[1]
    check_tensor("scale_a", scale_a, dtypes=(torch.float32,), contiguous=True)
    check_shape("scale_a", scale_a, (m, 1), "one fp32 scale per row of a_fp8")
    check_tensor("scale_b", scale_b, dtypes=(torch.float32,), contiguous=True)
    check_shape("scale_b", scale_b, (1, n), "one fp32 scale per column of b_fp8")
    if out_dtype not in OUT_DTYPES:
        raise ValueError(f"out_dtype must be one of bfloat16, float16, float32, got {out_dtype}")
    if bias is not None:
        check_tensor("bias", bias, dtypes=(torch.bfloat16, torch.float16, torch.float32), contiguous=True)
        check_shape("bias", bias, (n,), "one value per output column")
    for name, tensor in (("a_fp8", a), ("b_fp8", b)):
        if tensor.numel() >= _MAX_ELEMENTS:
            raise ValueError(f"{name} has {tensor.numel()} elements; the kernel indexes with 32 bits "
                             f"(at most {_MAX_ELEMENTS - 1}) - split the GEMM")
    if m * n >= _MAX_ELEMENTS:
        raise ValueError(f"the output would have {m * n} elements; at most {_MAX_ELEMENTS - 1} - split the GEMM")
    check_same_device(a_fp8=a, b_fp8=b, scale_a=scale_a, scale_b=scale_b, bias=bias)
    target = target_of(a.device)
    if target.fp8_dtype() is None:
        raise ValueError(f"FP8 GEMM is not available on this GPU: {target.fp8_unsupported_reason()}")
    if target.backend != "interpreter" and a.dtype != target.fp8_dtype():
        raise ValueError(f"a_fp8 is {a.dtype} but {target.arch} computes in {target.fp8_dtype()}")
    return m, n, k


def fp8_rowwise_gemm(a_fp8: torch.Tensor, b_fp8: torch.Tensor, scale_a: torch.Tensor, scale_b: torch.Tensor,
                     out_dtype: torch.dtype = torch.bfloat16, bias: torch.Tensor | None = None,
                     out: torch.Tensor | None = None, config: dict | None = None) -> torch.Tensor:
    """``(a_fp8 @ b_fp8) * scale_a * scale_b (+ bias)`` as ``out_dtype`` [M, N].

    ``config`` overrides keys of the per-arch launch config; it exists for tuning sweeps.
    """
    m, n, k = _check(a_fp8, b_fp8, scale_a, scale_b, out_dtype, bias)
    if out is None:
        out = torch.empty((m, n), dtype=out_dtype, device=a_fp8.device)
    else:
        check_tensor("out", out, dtypes=(out_dtype,), ndim=2)
        check_shape("out", out, (m, n), "[M, N]")
        check_same_device(a_fp8=a_fp8, out=out)
    if m == 0 or n == 0:
        return out
    if k == 0:
        return out.copy_(bias.expand(m, n) if bias is not None else torch.zeros_like(out))
    target = target_of(a_fp8.device)
    if _uses_tma(target, _config(target, override_key(config)), a_fp8, b_fp8, out):
        constexprs, options = _plan(target, k, bias is not None, config, tma=True)
        fp8_gemm_tma.launch(a_fp8, b_fp8, out, scale_a, scale_b, bias, constexprs, options,
                            compute_units(a_fp8.device))
        return out
    constexprs, options = _plan(target, k, bias is not None, config)
    grid = (cdiv(m, constexprs["BLOCK_M"]) * cdiv(n, constexprs["BLOCK_N"]),)
    _fp8_gemm_kernel[grid](a_fp8, b_fp8, out, scale_a, scale_b, bias if bias is not None else scale_b,
                           m, n, k, a_fp8.stride(0), a_fp8.stride(1), b_fp8.stride(0), b_fp8.stride(1),
                           out.stride(0), out.stride(1), **constexprs, **options)
    return out


def fp8_rowwise_gemm_torch(a_fp8, b_fp8, scale_a, scale_b, out_dtype=torch.bfloat16, bias=None):
    """Float64 reference: dequantize, multiply, add bias."""
    result = (a_fp8.double() * scale_a.double()) @ (b_fp8.double() * scale_b.double())
    if bias is not None:
        result = result + bias.double()
    return result


def _specializations(target: Target) -> list[Specialization] | Unsupported:
    fp8 = target.fp8_dtype()
    if fp8 is None:
        return Unsupported(target.fp8_unsupported_reason())
    specs = []
    # [M, K] row-major activations times a [N, K] row-major weight passed transposed.
    for k in (8192, 8200):
        for has_bias in (False, True):
            constexprs, options = _plan(target, k, has_bias)
            args = {"a_ptr": fp8, "b_ptr": fp8, "c_ptr": torch.bfloat16, "scale_a_ptr": torch.float32,
                    "scale_b_ptr": torch.float32, "bias_ptr": torch.bfloat16 if has_bias else torch.float32,
                    "M": 8192, "N": 8192, "K": k, "stride_am": k, "stride_ak": 1, "stride_bk": 1,
                    "stride_bn": k, "stride_cm": 8192, "stride_cn": 1, **constexprs}
            label = f"bf16 out{' +bias' if has_bias else ''}{'' if constexprs['EVEN_K'] else ' ragged-K'}"
            specs.append(Specialization(_fp8_gemm_kernel, label, args, options))
            if constexprs["EVEN_K"]:
                specs.extend(_tma_specializations(target, fp8, k, has_bias))
    return specs


def _tma_specializations(target: Target, fp8: torch.dtype, k: int, has_bias: bool) -> list[Specialization]:
    """The TMA kernel's launch where the arch's config picks it (layouts a descriptor fits;
    others, such as a ragged K row of 8200 bytes, take the pointer kernel above)."""
    if not (_config(target, None)["tma"] and fp8_gemm_tma.has_tma(target)) or target.backend == "interpreter":
        return []
    from rocstack_kernels.aot import ExampleTensor

    constexprs, options = _plan(target, k, has_bias, tma=True)

    def describe(dtype, cols, block_rows, block_cols):
        return fp8_gemm_tma.TensorDescriptor(ExampleTensor(dtype), [8192, cols], [cols, 1], [block_rows, block_cols])

    args = {"a_desc": describe(fp8, k, constexprs["BLOCK_M"], constexprs["BLOCK_K"]),
            "b_desc": describe(fp8, k, constexprs["BLOCK_N"], constexprs["BLOCK_K"]),
            "c_desc": describe(torch.bfloat16, 8192, constexprs["BLOCK_M"], constexprs["BLOCK_N"]),
            "scale_a_ptr": torch.float32, "scale_b_ptr": torch.float32,
            "bias_ptr": torch.bfloat16 if has_bias else torch.float32, "M": 8192, "N": 8192, "K": k, **constexprs}
    mode = "persistent" if constexprs["PERSISTENT"] else "tiled"
    label = f"bf16 out{' +bias' if has_bias else ''} tma {mode}{' flattened' if constexprs['FLATTEN'] else ''}"
    return [Specialization(fp8_gemm_tma.fp8_gemm_tma_kernel, label, args, options)]


def _operands(m: int, n: int, k: int, device):
    from rocstack_kernels.fp8_quant import resolve_fp8_dtype

    fp8 = resolve_fp8_dtype(device, None)
    x = torch.randn(m, k, device=device, dtype=torch.bfloat16)
    weight = torch.randn(n, k, device=device, dtype=torch.bfloat16)
    w_q, w_scale = quantize_fp8_per_token(weight, fp8)
    return fp8, x, w_q.t(), w_scale.reshape(1, n)


def _bench_gemm(m: int, n: int, k: int) -> BenchCase:
    def setup(device) -> BenchSetup:
        fp8, x, b, scale_b = _operands(m, n, k, device)
        a, scale_a = quantize_fp8_per_token(x, fp8)
        return BenchSetup(run=lambda: fp8_rowwise_gemm(a, b, scale_a, scale_b), ceiling="fp8_mm", flops=2 * m * n * k,
                          peers={"torch._scaled_mm rowwise": lambda: torch._scaled_mm(
                              a, b, scale_a, scale_b, out_dtype=torch.bfloat16)},
                          variant=lambda config: lambda: fp8_rowwise_gemm(a, b, scale_a, scale_b, config=config))
    return BenchCase(f"{m}x{n}x{k}", setup)


def _bench_quant_gemm(m: int, n: int, k: int) -> BenchCase:
    def setup(device) -> BenchSetup:
        fp8, x, b, scale_b = _operands(m, n, k, device)

        def ours():
            a, scale_a = quantize_fp8_per_token(x, fp8)
            return fp8_rowwise_gemm(a, b, scale_a, scale_b)

        def torch_quant_scaled_mm():
            a, scale_a = quantize_fp8_per_token_torch(x, fp8)
            return torch._scaled_mm(a, b, scale_a, scale_b, out_dtype=torch.bfloat16)

        return BenchSetup(run=ours, ceiling="fp8_mm", flops=2 * m * n * k,
                          peers={"torch quant + _scaled_mm": torch_quant_scaled_mm})
    return BenchCase(f"quant+gemm {m}x{n}x{k}", setup)


KERNELS = (
    KernelEntry("fp8_rowwise_gemm", _specializations,
                lambda: [_bench_gemm(8192, 8192, 8192), _bench_gemm(4096, 14336, 4096),
                         _bench_quant_gemm(8192, 8192, 8192)],
                "FP8 GEMM, per-token x per-channel scales fused in the epilogue"),
)
