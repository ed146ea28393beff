"""The OCI client and Docker credentials against a fake HTTP boundary.

The real registry (distribution 2.8) has no referrers API and only basic auth, so the
paths it cannot exercise (referrers answers, bearer tokens, corrupt answers) are tested
here against a tiny local HTTP server; everything else runs against the real one in
test_registry_e2e.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rocstack.errors import RocstackError
from rocstack.registry.artifacts import ARTIFACT_TYPE as MEDIA_TYPE
from rocstack.registry.credentials import Credential, lookup
from rocstack.registry.oci import RegistryClient, parse_registry


class FakeRegistry:
    """Routes ``(method, path)`` -> handler(request) returning (status, headers, body)."""

    def __init__(self):
        self.routes = {}
        self.seen = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                fake.seen.append((self.command, self.path, dict(self.headers)))
                route = fake.routes.get((self.command, self.path.split("?")[0]))
                status, headers, body = route(self) if route else (404, {}, b"404 page not found")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_HEAD = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def client(self, credential=None):
        return RegistryClient(parse_registry(f"{self.host}/repo"), credential=credential)


@pytest.fixture
def fake():
    server = FakeRegistry()
    yield server
    server.server.shutdown()


def _json(data, status=200, **headers):
    return lambda request: (status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode())


@pytest.mark.parametrize(
    "text, host, repo, scheme",
    [
        ("127.0.0.1:5000/rocstack", "127.0.0.1:5000", "rocstack", "http"),
        ("localhost:5000/team/rocstack", "localhost:5000", "team/rocstack", "http"),
        ("[::1]:5000/x", "[::1]:5000", "x", "http"),
        ("registry.example.com/team/rocstack", "registry.example.com", "team/rocstack", "https"),
        ("http://reg.internal:5000/a", "reg.internal:5000", "a", "http"),
        ("127.0.0.1:5000", "127.0.0.1:5000", None, "http"),
    ],
)
def test_parse_registry(text, host, repo, scheme):
    ref = parse_registry(text)
    assert (ref.host, ref.repository, ref.scheme) == (host, repo, scheme)


@pytest.mark.parametrize("text, needle", [("rocstack", "registry host"), ("127.0.0.1:5000/Upper", "not a valid repository")])
def test_parse_registry_refuses(text, needle):
    with pytest.raises(RocstackError, match=needle):
        parse_registry(text)


def test_credentials_from_docker_config_auths(docker_config):
    token = base64.b64encode(b"alice:pa:ss").decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {"https://reg.example:5000": {"auth": token}}}))
    found = lookup("reg.example:5000")
    assert (found.username, found.secret) == ("alice", "pa:ss")
    assert "pa:ss" not in repr(found) and "pa:ss" not in str(found)
    assert lookup("other.example") is None


def test_malformed_auth_entry_is_a_clear_error(docker_config):
    (docker_config / "config.json").write_text(json.dumps({"auths": {"reg.example": {"auth": "!!!"}}}))
    with pytest.raises(RocstackError, match="not base64 'user:password'"):
        lookup("reg.example")


def test_credential_helper(docker_config, tmp_path, monkeypatch):
    """A real docker-credential-* program on PATH, speaking the helper protocol."""
    helper = tmp_path / "bin" / "docker-credential-regtest"
    helper.parent.mkdir()
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'if [ "$server" = reg.example ]; then echo \'{"Username":"bob","Secret":"hunter2"}\'; exit 0; fi\n'
        "echo 'credentials not found in native keychain'; exit 1\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    (docker_config / "config.json").write_text(json.dumps({"credHelpers": {"reg.example": "regtest"}}))
    found = lookup("reg.example")
    assert (found.username, found.secret, found.source) == ("bob", "hunter2", "docker-credential-regtest")
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "regtest"}))
    assert lookup("elsewhere.example") is None


def test_referrers_answered_and_filtered(fake):
    wanted = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "1" * 64, "artifactType": MEDIA_TYPE}
    other = {**wanted, "digest": "sha256:" + "2" * 64, "artifactType": "application/spdx+json"}
    fake.routes[("GET", "/v2/repo/referrers/sha256:" + "a" * 64)] = _json({"schemaVersion": 2, "manifests": [wanted, other]})
    assert fake.client().referrers("repo", "sha256:" + "a" * 64, MEDIA_TYPE) == [wanted]
    assert f"artifactType={MEDIA_TYPE}".replace("/", "%2F").replace("+", "%2B") in fake.seen[-1][1]


def test_referrers_404_means_unsupported(fake):
    assert fake.client().referrers("repo", "sha256:" + "a" * 64, MEDIA_TYPE) is None


def test_bearer_token_flow(fake):
    challenge = f'Bearer realm="http://{fake.host}/token",service="fake",scope="repository:repo:pull"'

    def tags(request):
        if request.headers.get("Authorization") == "Bearer tok-123":
            return 200, {"Content-Type": "application/json"}, json.dumps({"name": "repo", "tags": ["a", "b"]}).encode()
        return 401, {"WWW-Authenticate": challenge}, b"{}"

    def token(request):
        good = "Basic " + base64.b64encode(b"carol:right").decode()
        if request.headers.get("Authorization") == good and "service=fake" in request.path:
            return 200, {"Content-Type": "application/json"}, b'{"token": "tok-123"}'
        return 401, {}, b""

    fake.routes[("GET", "/v2/repo/tags/list")] = tags
    fake.routes[("GET", "/token")] = token
    assert fake.client(Credential("carol", "right")).tags("repo") == ["a", "b"]
    with pytest.raises(RocstackError) as refused:
        fake.client(Credential("carol", "wrong-password-xyz")).tags("repo")
    assert "refused the credentials of user 'carol'" in str(refused.value)
    assert "wrong-password-xyz" not in str(refused.value)


def test_paged_tags_follow_link_header(fake):
    fake.routes[("GET", "/v2/repo/tags/list")] = lambda request: (
        (200, {"Link": '</v2/repo/tags/list?last=b&n=2>; rel="next"'}, b'{"tags": ["a", "b"]}')
        if "last=" not in request.path
        else (200, {}, b'{"tags": ["c"]}')
    )
    assert fake.client().tags("repo") == ["a", "b", "c"]


def test_manifest_with_lying_digest_is_refused(fake):
    body = b'{"schemaVersion": 2}'
    fake.routes[("GET", "/v2/repo/manifests/latest")] = lambda request: (
        200,
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": "sha256:" + "0" * 64},
        body,
    )
    with pytest.raises(RocstackError, match="hashes to sha256:" + hashlib.sha256(body).hexdigest()):
        fake.client().get_manifest("repo", "latest")


def test_blob_not_matching_its_digest_is_refused(fake):
    digest = "sha256:" + hashlib.sha256(b"expected").hexdigest()
    fake.routes[("GET", f"/v2/repo/blobs/{digest}")] = lambda request: (200, {}, b"tampered")
    with pytest.raises(RocstackError, match="does not match its digest"):
        fake.client().get_blob("repo", digest, 1024)


def test_unreachable_registry():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = RegistryClient(parse_registry(f"127.0.0.1:{port}/repo"), credential=None, timeout=5)
    with pytest.raises(RocstackError, match=rf"registry 127.0.0.1:{port} is unreachable"):
        client.ping()


def test_credentials_never_sent_to_a_foreign_upload_location(fake):
    other = FakeRegistry()
    try:
        data = b"layer bytes"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        good = "Basic " + base64.b64encode(b"dave:pw-123").decode()

        def guarded(status):
            def answer(request):
                if request.headers.get("Authorization") != good:
                    return 401, {"WWW-Authenticate": 'Basic realm="fake"'}, b""
                return status
            return answer

        fake.routes[("HEAD", f"/v2/repo/blobs/{digest}")] = guarded((404, {}, b""))
        fake.routes[("POST", "/v2/repo/blobs/uploads/")] = guarded(
            (202, {"Location": f"http://{other.host}/upload/abc?_state=x"}, b"")
        )
        other.routes[("PUT", "/upload/abc")] = lambda request: (201, {}, b"")
        assert fake.client(Credential("dave", "pw-123")).put_blob("repo", data) == digest
        [(method, path, headers)] = other.seen
        assert method == "PUT" and f"digest={digest.replace(':', '%3A')}" in path
        assert "Authorization" not in headers
        assert any(h.get("Authorization") == good for _, _, h in fake.seen)
    finally:
        other.server.shutdown()
