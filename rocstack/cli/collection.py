"""One task collection, assembled from one module per concern, plus installed plug-ins.

Each task module exposes ``TASKS`` (top-level tasks) and optionally ``GROUPS``
(name -> list of tasks) for sub-collections like ``kernels.build``. Packages that
build on rocstack (rocstack-kernels) add their task modules through the entry-point
group ``rocstack.tasks``: rocstack never imports them by name, so dependencies run
one way.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from invoke import Collection

TASK_MODULES = [
    "rocstack.cli.info_tasks",
    "rocstack.cli.render_tasks",
    "rocstack.cli.registry_tasks",
    "rocstack.cli.validate_tasks",
    "rocstack.cli.audit_tasks",
    "rocstack.cli.build_tasks",
    "rocstack.cli.bake_tasks",
    "rocstack.cli.pins_tasks",
]
ENTRY_POINT_GROUP = "rocstack.tasks"


def _plugin_modules() -> list[str]:
    return [ep.value for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)]


def build_collection() -> Collection:
    namespace = Collection()
    groups: dict[str, Collection] = {}
    for module_name in TASK_MODULES + _plugin_modules():
        module = importlib.import_module(module_name)
        for task in getattr(module, "TASKS", []):
            namespace.add_task(task)
        for group, tasks in getattr(module, "GROUPS", {}).items():
            if group not in groups:
                groups[group] = Collection(group)
                namespace.add_collection(groups[group])
            for task in tasks:
                groups[group].add_task(task)
    return namespace
