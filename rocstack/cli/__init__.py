"""Command-line layer: invoke tasks, shared by ``invoke`` (tasks.py) and the ``rocstack`` command."""
