"""A minimal client of the OCI distribution API: what push/pull/images need, no more.

Ping, catalog, tags, manifests (get/put, digests verified), blobs (get verified,
monolithic upload) and the referrers API (``None`` where the registry lacks it: such
registries answer 404, which the spec forbids a supporting registry to do). Auth is
HTTP basic or the bearer-token flow, with credentials from the Docker config; a
refusal says who was refused and where the credentials came from, never the secret.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

from rocstack.errors import RocstackError
from rocstack.registry.credentials import Credential, docker_config_path, lookup

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST)
_REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_HOST_RE = re.compile(r"^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::[0-9]+)?$")


@dataclass(frozen=True)
class RegistryRef:
    """``HOST[:PORT][/REPO]``; ``scheme`` is http for loopback hosts (as docker allows), else https."""

    host: str
    repository: str | None
    scheme: str

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}" if self.repository else self.host

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"


def parse_registry(text: str) -> RegistryRef:
    raw = text.strip()
    scheme = None
    for prefix in ("http://", "https://"):
        if raw.startswith(prefix):
            scheme, raw = prefix[:-3], raw[len(prefix):]
    host, _, repository = raw.rstrip("/").partition("/")
    if not host or not _HOST_RE.match(host) or not ("." in host or ":" in host or host == "localhost"):
        raise RocstackError(
            f"'{text}' does not start with a registry host",
            "write the registry as HOST[:PORT]/REPO, e.g. 127.0.0.1:5000/rocstack",
        )
    if repository and not _REPO_RE.match(repository):
        raise RocstackError(
            f"'{repository}' is not a valid repository name",
            "use lowercase letters, digits, '.', '_', '-' and '/' (e.g. team/rocstack)",
        )
    return RegistryRef(host, repository or None, scheme or ("http" if _is_loopback(host) else "https"))


def _is_loopback(host: str) -> bool:
    if host.startswith("["):  # [::1]:5000
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    media_type: str
    digest: str


class RegistryClient:
    def __init__(self, ref: RegistryRef, credential: Credential | None = None, timeout: float = 30.0):
        self.ref = ref
        self.credential = credential if credential is not None else lookup(ref.host)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy from the environment must not see registry traffic
        self._bearer: dict[str, str] = {}
        self._basic: tuple[str, str] | None = None

    # -- transport ---------------------------------------------------------
    def _send(self, method: str, url: str, scope: str, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        auth = None
        # Credentials go to the registry itself only, never to a host an upload Location names.
        if url.startswith(self.ref.base_url + "/"):
            if scope in self._bearer:
                headers["Authorization"] = f"Bearer {self._bearer[scope]}"
            elif self._basic:
                auth = self._basic
        try:
            return self.session.request(method, url, headers=headers, auth=auth, timeout=self.timeout, **kwargs)
        except requests.exceptions.SSLError:
            raise RocstackError(
                f"TLS handshake with registry {self.ref.host} failed",
                f"use http://{self.ref.host}/... for a plain-HTTP registry, or fix its certificate",
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            why = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "connection refused or host down"
            raise RocstackError(
                f"registry {self.ref.host} is unreachable ({why})",
                "check --registry / ROCSTACK_REGISTRY and that the registry runs (scripts/start-registry.sh for a local one)",
            ) from None

    def request(self, method: str, path: str, *, scope: str = "", ok=(200,), **kwargs) -> requests.Response:
        """One API call, authenticating on a 401 challenge; a status outside ``ok`` is an error."""
        url = path if path.startswith("http") else self.ref.base_url + path
        response = self._send(method, url, scope, **kwargs)
        if response.status_code == 401:
            self._authenticate(response, scope)
            response = self._send(method, url, scope, **kwargs)
            if response.status_code == 401:
                raise self.refusal()
        if response.status_code not in ok:
            raise self._status_error(method, path, response)
        return response

    def _authenticate(self, response: requests.Response, scope: str) -> None:
        challenge = response.headers.get("WWW-Authenticate", "")
        kind = challenge.split(" ")[0].lower()
        if kind == "bearer":  # anonymous tokens are normal for public pulls
            self._bearer[scope] = self._fetch_token(_challenge_params(challenge))
            return
        if kind != "basic":
            raise RocstackError(
                f"registry {self.ref.host} asks for an unsupported auth scheme '{challenge.split(' ')[0]}'",
                "use a registry with basic or bearer-token auth",
            )
        if self.credential is None:
            raise self.refusal()
        self._basic = (self.credential.username, self.credential.secret)

    def _fetch_token(self, params: dict[str, str]) -> str:
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RocstackError(f"registry {self.ref.host} sent a bearer challenge without a realm URL")
        auth = (self.credential.username, self.credential.secret) if self.credential else None
        try:
            answer = self.session.get(realm, params=params, auth=auth, timeout=self.timeout)
        except requests.exceptions.RequestException:
            raise RocstackError(
                f"token service of registry {self.ref.host} is unreachable", "check the registry's auth realm"
            ) from None
        if answer.status_code in (401, 403):
            raise self.refusal()
        try:
            body = answer.json()
            return body.get("token") or body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise RocstackError(
                f"token service of registry {self.ref.host} answered HTTP {answer.status_code} without a token"
            ) from None

    def refusal(self) -> RocstackError:
        if self.credential is None:
            return RocstackError(
                f"registry {self.ref.host} requires authentication and the Docker config has no credentials for it",
                f"run `docker login {self.ref.host}` (rocstack reads {docker_config_path()}; DOCKER_CONFIG moves it)",
            )
        return RocstackError(
            f"registry {self.ref.host} refused the credentials of user '{self.credential.username}' "
            f"(from {self.credential.source})",
            f"run `docker login {self.ref.host}` with the right password",
        )

    def _status_error(self, method: str, path: str, response: requests.Response) -> RocstackError:
        detail = f"HTTP {response.status_code}"
        try:
            errors = response.json().get("errors") or []
            if errors:
                detail += ": " + "; ".join(f"{e.get('code')} {e.get('message')}" for e in errors)
        except (ValueError, AttributeError):
            pass
        if response.status_code == 403:
            user = self.credential.username if self.credential else "anonymous"
            return RocstackError(
                f"registry {self.ref.host} denied {method} {path} to user '{user}' ({detail})",
                "ask the registry's admin for access to this repository",
            )
        return RocstackError(f"registry {self.ref.host}: {method} {path} failed ({detail})")

    # -- API ---------------------------------------------------------------
    def ping(self) -> None:
        self.request("GET", "/v2/")

    def _paged(self, path: str, key: str, scope: str) -> list[str]:
        out: list[str] = []
        url: str | None = path + "?n=1000"
        while url:
            response = self.request("GET", url, scope=scope, ok=(200, 404))
            if response.status_code == 404:
                return out
            out.extend(response.json().get(key) or [])
            following = response.links.get("next", {}).get("url")
            url = urljoin(self.ref.base_url + path, following) if following else None
        return out

    def catalog(self) -> list[str]:
        return self._paged("/v2/_catalog", "repositories", "registry:catalog:*")

    def tags(self, repository: str) -> list[str]:
        return self._paged(f"/v2/{repository}/tags/list", "tags", _pull_scope(repository))

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=_pull_scope(repository),
            ok=(200, 404),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if response.status_code == 404:
            return None
        raw = response.content
        digest = sha256_digest(raw)
        claimed = response.headers.get("Docker-Content-Digest")
        if (reference.startswith("sha256:") and digest != reference) or (claimed and claimed != digest):
            raise RocstackError(
                f"registry {self.ref.host} served a manifest for {repository}:{reference} whose content "
                f"hashes to {digest}, not {claimed or reference}",
                "the registry storage is corrupt or something rewrites traffic; do not use this image",
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(raw, media_type, digest)

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> tuple[str, bool]:
        """Upload a manifest; returns its digest and whether the registry indexed its subject."""
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=_push_scope(repository),
            ok=(201,),
            data=raw,
            headers={"Content-Type": media_type},
        )
        digest = sha256_digest(raw)
        if response.headers.get("Docker-Content-Digest", digest) != digest:
            raise RocstackError(f"registry {self.ref.host} stored manifest under a different digest than sent")
        return digest, "OCI-Subject" in response.headers

    def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        response = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", scope=_pull_scope(repository), ok=(200, 404), stream=True
        )
        if response.status_code == 404:
            raise RocstackError(f"blob {digest[:19]} is missing from {self.ref.host}/{repository}")
        data = response.raw.read(max_bytes + 1, decode_content=True)
        response.close()
        if len(data) > max_bytes:
            raise RocstackError(f"blob {digest[:19]} in {self.ref.host}/{repository} is over {max_bytes} bytes")
        if sha256_digest(data) != digest:
            raise RocstackError(
                f"blob {digest[:19]} in {self.ref.host}/{repository} does not match its digest",
                "the registry storage is corrupt; do not use this artifact",
            )
        return data

    def put_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        scope = _push_scope(repository)
        exists = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope=scope, ok=(200, 404))
        if exists.status_code == 200:
            return digest
        started = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope, ok=(202,))
        location = urljoin(self.ref.base_url + "/", started.headers["Location"])
        self.request(
            "PUT",
            location,
            scope=scope,
            ok=(201,),
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return digest

    def referrers(self, repository: str, digest: str, artifact_type: str) -> list[dict] | None:
        """Descriptors of manifests whose subject is ``digest``; None: the registry lacks the API."""
        response = self.request(
            "GET",
            f"/v2/{repository}/referrers/{digest}",
            scope=_pull_scope(repository),
            ok=(200, 404),
            params={"artifactType": artifact_type},
        )
        if response.status_code == 404:
            return None
        try:
            manifests = response.json().get("manifests") or []
        except (ValueError, AttributeError):
            raise RocstackError(f"registry {self.ref.host} answered the referrers API with something not JSON") from None
        # Registries may ignore the filter (they then omit OCI-Filters-Applied): filter here too.
        return [m for m in manifests if isinstance(m, dict) and m.get("artifactType") == artifact_type]


def _pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _challenge_params(challenge: str) -> dict[str, str]:
    """``Bearer realm="...",service="...",scope="..."`` -> dict."""
    return dict(re.findall(r'(\w+)="([^"]*)"', challenge))
