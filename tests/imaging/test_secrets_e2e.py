"""On the real engine: host index settings reach pip in the build and never an image layer or history."""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

import pytest

from build_helpers import REPO
from rocstack.imaging.base import ensure_base
from rocstack.engine import buildkit_cli
from rocstack.imaging.index import build_secret_args, host_index_settings
from rocstack.imaging.progress import BuildProgress
from rocstack.imaging.runner import run_logged
from rocstack.recipes.catalog import Catalog

pytestmark = pytest.mark.slow

_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END CERTIFICATE-----", re.S)


def _image_bytes_contain(client, image_id: str, needles: list[bytes]) -> list[bytes]:
    """Needles found in ``docker save`` of the image (every layer and the config), streamed."""
    found, keep, tail = set(), max(map(len, needles)), b""
    for chunk in client.images.get(image_id).save(chunk_size=1 << 20):
        window = tail + chunk
        found.update(n for n in needles if n in window)
        tail = window[-keep:]
    return sorted(found)


def _host_only_certs(client, image_id: str) -> list[bytes]:
    """Lines of CA certificates the host trusts but Debian does not: a TLS proxy's CA, if any."""
    settings = host_index_settings(sys.executable)
    if settings.cert is None:
        return []
    host = set(_CERT.findall(settings.cert.read_text()))
    debian = client.containers.run(image_id, ["cat", "/etc/ssl/certs/ca-certificates.crt"], remove=True).decode()
    extra = host - set(_CERT.findall(debian))
    return [cert.splitlines()[2].encode() for cert in extra if len(cert.splitlines()) > 3]


def test_index_settings_reach_pip_but_no_layer_or_history(docker_engine, tmp_path, monkeypatch):
    # The Dockerfile greps for the prefix only: the full marker reaches the build solely
    # through the settings, so finding it in the image would be a real leak.
    marker = f"leak-marker-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("PIP_TRUSTED_HOST", f"{marker}.invalid")  # harmless to pip, easy to grep
    monkeypatch.setenv("no_proxy", f"{marker}-proxy.invalid")
    base = ensure_base(docker_engine, Catalog(REPO).stack("local"))
    context = tmp_path / "context"
    context.mkdir()
    (context / "rocstack-pip").write_bytes((REPO / "images/files/rocstack-pip.sh").read_bytes())
    (context / "Dockerfile").write_text(
        f"FROM {base.tag}\n"
        "COPY rocstack-pip /usr/local/bin/rocstack-pip\n"
        "RUN chmod +x /usr/local/bin/rocstack-pip && python3 -m venv /opt/venv\n"
        "ENV PATH=/opt/venv/bin:$PATH\n"
        "RUN --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert "
        "--mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf "
        "echo \"conf-has-marker=$(grep -c leak-marker- /run/secrets/pip_conf)\" "
        "&& echo \"proxy-arg-has-marker=$(echo $no_proxy | grep -c leak-marker-)\" "
        "&& rocstack-pip install --no-cache-dir six==1.17.0 && python -c 'import six'\n"
    )
    settings = host_index_settings(sys.executable)
    cli = buildkit_cli()
    iidfile = tmp_path / "iid"
    progress = BuildProgress((context / "Dockerfile").read_text())
    with open(tmp_path / "build.log", "w") as log, build_secret_args(settings) as secrets:
        argv = [*cli.argv, "--progress=plain", "--no-cache", "--iidfile", str(iidfile), *secrets, str(context)]
        rc = run_logged(argv, cli.environment(), log, progress, lambda *a: None, lambda: None)
    text = (tmp_path / "build.log").read_text()
    assert rc == 0, text[-3000:]
    # Positive controls: the RUN saw the settings (so their absence below means something).
    assert "conf-has-marker=1" in text and "proxy-arg-has-marker=1" in text
    assert "Successfully installed six" in text  # pip got through with the host CA bundle
    image_id = iidfile.read_text().strip()
    try:
        history = json.dumps(docker_engine.api.history(image_id)) + json.dumps(docker_engine.images.get(image_id).attrs)
        assert marker not in history
        needles = [marker.encode(), *_host_only_certs(docker_engine, image_id)]
        assert _image_bytes_contain(docker_engine, image_id, needles) == []
    finally:
        docker_engine.images.remove(image_id, force=True)


def test_the_default_image_holds_no_host_ca_or_pip_settings(docker_engine, gfx942_image):
    image_id = gfx942_image["image_id"]
    certs = _host_only_certs(docker_engine, image_id)
    settings = host_index_settings(sys.executable)
    needles = certs + [value.encode() for value in settings.secret_values()]
    if not needles:
        pytest.skip("this host has no private CA and no index/proxy settings to look for")
    history = json.dumps(docker_engine.api.history(image_id)).encode()
    assert [n for n in needles if n in history] == []
    assert _image_bytes_contain(docker_engine, image_id, needles) == []
