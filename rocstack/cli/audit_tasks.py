"""``rocstack audit`` / ``invoke audit``: the static binary audit of libraries, code objects and wheels.

Nothing heavy is imported here: the audit starts in a fraction of a second, so it can
stand beside ``nm``/``objdump`` in a script.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from invoke import Exit, task

from rocstack.cli.common import help_if_asked, user_errors
from rocstack.errors import RocstackError

_SPLIT = ","
_KPACK_ENV = "ROCM_KPACK_"  # the loader variables an audit of this machine (--sysroot /) takes from the process


def split_paths(value: str) -> list[str]:
    """``a.so,b.whl`` -> [a.so, b.whl] (the command line ``rocstack audit a.so b.whl`` arrives joined)."""
    return [p for p in (v.strip() for v in value.split(_SPLIT)) if p]


def run_env(entries: list[str], sysroot: str) -> dict[str, str]:
    """The environment the audited libraries run with: on this machine (sysroot /) the process's
    ``ROCM_KPACK_*``, then each ``--env KEY=VALUE`` (which wins; ``KEY=`` sets it empty)."""
    env = {k: v for k, v in os.environ.items() if k.startswith(_KPACK_ENV)} if os.path.realpath(sysroot) == "/" else {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise RocstackError(f"--env {entry!r} is not KEY=VALUE", "pass --env ROCM_KPACK_PATH=/opt/x.kpack "
                                                                     "(once per variable)")
        env[key.strip()] = value
    return env


def _recipe_policy(path: Path):
    """A recipe's audit policy; the recipe layer (pydantic, YAML) is imported only when a recipe is named."""
    from rocstack.recipes.loader import recipe_audit_policy

    return recipe_audit_policy(path)


@task(
    positional=["path"],
    iterable=["env"],
    auto_shortflags=False,
    help={
        "path": "files, directories or wheels to audit (`rocstack audit A B`; comma-separated for invoke)",
        "arch": "GPU targets every fat binary must cover, e.g. gfx942 or gfx90a,gfx942:xnack+",
        "policy": "named policy (manylinux_2_28, debian12, ...), a policy .json or a recipe .yaml; comma-join to merge",
        "sysroot": "root filesystem whose loader paths, libc/libstdc++ and site-packages resolve dependencies",
        "json": "print the rocstack.audit/v1 JSON report instead of the table",
        "output": "also write the JSON report to this file",
        "ld_library_path": "LD_LIBRARY_PATH the libraries run with (colon-separated; default: none)",
        "env": "KEY=VALUE the libraries run with, repeatable: ROCM_KPACK_PATH, ROCM_KPACK_PATH_PREFIX, "
               "ROCM_KPACK_DISABLE steer kpack archives (default: this process's ROCM_KPACK_* with --sysroot /)",
    },
)
@user_errors
def audit(c, path, arch="", policy="", sysroot="/", json=False, output="", ld_library_path="", env=None):
    """Audit ELF libraries, AMDGPU code objects and wheels: symbols, versions, RPATH, fat binaries."""
    from rocstack.arches import parse_arch_list
    from rocstack.audit import load_policy, run_audit
    from rocstack.fsutil import check_writable, write_atomic
    
    help_if_asked(path, "audit")
    paths = split_paths(path)
    if not paths:
        raise RocstackError("no path to audit", "pass files, directories or wheels: rocstack audit PATH")
    if output:
        check_writable(Path(output), "--output")
    targets = parse_arch_list(arch) if arch else []
    report = run_audit(paths, targets=targets, policy=load_policy(policy, read_recipe=_recipe_policy),
                       sysroot=sysroot,
                       ld_library_path=[p for p in ld_library_path.split(":") if p], env=run_env(env or [], sysroot))
    if output:
        write_atomic(Path(output), report.to_json() + "\n")
    if json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        from rocstack.audit.table import render

        render(report)
    if report.exit_code:
        raise Exit(code=report.exit_code)


TASKS = [audit]
