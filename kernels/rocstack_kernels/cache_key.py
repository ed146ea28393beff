"""What a Triton cache key is made of, so a build is keyed for the triton that will load it.

Triton 3.6 keys a compiled kernel by ``triton_key()`` + source hash + backend hash +
options hash. ``triton_key()`` hashes triton's Python files *and* its
``libtriton.<abi>.so``, so the same triton version under another Python (cp311 here,
cp312 on the GPU machine) has another key, and a build made under one is a cache miss
under the other. The build therefore records the key basis in its manifest, and can be
keyed for another Python's triton (``--runtime-python``): the compiler is the same
version, only the key differs. ``prebuilt.activate`` refuses a build keyed for another
triton build instead of silently recompiling everything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess

_ASK = ("import json, sys, sysconfig, triton; from triton.runtime.cache import triton_key; "
        "print(json.dumps([triton.__version__, triton_key(), sysconfig.get_config_var('EXT_SUFFIX')]))")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def local_basis() -> dict:
    import sysconfig

    import triton
    from triton.runtime.cache import triton_key

    return {"triton_version": triton.__version__, "triton_key_sha256": _sha(triton_key()),
            "python_ext_suffix": sysconfig.get_config_var("EXT_SUFFIX")}


def runtime_key(python: str) -> tuple[dict, str]:
    """Ask another Python's triton for its key; returns (basis, key)."""
    import triton

    try:
        done = subprocess.run([python, "-c", _ASK], capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise ValueError(f"cannot run --runtime-python {python}: {exc.strerror}") from None
    if done.returncode != 0:
        raise ValueError(f"{python} could not report its triton cache key "
                         f"({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no output'}); "
                         f"install triton=={triton.__version__} there")
    version, key, suffix = json.loads(done.stdout.strip().splitlines()[-1])
    if version != triton.__version__:
        raise ValueError(f"{python} has triton {version} but this build runs triton {triton.__version__}; "
                         f"code built by one is not loadable by the other")
    return {"triton_version": version, "triton_key_sha256": _sha(key), "python_ext_suffix": suffix}, key


@contextlib.contextmanager
def keyed_as(key: str | None):
    """Compile with cache keys computed from ``key`` instead of the local ``triton_key()``."""
    import triton.runtime.cache as cache

    if key is None:
        yield
        return
    original = cache.triton_key
    cache.triton_key = lambda: key
    try:
        yield
    finally:
        cache.triton_key = original


def backend_hash_sha(target) -> str:
    from triton.compiler import make_backend

    return _sha(make_backend(target.gpu_target()).hash())
