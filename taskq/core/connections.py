"""Connections configured at deploy time (Polyaxon's word): what each kind needs, and how
each provider's webhook proves it was sent by the holder of the connection's secret.

Pure: the HTTP server hands in the headers, the raw body and the secret it read from the
environment; a failure raises :class:`SignatureRefused`, whose message names the header
and never the secret or what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskq.errors import TaskqError

#: Notifier connections (hooks post to them) and source connections (they post to taskq).
NOTIFIERS = ("slack", "webhook")
PROVIDERS: dict[str, tuple[str, ...]] = {
    "git": ("github", "gitlab", "gitea", "bitbucket"),
    "registry": ("dockerhub", "harbor", "ghcr"),
    "dataset": ("webhook",),
}
#: Providers whose webhooks may come unsigned (Bitbucket lets a webhook have no secret).
_SECRET_OPTIONAL = frozenset({"bitbucket"})
_KEYS = {"kind", "url_env", "secret_env", "provider", "namespace"}


class SignatureRefused(TaskqError):
    """A webhook that does not prove its sender: answered 401 with this reason."""


@dataclass(frozen=True)
class Source:
    """A connection that sends events: its kind, provider, secret variable, namespace."""

    name: str
    kind: str
    provider: str
    secret_env: str | None
    namespace: str


def check(name: str, conf: Any) -> None:
    """Raise ValueError naming the connection and the key if ``conf`` cannot work."""
    only_keys(f"connection {name!r}", conf, _KEYS)
    kind = conf.get("kind")
    if kind not in (*NOTIFIERS, *PROVIDERS):
        raise ValueError(f"connection {name!r}: kind must be one of "
                         f"{', '.join((*NOTIFIERS, *PROVIDERS))}, got {kind!r}")
    for key in ("url_env", "secret_env", "provider", "namespace"):
        if key in conf and (not isinstance(conf[key], str) or not conf[key]):
            raise ValueError(f"connection {name!r}: {key} must be a non-empty string")
    if kind in NOTIFIERS:
        return
    provider = conf.get("provider", PROVIDERS[kind][0] if len(PROVIDERS[kind]) == 1 else None)
    if provider not in PROVIDERS[kind]:
        raise ValueError(f"connection {name!r}: a {kind} connection needs provider, one of "
                         f"{', '.join(PROVIDERS[kind])}, got {provider!r}")
    if "secret_env" not in conf and provider not in _SECRET_OPTIONAL:
        raise ValueError(f"connection {name!r}: needs secret_env, the environment variable "
                         "that holds the webhook's secret")


def only_keys(what: str, conf: Any, known: set[str]) -> None:
    if not isinstance(conf, dict):
        raise ValueError(f"{what}: must be a mapping")
    unknown = sorted(set(conf) - known)
    if unknown:
        raise ValueError(f"{what}: unknown key {unknown[0]!r} (use {', '.join(sorted(known))})")


def check_token(name: str, conf: Any) -> None:
    """An events bearer token's settings (``TASKQ_EVENTS_TOKENS``)."""
    only_keys(f"events token {name!r}", conf, {"token_env", "namespaces"})
    if not isinstance(conf.get("token_env"), str) or not conf["token_env"]:
        raise ValueError(f"events token {name!r} needs token_env: the variable that holds "
                         "the token")
    spaces = conf.get("namespaces")
    if (not isinstance(spaces, list) or not spaces
            or not all(isinstance(n, str) and n for n in spaces)):
        raise ValueError(f"events token {name!r}: namespaces must be a non-empty list of "
                         "namespaces (or [\"*\"])")


def check_webhook(name: str, conf: Any) -> None:
    """An events webhook secret's settings (``TASKQ_EVENTS_WEBHOOKS``)."""
    only_keys(f"events webhook {name!r}", conf, {"secret_env", "namespace"})
    for key in ("secret_env", "namespace"):
        if not isinstance(conf.get(key), str) or not conf[key]:
            raise ValueError(f"events webhook {name!r} needs {key}")


def beside_taskq(data: dict[str, Any], section: dict[str, Any], path: str) -> dict[str, Any]:
    """``[connections.<name>]`` beside ``[taskq]`` (Polyaxon's spelling) belongs to it too:
    ignoring it would be a connection silently not configured."""
    if section is data or not isinstance(data.get("connections"), dict):
        return section
    both = sorted(set(data["connections"]) & set(section.get("connections") or {}))
    if both:
        raise ValueError(f"{path}: connection {both[0]!r} is defined under both "
                         "[connections] and [taskq.connections]")
    return {**section, "connections": {**(section.get("connections") or {}),
                                       **data["connections"]}}


def source(name: str, conf: Mapping[str, Any], default_namespace: str) -> Source | None:
    """The connection as a source of events; None for a notifier connection."""
    kind = str(conf.get("kind"))
    if kind not in PROVIDERS:
        return None
    return Source(name=name, kind=kind,
                  provider=str(conf.get("provider") or PROVIDERS[kind][0]),
                  secret_env=conf.get("secret_env"),
                  namespace=str(conf.get("namespace") or default_namespace))


def _hmac_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _equal(sent: str, expected: str) -> bool:
    return hmac.compare_digest(sent.strip().encode(), expected.encode())


def verify(src: Source, headers: Mapping[str, str], body: bytes, secret: bytes | None,
           query_secret: str | None = None) -> None:
    """Check the provider's own proof of the sender; raises SignatureRefused."""
    def need(header: str) -> str:
        value = headers.get(header)
        if not value:
            raise SignatureRefused(f"{header}: missing; a {src.provider} webhook of "
                                   f"connection {src.name!r} must send it")
        return value

    if secret is None:  # only where the provider allows an unsigned webhook
        return
    provider = src.provider
    if provider in ("github", "ghcr") or (provider == "webhook"):
        ok = _equal(need("X-Hub-Signature-256"), "sha256=" + _hmac_hex(secret, body))
        header = "X-Hub-Signature-256"
    elif provider == "gitea":
        ok = _equal(need("X-Gitea-Signature"), _hmac_hex(secret, body))
        header = "X-Gitea-Signature"
    elif provider == "bitbucket":
        ok = _equal(need("X-Hub-Signature"), "sha256=" + _hmac_hex(secret, body))
        header = "X-Hub-Signature"
    elif provider == "gitlab":
        ok = _equal(need("X-Gitlab-Token"), secret.decode())
        header = "X-Gitlab-Token"
    elif provider == "harbor":
        sent = need("Authorization").strip()
        ok = _equal(sent.removeprefix("Bearer ").removeprefix("bearer "), secret.decode())
        header = "Authorization"
    else:  # dockerhub signs nothing: the secret travels in the webhook URL's query
        if not query_secret:
            raise SignatureRefused("secret: missing; Docker Hub cannot sign a webhook, so "
                                   f"connection {src.name!r} takes its secret as the URL's "
                                   "?secret= query parameter")
        ok = _equal(query_secret, secret.decode())
        header = "secret"
    if not ok:
        raise SignatureRefused(f"{header}: does not match connection {src.name!r}'s secret")
