"""Bad inputs, task by task, through the real `rocstack` command.

The promise for every one: exit status non-zero, exactly one line on stderr that starts
with ``error:`` and names the problem and the fix, no traceback, and nothing written
(the output paths named on the command line, and $ROCSTACK_HOME, hold what they held).
Each case needs no engine and no registry: refusals come before any of that work.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_runner import run_cli
from rocstack.cli.collection import build_collection

# (task, arguments, fragments of the one error line). {out} is a fresh directory, {file} a plain file
# in it, {dir} an existing directory in it; {key} a private key file.
CASES = [
    ("arches", ["--bogus"], ["No idea what '--bogus' is", "--help"]),
    ("stacks", ["--bogus"], ["No idea what '--bogus' is"]),
    ("recipes", ["--bogus"], ["No idea what '--bogus' is"]),
    ("render", ["--arch", "gfx9422"], ["unknown arch 'gfx9422'", "did you mean gfx942"]),
    ("render", ["--stack", "nope"], ["unknown stack 'nope'"]),
    ("render", ["--output", "{dir}"], ["--output", "is a directory"]),
    ("render", ["--templates", "{out}/missing"], ["--templates", "is not a directory"]),
    ("base", ["--stack", "rocm70-ubuntu2404"], ["uses the registry image", "base.debootstrap"]),
    ("base", ["--stack", "nope"], ["unknown stack 'nope'"]),
    ("build", ["--arch", "mi300x"], ["MI300X is gfx942"]),
    ("build", ["--arch", "gfx1030"], ["rocstack-kernels cannot target gfx1030"]),
    ("build", ["--wheelhouse", "{out}/none"], ["wheelhouse", "is not a directory"]),
    ("build", ["--wheelhouse", "{out}"], ["has no torch-", "--wheelhouse"]),
    ("build", ["--arch", "gfx942", "--log", "{dir}"], ["--log", "is a directory"]),
    ("build", ["--arch", "gfx942", "--log", "{file}/below.log"], ["cannot write --log"]),
    ("build", ["--arch", "gfx942", "--cache-to", "x"], ["--cache-to", "neither a buildx cache spec nor a registry ref"]),
    ("bake", ["--arch", "gfx1030"], ["rocstack-kernels cannot target gfx1030"]),
    ("bake", ["--stack", "local,local"], ["names a stack twice"]),
    ("bake", ["--stack", "rocm70-ubuntu2404", "--out", "{dir}"], ["--out", "is a directory"]),
    ("bake", ["--stack", "rocm70-ubuntu2404", "--set", "X"], ["has no '='"]),
    ("bake", ["--stack", "rocm70-ubuntu2404", "--cache", "nohost"], ["does not start with a registry host"]),
    ("bake", ["--stack", "rocm70-ubuntu2404", "--print", "--builder", "b"], ["--builder needs --run"]),
    ("build", ["--stack", "debian-rocm", "--arch", "gfx940"], ["toolchain of stack debian-rocm", "cannot target gfx940",
                                                              "unsupported HIP gpu architecture"]),
    ("build", ["--stack", "debian-rocm", "--arch", "gfx1100"], ["ck-fmha cannot target gfx1100"]),
    ("bake", ["--stack", "debian-rocm", "--arch", "gfx940"], ["cannot target gfx940"]),
    ("render", ["--stack", "debian-rocm", "--arch", "gfx942,gfx941"], ["cannot target gfx941"]),
    ("pin-bases", ["--stack", "local"], ["debootstrap", "nothing to pin"]),
    ("apt-versions", [], ["--stack is required"]),
    ("apt-versions", ["--stack", "local"], ["pins no Debian packages"]),
    ("pin-bases", ["--stack", "nope"], ["unknown stack 'nope'"]),
    ("validate", [], ["--image IMG (one or more) or --local"]),
    ("validate", ["--image", "x", "--local"], ["--image IMG (one or more) or --local, not both"]),
    ("validate", ["--image", "x", "--stack", "local"], ["--stack applies to --local only"]),
    ("validate", ["--image", "x", "--arch", "gfx9999"], ["unknown arch 'gfx9999'"]),
    ("validate", ["--local", "--report", "{file}"], ["--report", "is a file, not a directory"]),
    ("validate", ["--local", "--arch", "gfx9999"], ["unknown arch 'gfx9999'"]),
    ("audit", [], ["no path to audit"]),
    ("audit", ["{out}/missing.so"], ["does not exist"]),
    ("audit", ["/bin/true", "--arch", "gfx9999"], ["unknown arch 'gfx9999'"]),
    ("audit", ["/bin/true", "--policy", "manylinux_1"], ["manylinux_1"]),
    ("audit", ["/bin/true", "--output", "{dir}"], ["--output", "is a directory"]),
    ("push", [], ["--image is required"]),
    ("push", ["--image", "x"], ["no registry given"]),
    ("pull", [], ["--arch is required"]),
    ("pull", ["--arch", "gfx9999"], ["unknown arch 'gfx9999'"]),
    ("pull", ["--arch", "gfx942", "--tag", "Not A Name"], ["not a valid image name"]),
    ("images", [], ["no registry given"]),
    ("keys.trust", ["{out}/missing.pub"], ["missing.pub"]),
    ("keys.trust", ["{file}"], ["{file}"]),
    ("keys.untrust", ["ed25519:0000000000000000"], ["ed25519:0000000000000000"]),
    ("kernels.build", [], ["--arch is required"]),
    ("kernels.build", ["--arch", "gfx942"], ["--out is required"]),
    ("kernels.build", ["--arch", "gfx9999", "--out", "{out}/k"], ["unknown arch 'gfx9999'"]),
]


def test_every_task_has_bad_inputs_here():
    covered = {task for task, _, _ in CASES}
    missing = sorted(set(build_collection().task_names) - covered - {"keys.generate", "keys.list", "bench"})
    assert missing == [], f"tasks without a bad-input case: {missing}"


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for root in roots:
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                path = Path(dirpath) / name
                st = path.stat()
                found[str(path)] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.mark.parametrize("task,args,fragments", CASES, ids=[f"{t}:{' '.join(a) or '-'}" for t, a, _ in CASES])
def test_bad_input_is_one_line_and_writes_nothing(task, args, fragments, tmp_path, rocstack_home):
    out = tmp_path / "out"
    (out / "dir").mkdir(parents=True)
    (out / "file").write_text("a plain file\n")
    fill = {"out": str(out), "file": str(out / "file"), "dir": str(out / "dir")}
    argv = [*task.split("."), *(a.format(**fill) for a in args)]
    before = _snapshot(out, rocstack_home)
    result = run_cli(*argv, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and " - " in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment.format(**fill) in lines[0]
    assert _snapshot(out, rocstack_home) == before  # nothing written, nothing half-written
