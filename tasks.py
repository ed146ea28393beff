"""invoke entry point: the same task collection the ``rocstack`` command runs."""

from rocstack.cli.collection import build_collection

ns = build_collection()
