"""Replaying a callable from a CUDA graph: the bench's GPU-time-only timing.

Eager timing of a ~30 us kernel also measures the host: on the H200 machine our
launchers and torch.compile's cost 40-60 us of Python per call, close to the time
``triton.testing.do_bench`` gives the host while its L2 flush runs, so eager rows of
short cases move with the host's jitter. A replayed graph launches the recorded
kernels without Python: what serving engines do for decode steps, and the kernel's
own speed.
"""

from __future__ import annotations

import torch


class GraphReplay:
    """A captured CUDA graph, callable to replay it.

    Holds ``fn`` as well as the graph: the tensors ``fn`` closes over are the graph's
    inputs and outputs, and a replay after they are freed writes into memory the
    allocator has handed back (each later capture starts with ``empty_cache``, so
    an illegal address on the H100 once a sweep captured a second graph). A call
    returns what ``fn`` returned during the capture: its output tensors are the
    graph's, rewritten by every replay.
    """

    def __init__(self, fn):
        self.fn = fn
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up (and any JIT) outside the capture
            fn()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = fn()

    def __call__(self):
        self.graph.replay()
        return self.output
