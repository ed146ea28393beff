"""One task collection, assembled from one module per concern.

Each task module exposes ``TASKS`` (top-level tasks) and optionally
``GROUPS`` (name -> list of tasks) for sub-collections like ``kernels.build``.
"""

from __future__ import annotations

import importlib

from invoke import Collection

TASK_MODULES = [
    "rocstack.cli.info_tasks",
    "rocstack.cli.render_tasks",
    "rocstack.cli.registry_tasks",
    "rocstack.cli.validate_tasks",
    "rocstack.cli.audit_tasks",
    "rocstack.cli.build_tasks",
    "rocstack.cli.kernels_tasks",
]


def build_collection() -> Collection:
    namespace = Collection()
    for module_name in TASK_MODULES:
        module = importlib.import_module(module_name)
        for task in getattr(module, "TASKS", []):
            namespace.add_task(task)
        for group, tasks in getattr(module, "GROUPS", {}).items():
            sub = Collection(group)
            for task in tasks:
                sub.add_task(task)
            namespace.add_collection(sub)
    return namespace
