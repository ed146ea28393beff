import pytest
import torch

from rocstack_kernels import fp8_rowwise_gemm, quantize_fp8_per_token
from rocstack_kernels.fp8_gemm import fp8_rowwise_gemm_torch
from rocstack_kernels.fp8_quant import fp8_max, quantize_fp8_per_token_torch
from rocstack_kernels.target import interpreting, parse_target
from rocstack_kernels.testing import poisoned, rel_err

INTERPRETER_FP8_CAST = ("triton 3.6's interpreter mis-rounds fp32->fp8e4nv at binade edges (124.3 -> 64); "
                        "the quantized values are checked on the GPU")
FNUZ_IN_INTERPRETER = "triton 3.6's interpreter has no fp8e4b8 (e4m3fnuz) type; fnuz is AOT-built for gfx942"


def _native_fp8(device):
    if device.type == "cpu":
        return torch.float8_e4m3fn
    from rocstack_kernels.target import target_of
    return target_of(device).fp8_dtype()


def _check_quant(rows, cols, dtype, device, check_values):
    fp8 = _native_fp8(device)
    x = torch.randn(rows, cols, dtype=dtype, device=device) * 5
    x[0, :] = 0  # an all-zero row keeps a positive scale
    out, scale = poisoned((rows, cols), torch.float32, device).to(fp8), poisoned((rows, 1), torch.float32, device)
    q, s = quantize_fp8_per_token(x, out=out, scale=scale)
    assert q is out and s is scale and q.dtype == fp8
    ref_q, ref_s = quantize_fp8_per_token_torch(x.double(), fp8, torch.float64)
    assert rel_err(s, ref_s) < 1e-6 and (s > 0).all()
    if check_values:
        dequant = q.double() * s.double()
        assert rel_err(dequant, ref_q.double() * ref_s) < 1e-2  # same rounding up to rare ties
        assert rel_err(dequant, x.double()) < 0.05  # e4m3 keeps 3 mantissa bits
        assert q.float().abs().max() <= fp8_max(fp8)


@pytest.mark.parametrize("rows, cols", [(1, 64), (3, 100), (2, 300)])
def test_quantize_scales_small(rows, cols, device):
    _check_quant(rows, cols, torch.bfloat16, device, check_values=not interpreting())
    if interpreting():
        pytest.skip(f"scales checked; values skipped: {INTERPRETER_FP8_CAST}")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("rows, cols", [(1, 4096), (33, 8192), (7, 5000), (4, 65536), (2048, 14336)])
def test_quantize_large(rows, cols, dtype, device):
    _check_quant(rows, cols, dtype, device, check_values=True)


def _check_gemm(m, n, k, device, bias, out_dtype=torch.bfloat16, config=None):
    fp8 = _native_fp8(device)
    x = torch.randn(m, k, device=device)
    w = torch.randn(n, k, device=device)
    # Operands quantized by torch: GEMM correctness does not lean on our quantizer.
    a, scale_a = quantize_fp8_per_token_torch(x, fp8)
    w_q, w_scale = quantize_fp8_per_token_torch(w, fp8)
    b, scale_b = w_q.t(), w_scale.reshape(1, n)
    bias_t = torch.randn(n, device=device, dtype=torch.bfloat16) if bias else None
    out = poisoned((m, n), out_dtype, device)
    assert fp8_rowwise_gemm(a, b, scale_a, scale_b, out_dtype, bias_t, out=out, config=config) is out
    assert rel_err(out, fp8_rowwise_gemm_torch(a, b, scale_a, scale_b, out_dtype, bias_t)) < 1e-2


@pytest.mark.parametrize("m, n, k, bias", [(1, 16, 32, False), (20, 40, 70, True), (33, 17, 64, False)])
def test_gemm_small(m, n, k, bias, device):
    _check_gemm(m, n, k, device, bias)


@pytest.mark.gpu
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("m, n, k, bias", [(1, 4096, 4096, False), (8192, 8192, 8192, False), (777, 1000, 1100, True),
                                           (4096, 14336, 4096, True), (3, 257, 8200, False)])
