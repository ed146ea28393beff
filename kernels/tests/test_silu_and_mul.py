import pytest
import torch

from rocstack_kernels import silu_and_mul
from rocstack_kernels.silu_and_mul import silu_and_mul_torch
from rocstack_kernels.testing import TOLERANCE, poisoned, rel_err

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _check(shape, dtype, device):
    x = torch.randn(shape, dtype=dtype, device=device) * 2
    out = poisoned((*shape[:-1], shape[-1] // 2), dtype, device)
    assert silu_and_mul(x, out=out) is out
    assert rel_err(out, silu_and_mul_torch(x.double(), torch.float64)) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 128), (3, 200), (2, 3, 66)])
def test_silu_and_mul_small(shape, dtype, device):
    _check(shape, dtype, device)


@pytest.mark.parametrize("block", [16, 32])
def test_flat_grid_covers_every_row_and_tail_block(block, device):
    """The flat grid's program -> (row, block) split: 5 rows of 50 columns in blocks of 16/32."""
    x = torch.randn(5, 100, device=device)
    out = poisoned((5, 50), torch.float32, device)
    silu_and_mul(x, out=out, config={"block": block})
    assert rel_err(out, silu_and_mul_torch(x.double(), torch.float64)) < TOLERANCE[torch.float32]


def test_unknown_config_key_is_refused(device):
    with pytest.raises(ValueError, match="unknown key"):
        silu_and_mul(torch.randn(2, 8, device=device), config={"blok": 16})


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 28672), (37, 2 * 14336), (1000, 2 * 1000), (5, 2 * 12345)])
def test_silu_and_mul_large(shape, dtype, device):
    _check(shape, dtype, device)


@pytest.mark.parametrize("call, match", [
    (lambda d: silu_and_mul(torch.ones(2, 7, device=d)), "even last dimension"),
    (lambda d: silu_and_mul(torch.ones(2, 8, dtype=torch.int64, device=d)), "x has dtype int64"),
    (lambda d: silu_and_mul(torch.ones(8, 4, device=d).t()), "contiguous in its last dimension"),
    (lambda d: silu_and_mul(torch.ones(2, 8, device=d), out=torch.empty(2, 8, device=d)), "out has shape"),
])
def test_bad_input_names_the_argument(call, match, device):
    with pytest.raises(ValueError, match=match):
        call(device)
