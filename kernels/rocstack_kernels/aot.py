"""Ahead-of-time build: every registered specialization for every requested target, no GPU needed.

For each ``Specialization`` the builder runs Triton's own argument binder with the
target's backend (the code the JIT runs at launch), so it derives the very
signature, constexprs, divisibility attributes and options a real launch derives,
then ``triton.compile``s it into ``OUT/triton-cache``. The cache key therefore equals
the key of the run-time launch, and ``prebuilt.activate(OUT)`` makes the runtime load
these code objects instead of compiling.

``OUT/manifest.json`` (schema ``rocstack.kernels-build/v1``) lists every entry with
its kernel, target, signature, constexprs, options, status (``built`` / ``unsupported``
/ ``failed``), code object path and sha256, and resource usage decoded from the
code object itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from rocstack_kernels.cache_key import backend_hash_sha, keyed_as, local_basis, runtime_key
from rocstack_kernels.prebuilt import CACHE_SUBDIR, MANIFEST, relocate
from rocstack_kernels.registry import KernelEntry, Specialization, Unsupported
from rocstack_kernels.resources import decode
from rocstack_kernels.target import Target

SCHEMA = "rocstack.kernels-build/v1"


class ExampleTensor:
    """Stands for a tensor argument: only its dtype and alignment matter to specialization."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype

    @staticmethod
    def data_ptr() -> int:
        return 0  # 16-byte aligned, as torch allocations are

    @staticmethod
    def ptr_range() -> int:
        return 0  # under 2 GiB: the AMD backend then specializes for 32-bit buffer offsets


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def compile_specialization(spec: Specialization, target: Target):
    """Compile one specialization for ``target`` into the current Triton cache dir."""
    import triton
    from triton import knobs
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature

    fn = spec.fn
    if not hasattr(fn, "_pack_args"):
        raise ValueError(f"{getattr(fn, '__name__', fn)} is not a compilable triton.jit function "
                         f"(is TRITON_INTERPRET set? unset it for AOT builds)")
    missing = [name for name in fn.arg_names if name not in spec.args]
    if missing:
        raise ValueError(f"specialization {spec.label!r} of {fn.__name__} gives no value for {', '.join(missing)}")
    gpu_target = target.gpu_target()
    backend = make_backend(gpu_target)
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    args = {name: ExampleTensor(v) if isinstance(v, torch.dtype) else v for name, v in spec.args.items()}
    # The same extra options JITFunction.run adds before binding.
    kwargs = {**args, **spec.options,
              "debug": spec.options.get("debug", fn.debug) or knobs.runtime.debug,
              "instrumentation_mode": knobs.compilation.instrumentation_mode}
    bound, specialization, options = binder(**kwargs)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound, specialization, options)
    source = ASTSource(fn, signature, constexprs, attrs)
    kernel = triton.compile(source, target=gpu_target, options=options.__dict__)
    return kernel, signature, constexprs


def _built_entry(entry: KernelEntry, spec: Specialization, target: Target, cache_root: Path,
                 known: frozenset[str] = frozenset()) -> dict:
    """Compile (or find in the persistent cache) one specialization; its entry ends up in ``cache_root``.

    ``known``: entries the persistent cache held before this build. Triton keys an entry by
    the kernel's source (and the functions it calls), the target and the options, so an
    entry found there is exactly what compiling would give: only specializations of an
    edited kernel compile again."""
    from triton.runtime.cache import get_cache_manager

    started = time.perf_counter()
    kernel, signature, constexprs = compile_specialization(spec, target)
    seconds = time.perf_counter() - started
    found = Path(get_cache_manager(kernel.hash).cache_dir)
    folder = cache_root / found.name
    if found != folder:  # compiled into (or found in) the persistent cache: copy the entry into the build
        shutil.copytree(found, folder, dirs_exist_ok=True)
    binary_kind = "hsaco" if target.is_hip else "cubin"
    binary = next(folder.glob(f"*.{binary_kind}"))
    blob = binary.read_bytes()
    return {
        "kernel": entry.name, "function": spec.fn.__name__, "label": spec.label, "target": target.arch,
        "status": "built", "signature": signature,
        "constexprs": {spec.fn.arg_names[path[0]]: _jsonable(value) for path, value in constexprs.items()},
        "options": _jsonable(dict(spec.options)), "cache_key": kernel.hash,
        "code_object": str(binary.relative_to(cache_root.parent)), "code_object_kind": binary_kind,
        "sha256": hashlib.sha256(blob).hexdigest(), "size_bytes": len(blob),
        "resources": decode(binary_kind, blob, int(kernel.metadata.shared)),
        "compile_s": round(seconds, 3), "cached": found.name in known,
    }


