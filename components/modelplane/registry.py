"""A small OCI distribution client: what digest does ``repository:tag`` name right now?

Used by ``modelplane images pin`` only; nothing else in modelplane talks to a registry, so a
render never depends on the network. The protocol is the OCI distribution spec's (and Docker
Registry HTTP API v2's): ``HEAD /v2/<name>/manifests/<tag>`` with an ``Accept`` for the four
manifest types, then ``GET`` of the same manifest, whose bytes are hashed: the digest written
is that sha256, and it must equal the ``Docker-Content-Digest`` the registry reported.

Authentication as Docker Hub, ghcr.io and quay.io do it: a ``401`` with ``WWW-Authenticate:
Bearer realm=...,service=...,scope=...`` sends the client to the realm for a token (anonymous,
or with the Basic credentials of a Docker ``config.json`` when it has some for that registry);
``WWW-Authenticate: Basic`` takes those credentials directly. Credentials are read from the
file by reference (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``) and never
written or printed; every error names the registry, the repository and the status only.

Plain HTTP only for registries named with ``--insecure-registry HOST:PORT``: nothing falls back
to HTTP by itself, and no credential is sent to a plain-HTTP token realm of a TLS registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelplane.errors import PlatformError
from modelplane.images import DIGEST, DOCKER_HUB, Reference

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
"""What a tag may resolve to, in order of preference (an index first: it serves every platform)."""

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""The largest manifest read (distribution refuses to store larger ones: its default limit)."""

MAX_TOKEN_BYTES = 1024 * 1024
"""The largest token response read."""

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for each request."""

_HUB_API = "registry-1.docker.io"
_HUB_AUTH_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


class RegistryError(PlatformError):
    """A registry could not resolve an image (not found, unauthorized, unreachable, malformed)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Resolved:
    """What a tag names: the manifest's digest and media type."""

    digest: str
    media_type: str


@dataclass(frozen=True)
class Credentials:
    """Basic credentials of one registry, from a Docker ``config.json``. Never printed."""

    username: str
    password: str

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"

    def header(self) -> str:
        """The ``Authorization`` header's value."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def docker_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Docker's config file: ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    env = os.environ if environ is None else environ
    base = env.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def load_credentials(path: Path) -> dict[str, Credentials]:
    """Registry host to its Basic credentials, from a Docker ``config.json`` (empty when there is none).

    Only ``auths`` entries are read (``auth`` as base64 ``user:password``, or ``username`` and
    ``password``); credential helpers are not run.

    Raises:
        RegistryError: the file exists but is not a Docker config (its content is never shown).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise RegistryError(f"{path}: cannot read: {err.strerror}") from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise RegistryError(f"{path}: larger than {MAX_TOKEN_BYTES:,} bytes; not a Docker config")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise RegistryError(f"{path}: not JSON; expected a Docker config.json") from None
    auths = data.get("auths") if isinstance(data, dict) else None
    if auths is None:
        return {}
    if not isinstance(auths, dict):
        raise RegistryError(f"{path}: auths: must be a mapping of registry to credentials")
    result: dict[str, Credentials] = {}
    for key, entry in auths.items():
        if not isinstance(key, str) or not isinstance(entry, dict):
            continue
        host = _auth_host(key)
        user, password = entry.get("username"), entry.get("password")
        token = entry.get("auth")
        if isinstance(token, str) and token:
            try:
                user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                raise RegistryError(
                    f"{path}: auths[{json.dumps(key)}].auth: must be base64 of user:password"
                ) from None
        if isinstance(user, str) and isinstance(password, str) and user:
            result[host] = Credentials(user, password)
    return result


def _auth_host(key: str) -> str:
    """The registry host of a ``config.json`` key (``https://index.docker.io/v1/`` is Docker Hub)."""
    if key in _HUB_AUTH_KEYS:
        return DOCKER_HUB
    host = urllib.parse.urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_AUTH_KEYS else host


