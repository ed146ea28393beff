"""The no-JIT proof counts compiles of our kernels only.

A bench case's setup warms up its peers, and torch.compile's Inductor compiles Triton kernels
of its own there; those are not run-time compiles of rocstack_kernels and must not fail the
proof (on the H200 they once counted as 8 "run-time compiles" of an AOT build that loaded
every one of our kernels).
"""

from types import SimpleNamespace


from rocstack_kernels.no_jit import _ours
from rocstack_kernels.rms_norm import _rms_norm_kernel


def test_our_jit_functions_are_counted():
    assert _ours(SimpleNamespace(fn=_rms_norm_kernel, name="_rms_norm_kernel"))


def test_a_peers_generated_kernel_is_not_ours():
    inductor = SimpleNamespace(module="torch._inductor.runtime.compile_tasks.cz3abc", __module__="x")
    assert not _ours(SimpleNamespace(fn=inductor, name="triton_per_fused__to_copy_add_mean_mul_pow_rsqrt_0"))
    assert not _ours(SimpleNamespace(name="no fn at all"))
