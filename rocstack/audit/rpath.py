"""Check 4: RPATH/RUNPATH hygiene.

Build-tree paths leak the builder's layout and, under world-writable dirs like
/tmp, let any user plant a library the process will load. Empty entries mean
"the current directory" to ld.so. ``$ORIGIN``-relative entries are the portable
way and are fine as long as they point somewhere that exists.
"""

from __future__ import annotations

import os

from rocstack.audit.report import CHECK_RPATH, AuditReport
from rocstack.audit.resolve import LoadedLib, Loader

_WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")
_BUILD_TREES = ("/root", "/build", "/home", "/__w", "/workspace", "/github", "/opt/conda/conda-bld")

# Absolute entries under these roots are findings, first match wins:
# (roots, severity, message with {tag}/{entry}/{root}, hint).
_BAD_ROOTS = (
    (_WORLD_WRITABLE, "error", "{tag} entry {entry} is under world-writable {root}: anyone can plant a library there",
     "use $ORIGIN-relative entries (patchelf --set-rpath '$ORIGIN/...')"),
    (_BUILD_TREES, "warning", "{tag} entry {entry} points into a build tree ({root})",
     "use $ORIGIN-relative entries or the install prefix"),
)


def _under(path: str, roots: tuple[str, ...]) -> str | None:
    for root in roots:
        if path == root or path.startswith(root + "/"):
            return root
    return None


def check_rpath(report: AuditReport, label: str, lib: LoadedLib, loader: Loader) -> None:
    for tag, entries in (("RPATH", lib.rpath), ("RUNPATH", lib.runpath)):
        for entry in entries:
            if entry == "":
                report.add(CHECK_RPATH, "warning", label,
                           f"empty {tag} entry: ld.so searches the current working directory",
                           evidence=f"{tag}={':'.join(entries)}",
                           hint="remove the stray ':' from the linker's -rpath (e.g. patchelf --set-rpath)")
                continue
            if not entry.startswith("$"):
                finding = next(((severity, message.format(tag=tag, entry=entry, root=root), hint)
                                for roots, severity, message, hint in _BAD_ROOTS
                                if (root := _under(entry, roots))), None)
                if finding:
                    severity, message, hint = finding
                    report.add(CHECK_RPATH, severity, label, message,
                               evidence=f"{tag}={':'.join(entries)}", hint=hint)
                    continue
            expanded = loader.expand(entry, lib)
            if expanded and not os.path.isdir(expanded):
                report.add(CHECK_RPATH, "warning", label, f"{tag} entry {entry} does not exist",
                           evidence=f"expands to {expanded}",
                           hint="fix the entry or install what it should point at")