def _last_line(exc: Exception) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"


def _progress_line(index: int, total: int, row: dict) -> str:
    head = f"[{index}/{total}] {row['target']:<8} {row['kernel']:<24} {row.get('label', ''):<26}"
    if row["status"] == "built":
        res = row["resources"]
        if "vgprs" in res:
            usage = f"vgpr={res['vgprs']} sgpr={res['sgprs']} spills={res['vgpr_spills']}+{res['sgpr_spills']} lds={res['lds_bytes']}"
        else:
            usage = f"regs={res['registers']} local={res['local_bytes']} shared={res['shared_bytes']}"
        how = "cached" if row.get("cached") else "built "
        return f"{head} {how} {row['compile_s']:6.2f}s  {usage}"
    return f"{head} {row['status']}: {row.get('reason') or row.get('error')}"


def build(targets: list[Target], out_dir: str | os.PathLike, entries: list[KernelEntry],
          progress: Callable[[str], None] = print, keep_ir: bool = False,
          runtime_python: str | None = None, cache_dir: str | os.PathLike | None = None) -> dict:
    """Build everything into ``out_dir`` (replaced atomically); returns the manifest.

    Without ``keep_ir`` only the code objects and Triton's metadata are stored (the
    intermediate IR is ~10x their size); that setting is not part of the cache key.
    ``runtime_python`` keys the build for that Python's triton (see ``cache_key``).
    ``cache_dir``: a Triton cache kept between builds (a BuildKit cache mount in the
    image build): specializations whose kernel source is unchanged are taken from it, so
    editing one kernel recompiles only that kernel's specializations. Not with ``keep_ir``
    (entries there may lack the IR).
    """
    import triton

    basis, key = runtime_key(runtime_python) if runtime_python else (local_basis(), None)

    out = Path(out_dir)
    staging = out.with_name(out.name + f".partial{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    cache_root = staging / CACHE_SUBDIR
    cache_root.mkdir(parents=True)
    plan: list[tuple[Target, KernelEntry, Specialization | Unsupported]] = []
    for target in targets:
        for entry in entries:
            specs = entry.specializations(target)
            plan.extend((target, entry, s) for s in ([specs] if isinstance(specs, Unsupported) else specs))
    rows: list[dict] = []
    persistent = Path(cache_dir) if cache_dir and not keep_ir else None
    known: frozenset[str] = frozenset()
    if persistent is not None:
        persistent.mkdir(parents=True, exist_ok=True)
        known = frozenset(p.name for p in persistent.iterdir())
    with triton.knobs.cache.scope(), triton.knobs.compilation.scope(), keyed_as(key):
        triton.knobs.cache.dir = str(persistent or cache_root)
        triton.knobs.compilation.store_binary_only = not keep_ir
        for index, (target, entry, spec) in enumerate(plan, 1):
            if isinstance(spec, Unsupported):
                row = {"kernel": entry.name, "target": target.arch, "status": "unsupported", "reason": spec.reason}
            else:
                try:
                    row = _built_entry(entry, spec, target, cache_root, known)
                except Exception as exc:  # a compiler failure is a result to record, not a crash
                    row = {"kernel": entry.name, "function": spec.fn.__name__, "label": spec.label,
                           "target": target.arch, "status": "failed", "error": _last_line(exc)}
            rows.append(row)
            progress(_progress_line(index, len(plan), row))
    manifest = {
        "schema": SCHEMA, "triton_version": triton.__version__, "torch_version": torch.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "targets": [t.arch for t in targets], "cache_dir": CACHE_SUBDIR,
        "key_basis": {**basis, "backend_hash_sha256": {t.arch: backend_hash_sha(t) for t in targets}},
        "summary": {status: sum(r["status"] == status for r in rows) for status in ("built", "unsupported", "failed")},
        "from_cache": sum(bool(r.get("cached")) for r in rows),
        "entries": rows,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    relocate(out / CACHE_SUBDIR)  # Triton's group files hold absolute paths of the staging dir
    return manifest
