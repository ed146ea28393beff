"""Recipe-declared Python checks (``validation.python_checks``): snippets that must exit 0.

They say what only the component knows how to ask, e.g. xFormers' CK attention operators
are registered in ``torch.ops.xformers`` (an ``_C.so`` built without HIP kernels has
none). Each runs in a fresh interpreter with the component's ``validation.env``; a check
marked ``gpu: true`` is skipped with the reason when there is no GPU, never passed.
"""

from __future__ import annotations

import subprocess
import sys

from rocstack_validation.context import component_env
from rocstack_validation.results import Outcome, skip

CHECK_TIMEOUT_S = 600


def _cause(proc: subprocess.CompletedProcess) -> str:
    """The failure's last line: an AssertionError's message, an ImportError's missing symbol."""
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else f"exit status {proc.returncode} with no message"


def check_declared(component, declared, gpu) -> Outcome:
    """Run one ``PythonCheck`` of the component's recipe."""
    if declared.gpu and not gpu.available:
        return skip(f"no GPU: {gpu.reason}; {declared.name} needs one, so it was not run")
    try:
        proc = subprocess.run([sys.executable, "-c", declared.code], capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT_S, env=component_env(component))
    except subprocess.TimeoutExpired:
        return Outcome("error", f"{declared.name} did not finish in {CHECK_TIMEOUT_S} s")
    where = "on the GPU" if declared.gpu else "in a fresh interpreter"
    if proc.returncode == 0:
        said = proc.stdout.strip().splitlines()[-1:] or [""]
        return Outcome("pass", f"{declared.name} exited 0 {where}" + (f": {said[0][:300]}" if said[0] else ""))
    return Outcome("fail", f"{declared.name} failed {where}: {_cause(proc)}",
                   {"returncode": proc.returncode, "stderr_tail": proc.stderr[-2000:]})
