"""Static binary audit: ELF symbol resolution, symbol versions, RPATH, HIP fat binaries, AMDGPU code objects.

Library entry point for the CLI task and for in-image validation::

    from rocstack.audit import run_audit, load_policy
    report = run_audit(["/opt/venv/lib/python3.11/site-packages/xformers"],
                       targets=parse_arch_list("gfx942"), policy=load_policy("manylinux_2_28"))
    report.exit_code, report.findings, report.to_json()
"""

from rocstack.audit.inputs import AuditLimits
from rocstack.audit.policy import AuditPolicy, load_named_policy, load_policy, named_policies
from rocstack.audit.report import SCHEMA, AuditReport, FileSummary, Finding
from rocstack.audit.runner import run_audit

__all__ = [
    "SCHEMA", "AuditLimits", "AuditPolicy", "AuditReport", "FileSummary", "Finding",
    "load_named_policy", "load_policy", "named_policies", "run_audit",
]
