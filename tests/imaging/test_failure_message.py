"""The one-line failure of a build: component, stage, step, error, log path."""

from __future__ import annotations

from pathlib import Path

from rocstack.imaging.builder import describe_failure
from rocstack.imaging.progress import parse_log

from build_helpers import SAMPLE_DOCKERFILE as DOCKERFILE
from build_helpers import SAMPLE_LOG as LOG

ROLES = {"build-rocstack-kernels": "rocstack-kernels", "python-env": "torch, triton, rocstack"}


def test_a_component_step_failure_names_component_stage_step_and_keeps_its_output():
    log = LOG.replace("#14 DONE 14.3s", "#14 ERROR: executor failed running [/bin/sh -c rocstack kernels build]: exit code: 3")
    failure = describe_failure(parse_log(log, DOCKERFILE), ROLES, Path("/logs/b.log"), 1)
    assert failure.exit_code == 1
    assert failure.one_line().startswith(
        "component rocstack-kernels failed in stage build-rocstack-kernels (3/4), step 2/2: `RUN rocstack kernels build`"
    )
    assert failure.one_line().endswith("full log: /logs/b.log")
    assert failure.tail == ["[1/2] gfx942 rms_norm built", "[2/2] gfx942 silu built"]


def test_a_shared_stage_failure_says_what_the_stage_builds():
    log = LOG.replace("#8 CACHED", "#8 ERROR: executor failed running [/bin/sh -c pip install torch]: exit code: 1")
    failure = describe_failure(parse_log(log, DOCKERFILE), ROLES, Path("/logs/b.log"), 1)
    assert failure.one_line().startswith("stage python-env (2/4), step 1/1 (torch, triton, rocstack) failed")


def test_a_failure_outside_any_step_quotes_the_engine():
    log = "#1 [internal] load build definition from Dockerfile\nerror: failed to solve: failed to read dockerfile: no such file\n"
    failure = describe_failure(parse_log(log, DOCKERFILE), ROLES, Path("/logs/b.log"), 1)
    assert failure.one_line().startswith("the build failed: error: failed to solve: failed to read dockerfile")
    assert failure.tail[-1].startswith("error: failed to solve")


def test_an_unreachable_base_image_is_named_with_what_to_do():
    log = (
        "#3 [internal] load metadata for docker.io/rocm/dev-ubuntu-22.04:6.4.1-complete\n"
        "#3 ERROR: failed to do request: Head \"https://registry-1.docker.io/v2/...\": dial tcp: no such host\n"
        "error: failed to solve with frontend dockerfile.v0: failed to create LLB definition\n"
    )
    failure = describe_failure(parse_log(log, DOCKERFILE), ROLES, Path("/logs/b.log"), 1)
    line = failure.one_line()
    assert line.startswith("cannot get the base image docker.io/rocm/dev-ubuntu-22.04:6.4.1-complete: failed to do request")
    assert "docker load" in line and line.endswith("full log: /logs/b.log")
