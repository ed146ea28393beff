"""Tasks that list what rocstack knows: arches, stacks, recipes."""

from __future__ import annotations

import json

from invoke import task
from rich.console import Console
from rich.table import Table

from rocstack.arches import all_arches
from rocstack.cli.common import user_errors
from rocstack.recipes.catalog import Catalog


def _print(table: Table) -> None:
    console = Console()
    if not console.is_terminal:  # piped or logged: don't squeeze the table into 80 columns
        console = Console(width=200)
    console.print(table)


@task(help={"json": "print JSON instead of a table"})
@user_errors
def arches(c, json_=False):
    """List the GPU architectures rocstack can target, with their limits."""
    rows = all_arches().values()
    if json_:
        print(json.dumps([
            {**{k: v for k, v in vars(a).items() if k != "default_features"},
             "mach": f"0x{a.mach:02x}", "fp8_dtypes": a.fp8_dtypes, "default_features": a.default_features}
            for a in rows
        ], indent=2))
        return
    table = Table(title="GPU architectures")
    for column in ("arch", "family", "products", "wave", "waves/SIMD", "VGPRs", "LDS/WG", "FP8", "mach", "min ROCm"):
        table.add_column(column)
    for a in rows:
        fp8 = f"{a.fp8} ({a.fp8_dtypes[0]})" if a.fp8_dtypes else "none"
        table.add_row(a.name, a.family, ", ".join(a.products), str(a.wavefront_size), str(a.max_waves_per_simd),
                      str(a.vgprs_per_simd_lane), f"{a.lds_bytes_per_workgroup // 1024} KiB", fp8, f"0x{a.mach:02x}", a.min_rocm)
    _print(table)


@task
@user_errors
def stacks(c):
    """List the stacks under recipes/stacks/."""
    table = Table(title="Stacks")
    for column in ("stack", "base", "ROCm", "python", "torch", "components", "default arches", "CI"):
        table.add_column(column)
    for s in Catalog.default().stacks():
        base = s.base.image or f"debootstrap {s.base.debootstrap.suite} (local)"
        table.add_row(s.name, base, s.rocm or "-", s.python, f"{s.torch.version} {s.torch.variant}",
                      ", ".join(s.components), ", ".join(s.default_arches), s.ci)
    _print(table)


@task
@user_errors
def recipes(c):
    """List the component recipes under recipes/components/."""
    table = Table(title="Component recipes")
    for column in ("component", "version", "source", "toolchain", "arches"):
        table.add_column(column)
    for r in Catalog.default().components():
        src = r.source
        source = {"git": lambda: f"git {src.tag or src.ref[:12]}", "pypi": lambda: f"pypi {src.package}=={src.version}",
                  "local": lambda: f"local {src.path}"}[src.kind]()
        table.add_row(r.name, r.version, source, r.build.toolchain, ", ".join(r.arches))
    _print(table)


TASKS = [arches, stacks, recipes]
