"""``POST /connections/<name>/webhook``: a git host, an image registry or a dataset system
posts its own webhook, unchanged, and taskq emits ``connection_*`` events.

The provider's proof replaces the bearer token on this route (a git host cannot send one):
GitHub's ``X-Hub-Signature-256``, GitLab's ``X-Gitlab-Token``, ... checked against the
connection's secret before the body is parsed. The namespace is the connection's, never the
query string's. A refusal names the header, never the secret or what was sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import tornado.log
import tornado.web

from taskq.api.client import Client
from taskq.core.connections import SignatureRefused, Source, verify
from taskq.core.webhooks import PayloadRefused
from taskq.errors import EventInputError, ValidationError
from taskq.http.limits import MAX_BODY_BYTES, Refusal, parse_json
from taskq.services import connections as service

log = logging.getLogger(__name__)
ROUTE = r"/connections/([A-Za-z0-9][A-Za-z0-9_.-]{0,127})/webhook"


class ConnectionWebhookHandler(tornado.web.RequestHandler):
    def initialize(self, client: Client, sources: dict[str, tuple[Source, bytes | None]]
                   ) -> None:
        self.client = client
        self.sources = sources

    async def post(self, name: str) -> None:
        try:
            await self._receive(name)
        except SignatureRefused as exc:
            self._fail(401, str(exc))
        except Refusal as exc:
            self._fail(exc.status, exc.reason)
        except (PayloadRefused, EventInputError, ValidationError) as exc:
            self._fail(400, str(exc))
        except Exception:  # Redis or the database down: say so, keep the details in logs
            log.exception("taskq: webhook of connection %r failed", name)
            self._fail(503, "the events could not be stored; retry later")

    async def _receive(self, name: str) -> None:
        entry = self.sources.get(name)
        if entry is None:
            raise Refusal(404, f"connection {name!r}: no git, registry or dataset "
                               "connection of that name is configured")
        src, secret = entry
        raw = self.request.body or b""
        if len(raw) > MAX_BODY_BYTES:
            raise Refusal(413, f"body: {len(raw)} bytes, more than the limit of "
                               f"{MAX_BODY_BYTES} bytes")
        verify(src, self.request.headers, raw, secret,
               query_secret=self.get_query_argument("secret", None))
        asked = self.get_query_argument("namespace", None)
        if asked is not None and asked != src.namespace:
            raise Refusal(403, f"namespace {asked!r}: connection {name!r} publishes into "
                               f"{src.namespace!r}; the query string cannot choose another")
        settings = self.client.settings
        body = parse_json(raw, self.request.headers.get("Content-Type", ""),
                          settings.events_max_json_depth)
        if not isinstance(body, dict):
            raise Refusal(400, "body: must be a JSON object")
        headers = self.request.headers  # case-insensitive, as providers vary the spelling

        def receive() -> dict[str, Any]:
            return service.receive(self.client.rt, src, headers, body, raw,
                                   ttl_seconds=settings.events_signature_window_seconds)

        answer = await asyncio.get_running_loop().run_in_executor(None, receive)
        self.set_status(202)
        self.finish(answer)

    def _fail(self, status: int, reason: str) -> None:
        self.set_status(status)
        self.finish({"error": reason})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason or "error"})


def log_request(handler: tornado.web.RequestHandler) -> None:
    """The access log, without the query string: Docker Hub's webhook carries its secret
    there (it cannot sign), and a secret is never written to a log."""
    status = handler.get_status()
    write = (tornado.log.access_log.info if status < 400 else
             tornado.log.access_log.warning if status < 500 else tornado.log.access_log.error)
    write("%d %s %s %.2fms", status, handler.request.method, handler.request.path,
          1000.0 * handler.request.request_time())
