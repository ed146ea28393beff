"""Rendered Dockerfiles of this project's stacks, and the parts of them the upstream tests read."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from rocstack.recipes.catalog import Catalog, select
from rocstack.render import render_dockerfile

REPO = Path(__file__).resolve().parents[2]
CATALOG = Catalog(REPO)


def render(stack: str, arch: str | None = None) -> str:
    return render_dockerfile(select(CATALOG, stack, arch))


def stage(text: str, name: str) -> str:
    """The text of builder stage ``build-<name>`` (up to the next FROM)."""
    match = re.search(rf"^FROM \S+ AS build-{re.escape(name)}\n(.*?)(?=^FROM )", text, re.S | re.M)
    assert match, f"no build-{name} stage rendered"
    return match.group(1)


def stage_env(text: str, name: str) -> dict[str, str]:
    """The ENV values of a builder stage, parsed the way Docker reads them (KEY="value" pairs)."""
    body = stage(text, name)
    env_block = re.search(r"^ENV (.*?)(?=^\S)", body, re.S | re.M).group(1).replace("\\\n", " ")
    return dict(item.split("=", 1) for item in shlex.split(env_block))


def stage_commands(text: str, name: str) -> str:
    return stage(text, name).replace("\\\n", " ")


def run_commands(text: str) -> list[str]:
    """Each RUN's shell command, continuations joined and BuildKit --mount flags removed."""
    joined = text.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        if line.startswith("RUN "):
            words = line[4:].strip()
            while words.startswith("--mount="):
                words = words.split(None, 1)[1]
            commands.append(words)
    return commands
