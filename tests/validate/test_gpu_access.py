"""Which GPU options a container gets, from a fake /dev tree (the boundary); the real no-GPU path runs in the e2e tests."""

from __future__ import annotations

import os
import subprocess

import pytest

from rocstack.validate.gpu_access import detect


def test_amd_devices_groups_and_seccomp(tmp_path):
    (tmp_path / "kfd").write_text("")
    (tmp_path / "dri").mkdir()
    (tmp_path / "dri" / "renderD128").write_text("")
    access = detect(set(), dev_root=str(tmp_path))
    assert access.vendor == "amd" and access.available
    assert access.run_options["devices"] == [f"{tmp_path}/kfd:/dev/kfd:rwm", f"{tmp_path}/dri:/dev/dri:rwm"]
    assert str(os.getgid()) in access.run_options["group_add"]  # the nodes' owning group, by number
    assert all(group.isdigit() for group in access.run_options["group_add"])
    assert access.run_options["security_opt"] == ["seccomp=unconfined"]


def test_nvidia_needs_the_engine_runtime(tmp_path):
    (tmp_path / "nvidiactl").write_text("")
    without = detect({"runc"}, dev_root=str(tmp_path))
    assert not without.available and "nvidia-container-toolkit" in without.reason
    with_runtime = detect({"runc", "nvidia"}, dev_root=str(tmp_path))
    assert with_runtime.vendor == "nvidia"
    assert with_runtime.run_options["device_requests"][0]["Capabilities"] == [["gpu"]]
    assert with_runtime.to_json()["docker_options"] == {"gpus": "all"}


def test_no_gpu_says_what_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi either
    access = detect(set(), dev_root=str(tmp_path))
    assert not access.available and f"{tmp_path}/kfd" in access.reason and access.run_options == {}


@pytest.mark.slow
def test_engine_accepts_the_amd_options_on_a_real_container(docker_engine, valtest_runtime, tmp_path):
    """Stand-in device nodes (char devices aliasing /dev/null) at the kfd/dri paths: the engine must take
    the AMD options as built; the suite inside then finds no usable GPU (CPU torch) and says so."""
    import valtest_cases
    from valtest_build import build_case
    from rocstack.engine import image_facts
    from rocstack.validate.container import run_suite

    (tmp_path / "dri").mkdir()
    for node in ("kfd", "dri/renderD128"):
        if subprocess.run(["mknod", str(tmp_path / node), "c", "1", "3"]).returncode != 0:
            pytest.skip("mknod needs root (CAP_MKNOD)")
    access = detect(set(), dev_root=str(tmp_path))
    assert access.vendor == "amd"
    tag = build_case(docker_engine, valtest_cases.GOOD, valtest_runtime)
    suite = run_suite(docker_engine, image_facts(docker_engine, tag), tag, access)
    gpu = suite["environment"]["gpu"]
    assert gpu["available"] is False and "torch.cuda.is_available() is False" in gpu["reason"]
    statuses = {c["name"]: c["status"] for c in suite["checks"]}
    assert statuses["gpu-arch"] == "skip" and statuses["pytest:valtest-good[gpu]"] == "skip"
