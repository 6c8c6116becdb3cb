"""Credentials stay out of stacks, locks and everything rendered from them: one detector for all.

A stack file and its lock are committed, rendered into the GitOps tree, shown in pull-request
comments and printed in CI logs, so a credential written into any string of them leaks
everywhere at once. Stacks carry credentials by reference only (a Secret's name, an
ExternalSecret, a Pulumi secret); this module finds the strings that look like the credential
itself, so the loader, the lock reader and every message that shows a value can refuse or hide
them without ever repeating them.

What it looks for: private-key blocks, cloud and service keys with a recognisable shape (AWS,
Google, GitHub, GitLab, Slack, Hugging Face, OpenAI, Stripe), bearer and JSON Web Tokens, user
information in URLs (``https://user:pass@host``), credential-bearing query or path parameters
(presigned ``X-Amz-Signature``, SAS ``sig``, ``token``, ``;password=``), ``password=``-style
assignments in free text, and any value under a password-like key (``password:``, ``apiKey:``,
an environment entry named ``DB_PASSWORD``). References are not credentials: ``$(VAR)`` and
``${VAR}`` values pass. A finding names its kind, never its text.

``scan`` walks any nested data (mappings, lists, pydantic models) generically, so a field added
to a model later is covered with no edit here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from modelplane.types import FieldPath

__all__ = ["Finding", "find", "is_secret_key", "redact", "scan"]


@dataclass(frozen=True)
class Finding:
    """A credential-looking span of a string: its kind (for messages) and where it is (for redaction)."""

    kind: str
    start: int
    end: int


_SECRET_WORDS = (
    "password|passwd|pwd|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?key|"
    "secret[_-]?key|secret[_-]?access[_-]?key|private[_-]?key|auth[_-]?token|access[_-]?token|"
    "refresh[_-]?token|id[_-]?token|session[_-]?token|bearer[_-]?token"
)
"""Words that make a value a credential even inside a compound name (``--db-password``, ``DB_PASSWORD``)."""
_STANDALONE_WORDS = "token|credentials?"
"""Words that do only on their own: ``--token=`` is a credential, ``--initial-cluster-token=`` is etcd's
cluster name and ``max_token=`` a setting."""
_QUERY_WORDS = (
    "x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|"
    "signature|sig|googleaccessid|" + _SECRET_WORDS + "|" + _STANDALONE_WORDS + "|key|auth|authorization"
)
_REFERENCE = r"(?!\$\(|\$\{)"
"""A value that starts with ``$(`` or ``${`` names a variable (Kubernetes or shell expansion)."""

_PATTERNS: tuple[tuple[str, str], ...] = (
    ("a private key", r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"),
    (
        "an AWS access key ID",
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}(?![A-Z0-9])",
    ),
    ("a Google API key", r"AIza[0-9A-Za-z_-]{35}"),
    ("a Google OAuth token", r"ya29\.[0-9A-Za-z_-]{20,}"),
    ("a GitHub token", r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("a GitLab token", r"glpat-[A-Za-z0-9_-]{20,}"),
    ("a Slack token", r"(?:xox[abprs]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/[A-Za-z0-9/]+)"),
    ("a Hugging Face token", r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}"),
    ("an OpenAI key", r"(?<![A-Za-z0-9-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}"),
    ("a Stripe key", r"(?<![A-Za-z0-9])[rs]k_(?:live|test)_[0-9A-Za-z]{20,}"),
    ("a JSON Web Token", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("a bearer token", r"(?i)\b(?:bearer|basic)[ \t]+" + _REFERENCE + r"[A-Za-z0-9._~+/=-]{12,}"),
    ("credentials in a URL", r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s?#@\"'<>]+@"),
    # ``user:password@registry/image``: userinfo without a scheme (``redis:7@sha256:...`` is a digest).
    (
        "credentials in a URL",
        r"(?:^|(?<=[\s\"'=]))[A-Za-z0-9._~%-]+:[^/\s@:\"']+@(?!sha256:|sha512:)[A-Za-z0-9.-]+[/:]",
    ),
    (
        "a credential in a URL parameter",
        r"(?i)[?&;](?:" + _QUERY_WORDS + r")=" + _REFERENCE + r"[^&;#\s\"']+",
    ),
    (
        "a password-like assignment",
        r"(?i)(?:(?:^|(?<=[\s,;&?{(\[\"'_.-]))(?:" + _SECRET_WORDS + r")"
        r"|(?:^|(?<=[\s,;&?{(\[\"']))-{0,2}(?:" + _STANDALONE_WORDS + r"))"
        # The sign and the value on one line: ``privateKey:`` opening a YAML mapping is not one.
        r"[\"']?[ \t]*[=:][ \t]*[\"']?" + _REFERENCE + r"[^\s\"',;&)}\]]{3,}",
    ),
)


def _scoped(pattern: str) -> str:
    """A pattern's leading ``(?i)`` as a scoped group, so patterns combine into one expression."""
    return f"(?i:{pattern[4:]})" if pattern.startswith("(?i)") else pattern


_COMBINED = re.compile("|".join(f"(?P<p{i}>{_scoped(p)})" for i, (_, p) in enumerate(_PATTERNS)))
_KINDS = {f"p{i}": kind for i, (kind, _) in enumerate(_PATTERNS)}

_SECRET_KEY = re.compile(
    r"^(?:pass|" + (_SECRET_WORDS + "|" + _STANDALONE_WORDS).replace("[_-]?", "") + r")$"
)
_SECRET_KEY_SUFFIX = re.compile(
    r"(?:password|passwd|passphrase|secret|apikey|accesskey|secretkey|privatekey|token|credentials?)$"
)
_UNSET = frozenset({"", "-", "none", "null", "redacted", "changeme"})


def _normal_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a mapping key (or an environment variable's name) says its value is a credential.

    ``password``, ``apiKey``, ``client_secret``, ``DB_PASSWORD``, ``HF_TOKEN``; not ``secretName``
    or ``tlsSecretName``, which name a Secret (a reference).
    """
    normal = _normal_key(key)
    return bool(_SECRET_KEY.match(normal) or _SECRET_KEY_SUFFIX.search(normal))


def _is_value(text: str) -> bool:
    """Whether a string under a secret-like key holds a value (not a reference, not empty)."""
    stripped = text.strip()
    return stripped.lower() not in _UNSET and not stripped.startswith(("$(", "${"))


_ASSIGNMENT = "a password-like assignment"
_SHORT_NUMBER = re.compile(r"[=:]\s*[\"']?[0-9]{1,11}$")
"""``max_token=4096``: a short number after the sign is a setting, not a credential."""


# Large enough for every distinct string of a 100,000-model stack and its lock, which share
# their storage URIs: a smaller cache is emptied by the stack before the lock is read.
@functools.lru_cache(maxsize=1 << 18)
def _find_cached(text: str) -> tuple[Finding, ...]:
    found = []
    for match in _COMBINED.finditer(text):
        kind = _KINDS[str(match.lastgroup)]
        if kind == _ASSIGNMENT and _SHORT_NUMBER.search(match.group()):
            continue
        found.append(Finding(kind, match.start(), match.end()))
    return tuple(found)


_NEEDED = re.compile(r"[ \tA_@=]|ya29\.|glpat-|xox|hooks\.slack\.com|sk-|eyJ")
"""What every pattern needs, bar the assignment with ``:``: a space or tab (a private key's
header, a bearer token), ``A`` (AWS and Google API keys), ``_`` (GitHub, Hugging Face and Stripe
tokens), ``@`` (credentials in a URL), ``=`` (URL parameters, assignments) or a token's prefix."""
_WORDS_BEFORE_COLON = ("pass", "pwd", "secret", "key", "token", "credential")
"""A part of every word a ``word: value`` assignment starts with (``_SECRET_WORDS``, ``_STANDALONE_WORDS``)."""


def _may_hold(text: str) -> bool:
    """False when no pattern can match ``text``: most strings (URIs, digests, times) skip the scan.

    Only for ASCII text: case-insensitive matching folds some other characters onto ASCII
    letters (the long s, U+017F, onto ``s``), which ``str.lower`` does not.
    """
    if not text.isascii() or _NEEDED.search(text):
        return True
    if ":" in text:
        lower = text.lower()
        return any(word in lower for word in _WORDS_BEFORE_COLON)
    return False


def find(text: str) -> list[Finding]:
    """Every credential-looking span of ``text``, in order (empty when there is none)."""
    if len(text) < 8 or not _may_hold(text):
        return []
    return list(_find_cached(text))


def redact(text: str) -> str:
    """``text`` with every credential-looking span replaced by ``<redacted: KIND>``."""
    found = find(text)
    if not found:
        return text
    out: list[str] = []
    at = 0
    for finding in found:
        out.append(text[at : finding.start])
        out.append(f"<redacted: {finding.kind}>")
        at = finding.end
    out.append(text[at:])
    return "".join(out)


_FIELDS: dict[type[BaseModel], tuple[tuple[str, str], ...]] = {}
"""(attribute, spelling in the file) of each pydantic model class's fields, in declaration order."""


def _fields(cls: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = tuple((name, info.alias or name) for name, info in cls.model_fields.items())
    return fields


@functools.lru_cache(maxsize=4096)
def _key_kind(key: str) -> str | None:
    """The kind of credential a mapping key itself looks like, or None."""
    hits = find(key)
    return hits[0].kind if hits else None


_CONTAINERS = (dict, list, tuple, BaseModel)


def scan(data: Any, path: FieldPath = ()) -> list[tuple[FieldPath, str]]:
    """Where ``data`` holds a credential: (field path, kind) for every string that looks like one.

    Walks mappings (keys and values), lists and pydantic models (by their aliases, the file's
    spelling) with an explicit stack, so depth costs no recursion. A string under a
    password-like key, or the ``value`` of an entry whose ``name`` is password-like (an
    environment variable), counts whatever it looks like.
    """
    found: list[tuple[FieldPath, str]] = []
    pending: list[tuple[FieldPath, Any]] = [(path, data)]
    # A child is queued only when it is a container or a string that looks like a credential:
    # every other scalar would be popped to find nothing. Queued in the data's own order, so the
    # findings come depth first, as the data is written.
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            hits = find(value)
            if hits:
                found.append((where, hits[0].kind))
            continue
        later: list[tuple[FieldPath, Any]] = []
        if isinstance(value, dict):
            named = value.get("name")
            secret_name = isinstance(named, str) and is_secret_key(named)
            for key, child in value.items():
                if isinstance(key, str):
                    kind = _key_kind(key)
                    if kind is not None:
                        found.append(((*where, key), kind))
                        continue
                if isinstance(child, str):
                    if isinstance(key, str) and is_secret_key(key) and _is_value(child):
                        found.append(((*where, key), "a value under a password-like key"))
                        continue
                    if key == "value" and secret_name and _is_value(child):
                        found.append(((*where, key), "the value of a password-like variable"))
                        continue
                    if find(child):
                        later.append(((*where, key), child))
                elif isinstance(child, _CONTAINERS):
                    later.append(((*where, key), child))
        elif isinstance(value, BaseModel):
            attributes = value.__dict__
            for name, alias in _fields(type(value)):
                child = attributes[name]
                if isinstance(child, str):
                    if find(child):
                        later.append(((*where, alias), child))
                elif isinstance(child, _CONTAINERS):
                    later.append(((*where, alias), child))
        elif isinstance(value, (list, tuple)):
            for i, child in enumerate(value):
                if isinstance(child, str):
                    if find(child):
                        later.append(((*where, i), child))
                elif isinstance(child, _CONTAINERS):
                    later.append(((*where, i), child))
        # Depth first, in the data's own order.
        pending.extend(reversed(later))
    return found
