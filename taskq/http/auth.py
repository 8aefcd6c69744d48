"""Who may publish where: bearer tokens and webhook secrets, each scoped to namespaces.

A bearer token (``Authorization: Bearer``, the scheme in any case, RFC 7235) publishes into
the namespaces its configuration lists. A signature publishes into its secret's one
namespace, in one of two schemes:

- taskq's own: ``X-Taskq-Signature: sha256=hex(hmac(secret, "<timestamp>.<delivery>.<body>"))``
  with ``X-Taskq-Timestamp`` (Unix seconds, within the window of the server's clock) and
  ``X-Taskq-Delivery`` (the sender's id for this delivery). A replay within the window is
  recognised by the delivery id; after it, by the timestamp.
- a Git host's: ``X-Hub-Signature-256: sha256=hex(hmac(secret, body))``. Nothing but the
  body is signed (its delivery header is not), so the body is the delivery: resending it
  is the same event, whatever delivery id comes with it.

Secrets are compared in constant time and never written to a response, a log or an event;
a credential is named by its configuration key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from taskq import constants
from taskq.core import names
from taskq.errors import UserError
from taskq.http.limits import Refusal
from taskq.settings import Settings

ALL = "*"
#: One header per line; their (case-insensitive) names as a Git host and taskq send them.
SIGNATURE, TIMESTAMP, DELIVERY = "X-Taskq-Signature", "X-Taskq-Timestamp", "X-Taskq-Delivery"
HUB_SIGNATURE = "X-Hub-Signature-256"


@dataclass(frozen=True)
class Credential:
    name: str
    namespaces: tuple[str, ...]

    @property
    def home(self) -> str:
        """Where a request that names no namespace, and every webhook, publishes."""
        first = self.namespaces[0]
        return constants.DEFAULT_NAMESPACE if first == ALL else first

    def allows(self, namespace: str) -> bool:
        return ALL in self.namespaces or namespace in self.namespaces


@dataclass(frozen=True)
class Principal:
    """An authenticated request. ``delivery`` is what its signature covers (None for a
    bearer token), remembered for ``ttl_seconds`` so that a replay is a duplicate."""

    credential: Credential
    delivery: str | None = None
    ttl_seconds: int = 0


class Credentials:
    def __init__(self, tokens: list[tuple[bytes, Credential]],
                 secrets: list[tuple[bytes, Credential]], *, window_seconds: int,
                 clock: Callable[[], float] = time.time, sources: bool = False) -> None:
        if not tokens and not secrets and not sources:
            raise UserError("events serve needs TASKQ_EVENTS_TOKEN, TASKQ_EVENTS_HMAC_SECRET, "
                            "TASKQ_EVENTS_TOKENS, TASKQ_EVENTS_WEBHOOKS or a git, registry "
                            "or dataset connection: every endpoint authenticates",
                            "export TASKQ_EVENTS_TOKEN=<a long random string>")
        for kind, pairs in (("tokens", tokens), ("webhook secrets", secrets)):
            seen: dict[bytes, str] = {}
            for secret, cred in pairs:
                if secret in seen:  # which namespaces would it publish to?
                    raise UserError(f"events {kind} {seen[secret]!r} and {cred.name!r} have "
                                    "the same secret", "give each credential its own secret")
                seen[secret] = cred.name
        self.tokens, self.secrets = tokens, secrets
        self.window = window_seconds
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str]) -> Credentials:
        """Secrets are read from the environment variables the settings name."""
        def read(what: str, var: str) -> bytes:
            value = environ.get(var)
            if not value:
                raise UserError(f"{what}: environment variable {var!r} is not set",
                                f"export {var}=<a long random string>")
            return value.encode()

        def scope(what: str, spaces: list[str]) -> tuple[str, ...]:
            for ns in spaces:
                if ns != ALL and ns not in settings.namespaces:
                    raise UserError(f"{what}: namespace {ns!r} is not configured (TASKQ_"
                                    f"NAMESPACES lists {', '.join(settings.namespaces)})",
                                    "add it to TASKQ_NAMESPACES or remove it from the "
                                    "credential")
            return tuple(spaces)

        default = (constants.DEFAULT_NAMESPACE,)
        tokens = [(t.get_secret_value().encode(), Credential("TASKQ_EVENTS_TOKEN", default))
                  for t in [settings.events_token] if t and t.get_secret_value()]
        for name, conf in settings.events_tokens.items():
            what = f"events token {name!r}"
            tokens.append((read(what, conf["token_env"]),
                           Credential(name, scope(what, conf["namespaces"]))))
        secrets = [(s.get_secret_value().encode(),
                    Credential("TASKQ_EVENTS_HMAC_SECRET", default))
                   for s in [settings.events_hmac_secret] if s and s.get_secret_value()]
        for name, conf in settings.events_webhooks.items():
            what = f"events webhook {name!r}"
            secrets.append((read(what, conf["secret_env"]),
                            Credential(name, scope(what, [conf["namespace"]]))))
        # Source connections authenticate their own route (taskq.http.connections).
        has_sources = any(c.get("kind") in ("git", "registry", "dataset")
                          for c in settings.connections.values())
        return cls(tokens, secrets, window_seconds=settings.events_signature_window_seconds,
                   sources=has_sources)

    # -- one request ----------------------------------------------------------------------

    def authenticate(self, headers: Any, body: bytes) -> Principal:
        """The request's principal, or a Refusal (401) that never echoes what was sent."""
        scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
        if self.tokens and scheme.lower() == "bearer":
            sent = value.strip().encode()
            found = [c for secret, c in self.tokens if hmac.compare_digest(sent, secret)]
            if found:
                return Principal(found[0])
            raise Refusal(401, "invalid bearer token")
        if self.secrets and headers.get(SIGNATURE):
            return self._taskq_signed(headers, body)
        if self.secrets and headers.get(HUB_SIGNATURE):
            cred = self._signer(headers[HUB_SIGNATURE], body)
            return Principal(cred, "sha256:" + hashlib.sha256(body).hexdigest(), self.window)
        wanted = " or ".join(x for x in (
            "an 'Authorization: Bearer' token" if self.tokens else "",
            f"an '{SIGNATURE}: sha256=...' HMAC of '<{TIMESTAMP}>.<{DELIVERY}>.<body>'"
            if self.secrets else "") if x)
        raise Refusal(401, f"authentication required: send {wanted}")

    def _taskq_signed(self, headers: Any, body: bytes) -> Principal:
        stamp, delivery = headers.get(TIMESTAMP, "").strip(), headers.get(DELIVERY, "").strip()
        if not stamp or not delivery:
            raise Refusal(401, f"{SIGNATURE} must sign '<{TIMESTAMP}>.<{DELIVERY}>.<body>': "
                               f"send {TIMESTAMP} (Unix seconds) and {DELIVERY} (an id of "
                               "yours) too; a signature of the body alone is not accepted")
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise Refusal(401, f"{TIMESTAMP}: must be Unix seconds")
        cred = self._signer(headers[SIGNATURE],
                            f"{stamp}.{delivery}.".encode() + body)
        skew = int(stamp) - self.clock()
        if abs(skew) > self.window:
            raise Refusal(401, f"{TIMESTAMP}: more than {self.window} s from the server's "
                               "clock (TASKQ_EVENTS_SIGNATURE_WINDOW_SECONDS); sign each "
                               "request when you send it")
        if not names.EVENT_ID.match(delivery):
            raise Refusal(400, f"{DELIVERY}: not an id (letters, digits, '_', '.', ':', "
                               "'-'; at most 128)")
        # Kept until the signature stops being accepted: its timestamp plus the window.
        return Principal(cred, delivery, max(1, int(skew + self.window) + 1))

    def _signer(self, signature: str, signed: bytes) -> Credential:
        sent = signature.strip().encode()
        found = [cred for secret, cred in self.secrets if hmac.compare_digest(
            sent, b"sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest().encode())]
        if not found:
            raise Refusal(401, "signature does not match the body")
        return found[0]