def test_gemm_large(m, n, k, bias, out_dtype, device):
    _check_gemm(m, n, k, device, bias, out_dtype)


# The TMA kernel (sm90+, and the interpreter): plain, persistent, and persistent with the
# tile and K loops flattened; edges in M, N and K are the copy engine's zero-fill and clipping.
TMA_CONFIGS = [{"tma": True}, {"tma": True, "persistent": True}, {"tma": True, "persistent": True, "flatten": True}]


@pytest.mark.parametrize("config", TMA_CONFIGS, ids=["tma", "persistent", "flattened"])
@pytest.mark.parametrize("m, n, k, bias", [(20, 40, 80, True), (33, 24, 64, False)])
def test_gemm_tma_small(m, n, k, bias, config, device):
    _check_gemm(m, n, k, device, bias, config=config)


@pytest.mark.gpu
@pytest.mark.parametrize("config", TMA_CONFIGS, ids=["tma", "persistent", "flattened"])
@pytest.mark.parametrize("m, n, k, bias", [(8192, 8192, 8192, False), (777, 1000, 1104, True), (3, 264, 8208, False)])
def test_gemm_tma_large(m, n, k, bias, config, device):
    _check_gemm(m, n, k, device, bias, config=config)


def test_fnuz_quantization_runs_where_the_arch_has_it(device):
    if interpreting():
        pytest.skip(FNUZ_IN_INTERPRETER)
    if _native_fp8(device) != torch.float8_e4m3fnuz:
        pytest.skip(f"this GPU's FP8 flavour is {_native_fp8(device)}; e4m3fnuz runs on gfx942 only")
    _check_quant(16, 4096, torch.bfloat16, device, check_values=True)


def test_fp8_flavour_follows_the_arch():
    assert parse_target("gfx942").fp8_dtype() == torch.float8_e4m3fnuz
    assert parse_target("gfx950").fp8_dtype() == torch.float8_e4m3fn
    assert parse_target("gfx1201").fp8_dtype() == torch.float8_e4m3fn
    assert parse_target("sm90").fp8_dtype() == torch.float8_e4m3fn
    assert parse_target("gfx90a").fp8_dtype() is None
    assert "no FP8" in parse_target("gfx90a").fp8_unsupported_reason()


@pytest.mark.parametrize("call, match", [
    (lambda d: quantize_fp8_per_token(torch.ones(2, 3, 4, device=d)), "x must have 2 dimensions"),
    (lambda d: quantize_fp8_per_token(torch.ones(2, 4, device=d), fp8_dtype=torch.float16), "fp8_dtype must be"),
    (lambda d: quantize_fp8_per_token(torch.ones(2, 4, device=d), scale=torch.ones(4, 1, device=d)), "scale has shape"),
    (lambda d: fp8_rowwise_gemm(torch.ones(2, 4, device=d), torch.ones(4, 3, device=d),
                                torch.ones(2, 1, device=d), torch.ones(1, 3, device=d)), "a_fp8 has dtype"),
])
def test_bad_input_names_the_argument(call, match, device):
    with pytest.raises(ValueError, match=match):
        call(device)


def test_gemm_shape_errors_name_the_argument(device):
    fp8 = _native_fp8(device)
    a = torch.zeros(4, 32, device=device).to(fp8)
    b = torch.zeros(16, 32, device=device).to(fp8)
    with pytest.raises(ValueError, match="b_fp8 has shape"):
        fp8_rowwise_gemm(a, b, torch.ones(4, 1, device=device), torch.ones(1, 32, device=device))
    with pytest.raises(ValueError, match="scale_b has shape"):
        fp8_rowwise_gemm(a, b.t(), torch.ones(4, 1, device=device), torch.ones(16, device=device))
    with pytest.raises(ValueError, match="bias has shape"):
        fp8_rowwise_gemm(a, b.t(), torch.ones(4, 1, device=device), torch.ones(1, 16, device=device),
                         bias=torch.ones(3, device=device))
