"""Run one BuildKit build through the docker CLI: log everything, report progress, stop cleanly.

The CLI runs in its own session so a terminal Ctrl-C reaches only rocstack,
which forwards SIGINT to the CLI (the CLI then cancels the build in the
engine) and waits for it to exit; nothing is tagged by an interrupted build.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from typing import Callable, TextIO

from rocstack.imaging.progress import Step
from rocstack.errors import RocstackError

GRACE_S = 20.0


class BuildInterrupted(RocstackError):
    exit_code = 130


def _stop(proc: subprocess.Popen, log: TextIO) -> None:
    """SIGINT the CLI's process group, give it GRACE_S to cancel the build, then kill it."""
    for sig, wait in ((signal.SIGINT, GRACE_S), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        log.write(f"== rocstack: sent {sig.name} to the build\n")
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def run_logged(
    argv: list[str],
    env: dict[str, str],
    log: TextIO,
    progress,  # anything with feed(line) -> (event, Step) | None: BuildProgress, bake's router
    on_event: Callable[[str, Step], None],
    on_idle: Callable[[], None],
    idle_s: float = 2.0,
    echo: bool = True,
) -> int:
    """Run ``argv``, writing every output line to ``log`` and feeding it to ``progress``.

    ``echo=False``: ``progress`` writes what it wants logged itself (bake's rawjson router).

    Returns the exit status; raises BuildInterrupted on Ctrl-C after the build stopped.
    """
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    pending = b""
    try:
        while True:
            if not selector.select(timeout=idle_s):
                on_idle()
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", errors="replace")
                if echo:
                    log.write(line + "\n")
                event = progress.feed(line)
                if event:
                    on_event(*event)
            log.flush()
        if pending:
            line = pending.decode("utf-8", errors="replace")
            if echo:
                log.write(line + "\n")
            progress.feed(line)
        return proc.wait()
    except KeyboardInterrupt:
        started = time.monotonic()
        log.write("== rocstack: interrupted (Ctrl-C); stopping the build\n")
        _stop(proc, log)
        log.write(f"== rocstack: build stopped after {time.monotonic() - started:.1f}s\n")
        log.flush()
        raise BuildInterrupted(
            "build interrupted: the build was stopped and nothing was tagged",
            f"run the same command again to continue from the cache; log: {getattr(log, 'name', '?')}",
        ) from None
    finally:
        selector.close()
        if proc.poll() is None:
            _stop(proc, log)
        proc.stdout.close()
