"""Fetch a recipe's pinned ``inputs`` inside its builder stage (``/inputs/<package>/<file>``).

``pip download`` of an sdist builds its metadata, i.e. runs its setup.py (flash-attention's
imports torch and fails without one), so an input is fetched as a plain file: the index's
simple API (PEP 691 JSON, or the HTML page) is asked for the project's files, the one whose
sha256 is the recipe's is downloaded, and its content is checked against that sha256. The
index and CA bundle are the host pip's (the BuildKit secrets rocstack-pip reads), else PyPI.

    python -m rocstack.imaging.inputs pypi PACKAGE VERSION sdist|wheel SHA256 DEST_DIR
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import sys
from urllib.parse import urljoin

DEFAULT_INDEX = "https://pypi.org/simple"
SECRETS = {"cert": "/run/secrets/pip_cert", "conf": "/run/secrets/pip_conf"}
_LINK = re.compile(r'href="([^"#]+)#sha256=([0-9a-f]{64})"')


class InputError(Exception):
    pass


def _nonempty(path: str | None) -> str | None:
    return path if path and os.path.isfile(path) and os.path.getsize(path) > 0 else None


def index_settings() -> tuple[list[str], str | bool]:
    """(index URLs, CA bundle or True) from the pip settings the build was handed."""
    indexes = [os.environ["PIP_INDEX_URL"]] if os.environ.get("PIP_INDEX_URL") else []
    conf = _nonempty(os.environ.get("PIP_CONFIG_FILE")) or _nonempty(SECRETS["conf"])
    if conf and not indexes:
        parser = configparser.ConfigParser()
        parser.read(conf)
        if parser.has_option("global", "index-url"):
            indexes.append(parser.get("global", "index-url"))
        if parser.has_option("global", "extra-index-url"):
            indexes += parser.get("global", "extra-index-url").split()
    cert = _nonempty(os.environ.get("PIP_CERT")) or _nonempty(SECRETS["cert"])
    return [i for i in indexes if not i.startswith("file:")] or [DEFAULT_INDEX], cert or True


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def find_file(session, index: str, package: str, sha256: str, verify) -> tuple[str, str] | None:
    """(url, filename) of the file with this sha256 on ``index``'s page for ``package``, or None."""
    page = f"{index.rstrip('/')}/{normalize(package)}/"
    answer = session.get(page, timeout=60, verify=verify,
                         headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    if answer.headers.get("Content-Type", "").startswith("application/vnd.pypi.simple.v1+json"):
        for item in answer.json().get("files", []):
            if (item.get("hashes") or {}).get("sha256") == sha256:
                return urljoin(page, item["url"]), item["filename"]
        return None
    for url, digest in _LINK.findall(answer.text):
        if digest == sha256:
            return urljoin(page, url), url.rsplit("/", 1)[-1]
    return None


def fetch(package: str, version: str, dist: str, sha256: str, dest: str) -> str:
    import requests

    indexes, verify = index_settings()
    session = requests.Session()
    for index in indexes:
        try:
            found = find_file(session, index, package, sha256, verify)
        except requests.RequestException as exc:
            raise InputError(f"cannot read {index} for {package}: {exc}") from None
        if found is None:
            continue
        url, filename = found
        if version not in filename:
            raise InputError(f"{filename} (sha256 {sha256[:12]}...) on {index} is not {package} {version}")
        answer = session.get(url, timeout=600, verify=verify)
        answer.raise_for_status()
        digest = hashlib.sha256(answer.content).hexdigest()
        if digest != sha256:
            raise InputError(f"{filename} from {index} has sha256 {digest}, not the recipe's {sha256}")
        os.makedirs(dest, exist_ok=True)
        target = os.path.join(dest, filename)
        with open(target, "wb") as handle:
            handle.write(answer.content)
        return target
    raise InputError(f"no {dist} of {package} {version} with sha256 {sha256} on {', '.join(indexes)}")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 6 or args[0] != "pypi" or args[3] not in ("sdist", "wheel"):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    _kind, package, version, dist, sha256, dest = args
    try:
        path = fetch(package, version, dist, sha256, dest)
    except InputError as exc:
        print(f"error: input {package}=={version}: {exc} - check the recipe's inputs (version, sha256) and the pip index",
              file=sys.stderr)
        return 1
    print(f"input {package}=={version}: {path} (sha256 {sha256[:12]}... verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
