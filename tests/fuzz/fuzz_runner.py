"""Run a target on mutated inputs in forked workers, with a per-input timeout and an address-space cap.

Input ``i`` of target ``T`` under base seed ``S`` is always the same bytes: seed file ``i mod n``,
mutated by ``random.Random(f"{S}:{T}:{i}")`` (:func:`make_input`). A worker is a fork of this
process (parsers already imported) that takes every ``jobs``-th index and reports each
outcome on a pipe; ``RLIMIT_AS`` caps its memory. The parent watches the pipes:

- an exception the target does not accept, or ``MemoryError`` (the cap) -> a crash, reported by
  the worker with its traceback; the worker goes on;
- no report within ``timeout`` seconds -> a hang: the worker's Python stack is dumped
  (faulthandler on SIGUSR1), it is killed and a fresh worker continues after that input;
- a worker that dies (a signal from a C extension, an abort) -> a crash at the input it was on.

Each crash is saved under ``crash_root/<target>-<index>/`` (``input.bin``, ``crash.json`` with
the seed, the mutation and the traceback) and replays with ``fuzz_replay.py``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import random
import resource
import select
import shutil
import signal
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fuzz_mutate import Seed, mutate
from fuzz_targets import Target

MAX_CRASHES = 5  # saved per target (and the first of each kind); more are counted


@dataclass
class Crash:
    target: str
    index: int
    seed: str
    steps: list[str]
    kind: str  # "exception", "memory", "hang", "died"
    detail: str  # traceback, stack dump or exit status
    directory: Path | None = None

    def headline(self) -> str:
        last = [line for line in self.detail.strip().splitlines() if line.strip()][-1:] or [""]
        return f"{self.target} input {self.index} ({self.seed}): {self.kind}: {last[0][:200]}"


@dataclass
class Result:
    target: str
    seeds: int
    inputs: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    crashes: list[Crash] = field(default_factory=list)  # the first MAX_CRASHES, saved
    crash_kinds: Counter = field(default_factory=Counter)  # every crash, by kind
    slowest: tuple[float, int] = (0.0, -1)  # seconds, index

    @property
    def crash_count(self) -> int:
        return sum(self.crash_kinds.values())


def make_input(target: Target, seeds: list[Seed], base_seed: str, index: int) -> tuple[Seed, bytes, list[str]]:
    """Input ``index`` of ``target``: always the same bytes for the same (base seed, target, index)."""
    seed = seeds[index % len(seeds)]
    rng = random.Random(f"{base_seed}:{target.name}:{index}")
    data, steps = mutate(seed, [s for s in seeds if s is not seed], rng)
    return seed, data, steps


def _vm_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _worker(target: Target, seeds: list[Seed], base_seed: str, start: int, stride: int, deadline: float,
            pipe: int, memory_bytes: int, work: Path, stack_file: Path) -> None:
    """The body of a forked worker: never returns."""
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        limit = _vm_bytes() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        stacks = open(stack_file, "w")
        faulthandler.enable(file=stacks)  # a fatal signal (a C extension's crash) leaves its Python stack
        faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)  # what the parent asks of a hang
        work.mkdir(parents=True, exist_ok=True)
        index = start
        while time.monotonic() < deadline:
            seed, data, _steps = make_input(target, seeds, base_seed, index)
            began = time.perf_counter()
            try:
                message = {"index": index, "outcome": target.run(data, work, seed.name)}
            except MemoryError:
                message = {"index": index, "crash": "memory", "detail": traceback.format_exc()}
            except Exception:  # noqa: BLE001 - whatever the parser let through is the finding
                message = {"index": index, "crash": "exception", "detail": traceback.format_exc()}
            message["seconds"] = time.perf_counter() - began
            os.write(pipe, json.dumps(message).encode() + b"\n")
            index += stride
    except BaseException:  # noqa: BLE001 - a harness failure must show, not hang the parent
        traceback.print_exc()
        status = 3
    finally:
        os._exit(status)


@dataclass
class _Worker:
    pid: int
    fd: int
    next_index: int
    last_seen: float
    stack_file: Path
    buffer: bytes = b""


def fuzz_target(target: Target, *, seconds: float, jobs: int = 1, base_seed: str = "0", timeout: float = 10.0,
                memory_bytes: int = 1 << 30, crash_root: Path, seeds: list[Seed] | None = None) -> Result:
    """Fuzz ``target`` for ``seconds`` with ``jobs`` workers; crashes are saved under ``crash_root``."""
    seeds = target.seeds() if seeds is None else seeds
    if not seeds:
        raise RuntimeError(f"target {target.name} has no seed in its corpus {target.corpus}")
    result = Result(target.name, len(seeds))
    scratch = Path(tempfile.mkdtemp(prefix=f"fuzz-{target.name}-"))
    began = time.monotonic()
    deadline = began + seconds
    workers: dict[int, _Worker] = {}

    def spawn(start: int) -> None:
        stack_file = scratch / f"stack-{start}.txt"
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _worker(target, seeds, base_seed, start, jobs, deadline, write_fd, memory_bytes, scratch / f"w{start}",
                    stack_file)
        os.close(write_fd)
        workers[read_fd] = _Worker(pid, read_fd, start, time.monotonic(), stack_file)

    def record(index: int, kind: str, detail: str) -> None:
        result.crash_kinds[kind] += 1
        if len(result.crashes) < MAX_CRASHES or result.crash_kinds[kind] == 1:  # the first of each kind, always
            seed, data, steps = make_input(target, seeds, base_seed, index)
            crash = Crash(target.name, index, seed.name, steps, kind, detail)
            crash.directory = _save(crash, data, base_seed, crash_root)
            result.crashes.append(crash)

    def finish(worker: _Worker, hung: bool) -> None:
        del workers[worker.fd]
        os.close(worker.fd)
        if hung:
            os.kill(worker.pid, signal.SIGUSR1)  # the stack of the hang, then the end of it
            time.sleep(0.5)
            os.kill(worker.pid, signal.SIGKILL)
        _pid, status = os.waitpid(worker.pid, 0)
        stack = worker.stack_file.read_text(errors="replace") if worker.stack_file.exists() else ""
        if hung:
            record(worker.next_index, "hang", f"no outcome after {timeout:g} s\n{stack}")
        elif os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0:
            how = f"signal {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status) \
                else f"exit status {os.WEXITSTATUS(status)}"
            record(worker.next_index, "died", f"{stack}\nthe worker died ({how}) on this input")
        else:
            return
        if time.monotonic() < deadline:
            spawn(worker.next_index + jobs)

    try:
        for start in range(jobs):
            spawn(start)
        while workers:
            ready, _, _ = select.select(list(workers), [], [], 0.2)
            for fd in ready:
                worker = workers[fd]
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    finish(worker, hung=False)
                    continue
                worker.buffer += chunk
                *lines, worker.buffer = worker.buffer.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    index = message["index"]
                    result.inputs += 1
                    if "crash" in message:
                        result.outcomes["CRASH"] += 1
                        record(index, message["crash"], message["detail"])
                    else:
                        result.outcomes[message["outcome"]] += 1
                    if message["seconds"] > result.slowest[0]:
                        result.slowest = (message["seconds"], index)
                    worker.next_index = index + jobs
                    worker.last_seen = time.monotonic()
            now = time.monotonic()
            for worker in list(workers.values()):
                if now - worker.last_seen > timeout:
                    finish(worker, hung=True)
    finally:
        for worker in list(workers.values()):
            os.kill(worker.pid, signal.SIGKILL)
            os.waitpid(worker.pid, 0)
            os.close(worker.fd)
        shutil.rmtree(scratch, ignore_errors=True)
    result.seconds = time.monotonic() - began
    return result


def _save(crash: Crash, data: bytes, base_seed: str, crash_root: Path) -> Path:
    folder = crash_root / f"{crash.target}-{crash.index}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "input.bin").write_bytes(data)
    (folder / "crash.json").write_text(json.dumps({
        "target": crash.target, "base_seed": base_seed, "index": crash.index, "seed": crash.seed,
        "mutation": crash.steps, "kind": crash.kind, "detail": crash.detail,
        "replay": f"python3 tests/fuzz/fuzz_replay.py {folder}",
    }, indent=2) + "\n")
    return folder
