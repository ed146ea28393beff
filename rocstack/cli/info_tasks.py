"""Tasks that list what rocstack knows: arches, stacks, recipes."""

from __future__ import annotations

import json

from invoke import task

from rocstack.cli.common import print_table, user_errors


@task(help={"json": "print JSON instead of a table"})
@user_errors
def arches(c, json_=False):
    """List the GPU architectures rocstack can target, with their limits."""
    from rocstack.arches import all_arches

    rows = all_arches().values()
    if json_:
        print(json.dumps([
            {**{k: v for k, v in vars(a).items() if k != "default_features"},
             "mach": f"0x{a.mach:02x}", "fp8_dtypes": a.fp8_dtypes, "default_features": a.default_features}
            for a in rows
        ], indent=2))
        return
    columns = ["arch", "family", "products", "wave", "waves/SIMD", "VGPRs", "LDS/WG", "FP8", "mach", "min ROCm"]
    table = []
    for a in rows:
        fp8 = f"{a.fp8} ({a.fp8_dtypes[0]})" if a.fp8_dtypes else "none"
        table.append([a.name, a.family, ", ".join(a.products), str(a.wavefront_size), str(a.max_waves_per_simd),
                      str(a.vgprs_per_simd_lane), f"{a.lds_bytes_per_workgroup // 1024} KiB", fp8, f"0x{a.mach:02x}",
                      a.min_rocm])
    print_table("GPU architectures", columns, table)


@task
@user_errors
def stacks(c):
    """List the stacks under recipes/stacks/."""
    from rocstack.recipes.catalog import Catalog

    rows = []
    for s in Catalog.default().stacks():
        base = s.base.image or f"debootstrap {s.base.debootstrap.suite} (local)"
        rows.append([s.name, base, s.rocm or "-", s.python, f"{s.torch.version} {s.torch.variant}",
                     ", ".join(s.components), ", ".join(map(str, s.default_arches)), s.ci])
    print_table("Stacks", ["stack", "base", "ROCm", "python", "torch", "components", "default arches", "CI"], rows)


@task
@user_errors
def recipes(c):
    """List the component recipes under recipes/components/."""
    from rocstack.recipes.catalog import Catalog

    rows = []
    for r in Catalog.default().components():
        src = r.source
        source = {"git": lambda: f"git {src.tag or src.ref[:12]}", "pypi": lambda: f"pypi {src.package}=={src.version}",
                  "local": lambda: f"local {src.path}"}[src.kind]()
        rows.append([r.name, r.version, source, r.build.toolchain, ", ".join(r.arches)])
    print_table("Component recipes", ["component", "version", "source", "toolchain", "arches"], rows)


TASKS = [arches, stacks, recipes]
