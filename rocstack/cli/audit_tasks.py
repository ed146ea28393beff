"""``rocstack audit`` / ``invoke audit``: the static binary audit of libraries, code objects and wheels."""

from __future__ import annotations

import sys

from invoke import Exit, task

from rocstack.arches import parse_arch_list
from rocstack.cli.common import user_errors
from rocstack.errors import RocstackError
from rocstack.fsutil import write_atomic

_SPLIT = ","
_BOOLEAN_FLAGS = ("--json", "--help", "-h")


def split_paths(value: str) -> list[str]:
    """``a.so,b.whl`` -> [a.so, b.whl] (invoke passes one positional value; several are joined by commas)."""
    return [p for p in (v.strip() for v in value.split(_SPLIT)) if p]


def join_variadic_paths(argv: list[str], task_name: str = "audit") -> list[str]:
    """``rocstack audit a.so b.so --arch x`` -> ``rocstack audit a.so,b.so --arch x``.

    invoke has no variadic positionals; the console command can call this on argv
    before handing it to invoke so users may list several paths.
    """
    if task_name not in argv:
        return argv
    start = argv.index(task_name) + 1
    out, paths, i = argv[:start], [], start
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            out.append(arg)
            if "=" not in arg and arg not in _BOOLEAN_FLAGS and i + 1 < len(argv):
                out.append(argv[i + 1])
                i += 1
        else:
            paths.append(arg)
        i += 1
    if paths:
        out.insert(start, _SPLIT.join(paths))
    return out


@task(
    positional=["path"],
    auto_shortflags=False,
    help={
        "path": "files, directories or wheels to audit (several: comma-separated)",
        "arch": "GPU targets every fat binary must cover, e.g. gfx942 or gfx90a,gfx942:xnack+",
        "policy": "named policy (manylinux_2_28, debian12, ...), a policy .json or a recipe .yaml; comma-join to merge",
        "sysroot": "root filesystem whose loader paths, libc/libstdc++ and site-packages resolve dependencies",
        "json": "print the rocstack.audit/v1 JSON report instead of the table",
        "output": "also write the JSON report to this file",
        "ld_library_path": "LD_LIBRARY_PATH the libraries run with (colon-separated; default: none)",
    },
)
@user_errors
def audit(c, path, arch="", policy="", sysroot="/", json=False, output="", ld_library_path=""):
    """Audit ELF libraries, AMDGPU code objects and wheels: symbols, versions, RPATH, fat binaries."""
    from rocstack.audit import load_policy, run_audit

    paths = split_paths(path)
    if not paths:
        raise RocstackError("no path to audit", "pass files, directories or wheels: rocstack audit PATH")
    targets = parse_arch_list(arch) if arch else []
    report = run_audit(paths, targets=targets, policy=load_policy(policy), sysroot=sysroot,
                       ld_library_path=[p for p in ld_library_path.split(":") if p])
    if output:
        write_atomic(output, report.to_json() + "\n")
    if json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        from rocstack.audit.table import render

        render(report)
    if report.exit_code:
        raise Exit(code=report.exit_code)


TASKS = [audit]