@dataclass
class Client:
    """Resolves tags to digests; keeps one token per (registry, repository) for its lifetime."""

    credentials: Mapping[str, Credentials]
    insecure: Collection[str] = ()
    """Registries (``HOST:PORT``) spoken to over plain HTTP."""
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        self._tokens: dict[tuple[str, str], str] = {}

    def _base(self, registry: str) -> str:
        host = _HUB_API if registry == DOCKER_HUB else registry
        scheme = "http" if registry in self.insecure else "https"
        return f"{scheme}://{host}"

    def resolve(self, ref: Reference) -> Resolved:
        """The digest and media type of the manifest ``ref``'s tag names now.

        Raises:
            RegistryError: not found, unauthorized, unreachable, or the registry's answer is
                malformed or does not match the manifest it served.
        """
        if ref.tag is None:
            raise RegistryError(f"{ref.written}: has no tag to resolve")
        what = f"{ref.registry}/{ref.repository}:{ref.tag}"
        url = f"{self._base(ref.registry)}/v2/{ref.repository}/manifests/{urllib.parse.quote(ref.tag)}"
        headers, _ = self._request("HEAD", url, ref, what)
        reported = headers.get("docker-content-digest")
        if reported is not None and not DIGEST.fullmatch(reported):
            raise RegistryError(f"{what}: the registry reported a digest that is not sha256:<64 hex>")
        headers, body = self._request("GET", url, ref, what)
        media_type = (headers.get("content-type") or "").split(";", 1)[0].strip()
        if media_type not in MANIFEST_TYPES:
            media_type = _declared_type(body, what)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        served = headers.get("docker-content-digest")
        for claimed in (reported, served):
            if claimed is not None and claimed != digest:
                raise RegistryError(
                    f"{what}: the registry reported {claimed} but served a manifest whose sha256 is "
                    f"{digest} (the tag may have moved meanwhile: run the command again)"
                )
        return Resolved(digest=digest, media_type=media_type)

    def _request(
        self, method: str, url: str, ref: Reference, what: str, *, retried: bool = False
    ) -> tuple[dict[str, str], bytes]:
        request = urllib.request.Request(url, method=method)
        request.add_header("Accept", ", ".join(MANIFEST_TYPES))
        token = self._tokens.get((ref.registry, ref.repository))
        if token is not None:
            request.add_unredirected_header("Authorization", token)
        try:
            with _opener().open(request, timeout=self.timeout) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                body = response.read(MAX_MANIFEST_BYTES + 1) if method == "GET" else b""
        except urllib.error.HTTPError as err:
            if err.code == 401 and not retried:
                challenge = err.headers.get("WWW-Authenticate", "")
                err.close()
                self._authenticate(challenge, ref, what)
                return self._request(method, url, ref, what, retried=True)
            err.close()
            raise RegistryError(f"{what}: {_status_text(err.code, ref, self.credentials)}") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise RegistryError(
                f"{what}: cannot reach {self._base(ref.registry)}: {_reason(reason)}", unreachable=True
            ) from None
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"{what}: the manifest is larger than {MAX_MANIFEST_BYTES:,} bytes")
        return headers, body

    def _authenticate(self, challenge: str, ref: Reference, what: str) -> None:
        scheme, _, rest = challenge.strip().partition(" ")
        credentials = self.credentials.get(ref.registry)
        if scheme.lower() == "basic":
            if credentials is None:
                raise RegistryError(
                    f"{what}: 401 unauthorized: the registry asks for credentials and the Docker config "
                    f"({docker_config_path()}) has none for {ref.registry}"
                )
            self._tokens[(ref.registry, ref.repository)] = credentials.header()
            return
        if scheme.lower() != "bearer":
            raise RegistryError(f"{what}: 401 unauthorized and no Bearer or Basic challenge to answer")
        params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        realm = params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise RegistryError(f"{what}: 401 unauthorized with a token realm that is not an http(s) URL")
        if parts.scheme == "http" and ref.registry not in self.insecure:
            raise RegistryError(
                f"{what}: the registry sends to a plain-HTTP token realm ({parts.netloc}); only a registry "
                "named with --insecure-registry may"
            )
        query = {"service": params.get("service", "")} if params.get("service") else {}
        scope = params.get("scope") or f"repository:{ref.repository}:pull"
        query["scope"] = scope
        separator = "&" if parts.query else "?"
        request = urllib.request.Request(realm + separator + urllib.parse.urlencode(query), method="GET")
        if credentials is not None:
            request.add_unredirected_header("Authorization", credentials.header())
        try:
            with _opener().open(request, timeout=self.timeout) as response:
                raw = response.read(MAX_TOKEN_BYTES + 1)
        except urllib.error.HTTPError as err:
            err.close()
            raise RegistryError(
                f"{what}: the token service {parts.netloc} answered {err.code}"
                + (
                    " (the credentials were refused)"
                    if credentials is not None and err.code in (401, 403)
                    else ""
                )
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise RegistryError(
                f"{what}: cannot reach the token service {parts.netloc}: {_reason(getattr(err, 'reason', err))}",
                unreachable=True,
            ) from None
        try:
            answer = json.loads(raw) if len(raw) <= MAX_TOKEN_BYTES else None
        except (ValueError, RecursionError):
            answer = None
        token = (answer.get("token") or answer.get("access_token")) if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{what}: the token service {parts.netloc} sent no token")
        self._tokens[(ref.registry, ref.repository)] = f"Bearer {token}"


def _declared_type(body: bytes, what: str) -> str:
    """The manifest's own ``mediaType`` when the registry's Content-Type names none we know."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise RegistryError(f"{what}: the registry served a manifest that is not JSON") from None
    declared = data.get("mediaType") if isinstance(data, dict) else None
    if declared not in MANIFEST_TYPES:
        raise RegistryError(f"{what}: the registry served a manifest of a type modelplane does not pin")
    return str(declared)


def _status_text(code: int, ref: Reference, credentials: Mapping[str, Credentials]) -> str:
    if code == 404:
        return "404 not found: no such repository or tag"
    if code in (401, 403):
        held = (
            "the Docker config's credentials were refused"
            if ref.registry in credentials
            else (f"the Docker config has no credentials for {ref.registry}")
        )
        return f"{code} {'unauthorized' if code == 401 else 'forbidden'}: {held}"
    if code == 429:
        return "429 too many requests: the registry's rate limit; try again later"
    return f"the registry answered {code}"


def _reason(reason: Any) -> str:
    text = getattr(reason, "strerror", None) or str(reason)
    return str(text).splitlines()[0][:200] if text else type(reason).__name__


class _HttpOnlyRedirect(urllib.request.HTTPRedirectHandler):
    """Follows redirects (registries redirect to storage), never to another scheme than http(s)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_HttpOnlyRedirect())
