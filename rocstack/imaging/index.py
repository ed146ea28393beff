"""The host's package-index settings, handed to a build without landing in a layer.

pip inside a build container needs what pip on the host uses: the CA bundle (a
TLS-inspecting proxy's CA here), index and extra-index URLs (which may carry
credentials) and proxies. CA bundle and pip settings become BuildKit secrets
(mounted for one RUN, never stored); proxy variables become the engine's
predefined proxy build args, which BuildKit keeps out of the image history.
Settings that only make sense on the host (file:// indexes, local find-links)
are not passed; local find-links directories are offered as the default wheelhouse.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rocstack.errors import RocstackError

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
_CONFIG_LINE = re.compile(r"^(?P<section>[^.=]+)\.(?P<key>[a-z0-9-]+)='(?P<value>.*)'$")


@dataclass
class IndexSettings:
    cert: Path | None = None
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    trusted_hosts: list[str] = field(default_factory=list)
    proxy: str | None = None
    timeout: str | None = None
    find_links: list[Path] = field(default_factory=list)
    not_passed: list[str] = field(default_factory=list)

    def pip_conf(self) -> str:
        """pip.conf for the build: only settings that work inside a container."""
        lines = ["[global]"]
        if self.index_url:
            lines.append(f"index-url = {self.index_url}")
        if self.extra_index_urls:
            lines.append("extra-index-url = " + " ".join(self.extra_index_urls))
        if self.trusted_hosts:
            lines.append("trusted-host = " + " ".join(self.trusted_hosts))
        if self.proxy:
            lines.append(f"proxy = {self.proxy}")
        if self.timeout:
            lines.append(f"timeout = {self.timeout}")
        return "\n".join(lines) + "\n"

    def secret_values(self) -> list[str]:
        """Strings that must never appear in an image (what the leak test greps for)."""
        values = [self.index_url or "", *self.extra_index_urls, self.proxy or ""]
        values += [value for name, value in proxy_environment().items()]
        return [v for v in values if v]


def _pip_config(python: str) -> dict[str, str]:
    """Merged pip configuration ("key" -> value), the environment winning over files."""
    try:
        out = subprocess.run(
            [python, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    # pip lists its files in load order (global, user, site, PIP_CONFIG_FILE): a later line for the
    # same key wins, a command's section wins over [global], the environment over every file
    sections: dict[str, dict[str, str]] = {name: {} for name in ("global", "download", "wheel", "install")}
    from_env: dict[str, str] = {}
    for line in out.splitlines():
        match = _CONFIG_LINE.match(line.strip())
        if not match:
            continue
        section, key, value = match["section"], match["key"], match["value"]
        if section == ":env:":
            from_env.setdefault(key, value)
        elif section in sections:
            sections[section][key] = value
    merged: dict[str, str] = {}
    for values in sections.values():
        merged.update(values)
    return {**merged, **from_env}


def _is_local(url: str) -> bool:
    return url.startswith("file:") or url.startswith("/") or not re.match(r"^[a-z+]+://", url)


def host_index_settings(python: str | None = None) -> IndexSettings:
    """Read the host pip's settings (``pip config list``) and the proxy environment."""
    config = _pip_config(python or sys.executable)
    settings = IndexSettings()
    cert = config.get("cert") or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if cert:
        path = Path(cert)
        if not path.is_file():
            raise RocstackError(
                f"pip's CA bundle {cert} (from the pip configuration) does not exist",
                "fix 'cert' in `pip config list` or PIP_CERT",
            )
        settings.cert = path
    index = config.get("index-url")
    if index:
        if _is_local(index):
            settings.not_passed.append(f"index-url {index} (a host path)")
        else:
            settings.index_url = index
    for url in config.get("extra-index-url", "").split():
        if _is_local(url):
            settings.not_passed.append(f"extra-index-url {url} (a host path)")
        else:
            settings.extra_index_urls.append(url)
    settings.trusted_hosts = config.get("trusted-host", "").split()
    settings.proxy = config.get("proxy") or None
    settings.timeout = config.get("default-timeout") or config.get("timeout") or None
    for link in config.get("find-links", "").split():
        path = Path(link[len("file://"):] if link.startswith("file://") else link)
        if path.is_dir():
            settings.find_links.append(path)
        elif _is_local(link):
            settings.not_passed.append(f"find-links {link} (not a directory)")
        else:
            settings.not_passed.append(f"find-links {link} (only local wheelhouses are passed, via --wheelhouse)")
    return settings


def proxy_environment() -> dict[str, str]:
    """Proxy variables set on the host, both spellings (curl and pip read lowercase ones)."""
    found = {}
    for name in PROXY_VARIABLES:
        for spelled in (name, name.lower()):
            if os.environ.get(spelled):
                found[spelled] = os.environ[spelled]
    return found


@contextmanager
def build_secret_args(settings: IndexSettings) -> Iterator[list[str]]:
    """CLI arguments that hand the settings to a BuildKit build; files vanish afterwards.

    Build args are given by name only (``--build-arg HTTP_PROXY``): the CLI reads the
    value from its environment, so it is not even on the command line.
    """
    folder = Path(tempfile.mkdtemp(prefix="rocstack-secrets-"))
    try:
        os.chmod(folder, 0o700)
        conf = folder / "pip.conf"
        conf.write_text(settings.pip_conf())
        args = ["--secret", f"id=pip_conf,src={conf}"]
        if settings.cert:
            args += ["--secret", f"id=pip_cert,src={settings.cert}"]
        for name in proxy_environment():
            args += ["--build-arg", name]
        yield args
    finally:
        shutil.rmtree(folder, ignore_errors=True)
