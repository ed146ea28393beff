"""Shared helpers of the build tests: a throw-away copy of the project to edit and build."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cli_runner import run_cli
from rocstack.imaging.context import snapshot_project

REPO = Path(__file__).resolve().parents[2]
# Image repositories of this test session: distinct from rocstack/*, from other test
# suites and from a concurrent session of these tests; removed when the session ends.
TEST_PREFIX = f"rocstack-buildtest-{os.getpid()}"


def copy_project(target: Path, source: Path = REPO) -> Path:
    """Copy what a build uses (package, recipes, images, kernels, suite) to ``target``."""
    return snapshot_project(source, target)


def cli_build(env: dict, *args: str) -> dict:
    """``rocstack build ARGS --json`` in a subprocess; the parsed result (fails the test on error)."""
    result = run_cli("build", *args, "--json", env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


# A rendered-like Dockerfile and lines as Docker 20.10's BuildKit prints them for it
# (taken from a real build log, shortened).
SAMPLE_DOCKERFILE = """\
FROM rocstack-base/local:bookworm-f64e927caea2 AS base
RUN python3 -m venv /opt/venv
FROM base AS python-env
RUN pip install torch
FROM python-env AS build-rocstack-kernels
COPY sources/rocstack-kernels /src/rocstack-kernels
RUN rocstack kernels build
FROM python-env AS runtime
COPY --from=build-rocstack-kernels /out/aot /opt/rocstack/kernels
"""

SAMPLE_LOG = """\
#1 [internal] load build definition from Dockerfile
#1 sha256:e86cc3d7b56e340a74877c5e3dfc4cdc4ac70d591b9d9958b3fa00b3588777c8
#1 transferring dockerfile: 3.39kB done
#1 DONE 0.0s

#4 [base 1/2] FROM docker.io/rocstack-base/local:bookworm-f64e927caea2
#4 DONE 0.0s

#5 [internal] load build context
#5 transferring context: 192.68MB 3.0s done
#5 DONE 3.1s

#7 [base 2/2] RUN python3 -m venv /opt/venv
#7 CACHED

#8 [python-env 1/1] RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked     --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf     pip install torch
#8 CACHED

#12 [build-rocstack-kernels 1/2] COPY sources/rocstack-kernels /src/rocstack-kernels
#12 DONE 0.1s

#14 [build-rocstack-kernels 2/2] RUN --mount=type=cache,target=/root/.cache/pip     rocstack kernels build
#14 7.578 [1/2] gfx942 rms_norm built
#14 ...

#16 [runtime 1/1] COPY --from=build-rocstack-kernels /out/aot /opt/rocstack/kernels
#16 CACHED

#14 [build-rocstack-kernels 2/2] RUN --mount=type=cache,target=/root/.cache/pip     rocstack kernels build
#14 9.100 [2/2] gfx942 silu built
#14 DONE 14.3s

#19 exporting to image
#19 exporting layers 0.3s done
#19 writing image sha256:4e2b done
#19 DONE 0.4s
"""
