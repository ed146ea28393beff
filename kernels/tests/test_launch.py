"""SpecializedLauncher: the first launch per key goes through Triton's dispatch, later ones reuse its kernel."""

from rocstack_kernels.launch import SpecializedLauncher


class _Compiled:
    def __init__(self, log):
        self.log = log

    def run(self):  # the attribute a real CompiledKernel has; never called here
        raise AssertionError

    def __getitem__(self, grid):
        return lambda *args: self.log.append(("direct", grid, args))


class _JitFunction:
    arg_names = ["x", "n", "BLOCK"]

    def __init__(self, returns_kernel=True):
        self.log = []
        self.returns_kernel = returns_kernel

    def __getitem__(self, grid):
        def dispatch(**kwargs):
            self.log.append(("jit", grid, kwargs))
            return _Compiled(self.log) if self.returns_kernel else None
        return dispatch


def test_first_launch_per_key_dispatches_then_the_compiled_kernel_runs_with_args_in_parameter_order():
    fn = _JitFunction()
    launch = SpecializedLauncher(fn)
    launch(("bf16", 64), (4, 1, 1), {"BLOCK": 64, "n": 10, "x": "X"}, {"num_warps": 4})
    launch(("bf16", 64), (8, 1, 1), {"BLOCK": 64, "n": 20, "x": "Y"}, {"num_warps": 4})
    launch(("bf16", 128), (2, 1, 1), {"BLOCK": 128, "n": 30, "x": "Z"}, {"num_warps": 4})
    assert fn.log == [
        ("jit", (4, 1, 1), {"BLOCK": 64, "n": 10, "x": "X", "num_warps": 4}),
        ("direct", (8, 1, 1), ("Y", 20, 64)),
        ("jit", (2, 1, 1), {"BLOCK": 128, "n": 30, "x": "Z", "num_warps": 4}),
    ]


def test_direct_launches_get_a_three_dim_grid():
    """A compiled kernel's launcher indexes grid[1] and grid[2]; a 1-D grid is padded (seen on the H200)."""
    fn = _JitFunction()
    launch = SpecializedLauncher(fn)
    launch("key", (132,), {"BLOCK": 64, "n": 10, "x": "X"}, {})
    launch("key", (132,), {"BLOCK": 64, "n": 11, "x": "Y"}, {})
    launch("key", (7, 2), {"BLOCK": 64, "n": 12, "x": "Z"}, {})
    assert [entry[1] for entry in fn.log] == [(132,), (132, 1, 1), (7, 2, 1)]


def test_interpreted_launches_keep_nothing():
    fn = _JitFunction(returns_kernel=False)  # TRITON_INTERPRET=1: the launch returns None
    launch = SpecializedLauncher(fn)
    for n in (1, 2):
        launch("key", (1,), {"BLOCK": 16, "n": n, "x": "X"}, {})
    assert [entry[0] for entry in fn.log] == ["jit", "jit"] and not launch.compiled
