import pytest
import torch

from rocstack_kernels import add_rms_norm, rms_norm
from rocstack_kernels.rms_norm import add_rms_norm_torch, rms_norm_torch
from rocstack_kernels.testing import TOLERANCE, poisoned, rel_err

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Interpreter shapes: one row, odd row counts, odd hidden, and a row longer than the interpreter's
# single-tile limit (256) so the tiled two-pass path runs too.
# (5, 64) runs the several-rows-per-program path (the interpreter config packs 2 rows of <= 64).
SMALL = ((1, 64), (5, 64), (3, 100), (2, 300))
LARGE = ((1, 4096), (7, 5120), (2, 1000), (128, 8192), (5, 12345), (33, 65536), (3, 16384))


def _check_rms(shape, dtype, device, config=None):
    x = torch.randn(shape, dtype=dtype, device=device) * 3
    w = torch.randn(shape[-1], dtype=dtype, device=device)
    out = poisoned(shape, dtype, device)
    assert rms_norm(x, w, 1e-5, out=out, config=config) is out
    ref = rms_norm_torch(x.double(), w.double(), 1e-5, torch.float64)
    assert rel_err(out, ref) < TOLERANCE[dtype]


def _check_add_rms(shape, dtype, device, config=None):
    x = torch.randn(shape, dtype=dtype, device=device)
    residual = torch.randn(shape, dtype=dtype, device=device)
    w = torch.randn(shape[-1], dtype=dtype, device=device)
    ref_out, ref_res = add_rms_norm_torch(x.double(), residual.double(), w.double(), 1e-6, torch.float64)
    out = poisoned(shape, dtype, device)
    got_out, got_res = add_rms_norm(x, residual, w, 1e-6, out=out, config=config)
    assert got_out is out and got_res is residual
    assert rel_err(residual, ref_res) < TOLERANCE[dtype]
    assert rel_err(out, ref_out) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SMALL)
def test_rms_norm_small(shape, dtype, device):
    _check_rms(shape, dtype, device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SMALL)
def test_add_rms_norm_small(shape, dtype, device):
    _check_add_rms(shape, dtype, device)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LARGE)
def test_rms_norm_large(shape, dtype, device):
    _check_rms(shape, dtype, device)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LARGE)
def test_add_rms_norm_large(shape, dtype, device):
    _check_add_rms(shape, dtype, device)


# bf16 rows held in registers as their 16-bit patterns (``bf16_tile_max``) past the
# single-tile limit; the interpreter's limit is 256, so 300 and 1000 take that path there.
BITS = {"bf16_tile_max": 65536, "warps_by_block": [[2048, 4], [4096, 16], [16384, 16], [65536, 32]]}


@pytest.mark.parametrize("shape", ((2, 300), (3, 1000)))
def test_bf16_rows_in_registers_small(shape, device):
    _check_rms(shape, torch.bfloat16, device, BITS)
    _check_add_rms(shape, torch.bfloat16, device, BITS)
    _check_rms(shape, torch.float16, device, BITS)  # not bf16: the tiled path


@pytest.mark.gpu
@pytest.mark.parametrize("shape", ((33, 65536), (5, 12345), (3, 16384 + 8), (7, 40000)))
def test_bf16_rows_in_registers_large(shape, device):
    _check_rms(shape, torch.bfloat16, device, BITS)


def test_rms_norm_3d_input_and_strided_rows(device):
    x = torch.randn(2, 3, 64, device=device)
    w = torch.randn(64, device=device)
    assert rel_err(rms_norm(x, w), rms_norm_torch(x.double(), w.double(), 1e-6, torch.float64)) < 1e-5
    wide = torch.randn(4, 128, device=device)
    view = wide[:, :64]  # row stride 128, last dim contiguous
    assert rel_err(rms_norm(view, w), rms_norm_torch(view.double(), w.double(), 1e-6, torch.float64)) < 1e-5


@pytest.mark.parametrize("call, match", [
    (lambda d: rms_norm(torch.ones(2, 8, dtype=torch.int32, device=d), torch.ones(8, device=d)), "x has dtype int32"),
    (lambda d: rms_norm(torch.ones(2, 8, device=d), torch.ones(7, device=d)), "weight has shape"),
    (lambda d: rms_norm(torch.ones(2, 8, device=d), torch.ones(8, dtype=torch.float16, device=d)), "weight has dtype"),
    (lambda d: rms_norm(torch.ones(8, 4, device=d).t(), torch.ones(8, device=d)), "x must be 2-D with a contiguous"),
    (lambda d: rms_norm(torch.ones(2, 8, device=d), torch.ones(8, device=d), eps=-1.0), "eps"),
    (lambda d: rms_norm(torch.ones(2, 8, device="meta"), torch.ones(8, device="meta")), "x is on meta"),
    (lambda d: rms_norm(torch.ones(2, 8, device=d), torch.ones(8, device="meta")), "weight is on meta but x is on"),
    (lambda d: add_rms_norm(torch.ones(2, 8, device=d), torch.ones(3, 8, device=d), torch.ones(8, device=d)),
     "residual has shape"),
    (lambda d: rms_norm([1.0], torch.ones(8, device=d)), "x must be a torch.Tensor"),
    (lambda d: rms_norm(torch.ones(2, 8, device=d), torch.ones(8, device=d), config={"rows": 2}),
     "config for rms_norm has unknown key"),
])
def test_bad_input_names_the_argument(call, match, device):
    with pytest.raises(ValueError, match=match):
        call(device)
