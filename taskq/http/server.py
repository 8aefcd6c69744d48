"""``taskq events serve``: an HTTP endpoint so outside systems can publish events.

Tornado, because it is already how Flower serves (so it is in every taskq install), and it
caps request bodies before a handler sees them. Every route authenticates: a bearer token
(``TASKQ_EVENTS_TOKEN``) or an HMAC-SHA256 signature of the body (``TASKQ_EVENTS_HMAC_SECRET``,
header ``X-Taskq-Signature`` or a Git host's ``X-Hub-Signature-256``, both
``sha256=<hex>``). A Git host can post its webhook straight to ``/events/<name>``: the body
becomes the event's fields and its delivery id makes redeliveries one event.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any

import tornado.httpserver
import tornado.web

from taskq.api.client import Client
from taskq.errors import ValidationError
from taskq.services import custom_events as external

log = logging.getLogger(__name__)

#: Whole request bodies above this are refused with 413 (the server drops anything past
#: twice that without reading it).
MAX_BODY_BYTES = external.MAX_PAYLOAD_BYTES + 4096
_ID_HEADERS = ("Idempotency-Key", "X-GitHub-Delivery", "X-Gitlab-Event-UUID")


class AuthConfig:
    def __init__(self, token: str | None, hmac_secret: str | None) -> None:
        if not token and not hmac_secret:
            raise ValueError("events serve needs TASKQ_EVENTS_TOKEN or "
                             "TASKQ_EVENTS_HMAC_SECRET: every endpoint authenticates")
        self.token = token.encode() if token else None
        self.secret = hmac_secret.encode() if hmac_secret else None

    def check(self, request: Any) -> str | None:
        """None if authenticated, else the reason (never echoing what was sent)."""
        auth = request.headers.get("Authorization", "")
        if self.token and auth.startswith("Bearer "):
            if hmac.compare_digest(auth[len("Bearer "):].strip().encode(), self.token):
                return None
            return "invalid bearer token"
        signature = (request.headers.get("X-Taskq-Signature")
                     or request.headers.get("X-Hub-Signature-256"))
        if self.secret and signature:
            expected = "sha256=" + hmac.new(self.secret, request.body or b"",
                                            hashlib.sha256).hexdigest()
            if hmac.compare_digest(signature.strip().encode(), expected.encode()):
                return None
            return "signature does not match the body"
        wanted = " or ".join(x for x in (
            "an 'Authorization: Bearer' token" if self.token else "",
            "an 'X-Taskq-Signature: sha256=...' HMAC of the body" if self.secret else "") if x)
        return f"authentication required: send {wanted}"


class _Base(tornado.web.RequestHandler):
    def initialize(self, client: Client, auth: AuthConfig) -> None:
        self.client = client
        self.auth = auth

    def prepare(self) -> None:
        reason = self.auth.check(self.request)
        if reason is not None:
            self.set_header("WWW-Authenticate", 'Bearer realm="taskq"')
            self.fail(401, reason)

    def fail(self, status: int, reason: str) -> None:
        self.set_status(status)
        self.finish({"error": reason})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason or "error"})


class EventsHandler(_Base):
    async def post(self, name: str | None = None) -> None:
        if len(self.request.body) > MAX_BODY_BYTES:
            return self.fail(413, f"body: {len(self.request.body)} bytes, more than "
                                  f"{MAX_BODY_BYTES}")
        ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype != "application/json":
            return self.fail(415, "Content-Type: must be application/json")
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError as exc:
            return self.fail(400, f"body: not valid JSON ({exc})")
        if not isinstance(body, dict):
            return self.fail(400, "body: must be a JSON object")
        if name is None:
            unknown = sorted(set(body) - {"name", "fields", "id", "namespace"})
            if unknown:
                return self.fail(400, f"{unknown[0]}: unknown field (use name, fields, id, "
                                      "namespace)")
            name, fields = body.get("name"), body.get("fields")
            event_id = body.get("id")
            namespace = body.get("namespace") or self.get_query_argument("namespace", None)
        else:
            fields, event_id = body, None
            namespace = self.get_query_argument("namespace", None)
        for header in _ID_HEADERS:
            event_id = event_id or self.request.headers.get(header)
        loop = asyncio.get_running_loop()
        try:
            event_id_out = await loop.run_in_executor(
                None, lambda: self.client.publish_event(name, fields,  # type: ignore[arg-type]
                                                        namespace=namespace,
                                                        event_id=event_id))
        except ValidationError as exc:
            return self.fail(400, str(exc))
        except Exception:  # Redis or the database down: say so, keep the details in logs
            log.exception("taskq: publishing %r failed", name)
            return self.fail(503, "the event could not be stored; retry later")
        self.set_status(202)
        self.finish({"id": event_id_out, "name": name,
                     "namespace": namespace or "default"})


class OpenAPIHandler(_Base):
    def get(self) -> None:
        self.finish(openapi())


class HealthHandler(_Base):
    def get(self) -> None:
        self.finish({"ok": True})


def make_app(client: Client, auth: AuthConfig) -> tornado.web.Application:
    deps = {"client": client, "auth": auth}
    return tornado.web.Application([
        (r"/events", EventsHandler, deps),
        (r"/events/([A-Za-z0-9][A-Za-z0-9_.-]{0,127})", EventsHandler, deps),
        (r"/openapi.json", OpenAPIHandler, deps),
        (r"/healthz", HealthHandler, deps),
    ], default_handler_class=_NotFound, default_handler_args=deps)


class _NotFound(_Base):
    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            self.fail(404, f"no route {self.request.path!r}; POST /events or "
                           "/events/<name>, GET /openapi.json")


def serve(client: Client, auth: AuthConfig, host: str, port: int) -> None:
    async def main() -> None:
        server = tornado.httpserver.HTTPServer(
            make_app(client, auth), max_body_size=2 * MAX_BODY_BYTES, xheaders=False)
        server.listen(port, address=host)
        await asyncio.Event().wait()

    asyncio.run(main())


def openapi() -> dict[str, Any]:
    error = {"type": "object", "properties": {"error": {"type": "string"}},
             "required": ["error"]}
    accepted = {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "namespace": {"type": "string"}}}
    fields = {"type": "object", "description": "Payload fields; jobs map them to params.",
              "additionalProperties": True}
    responses = {
        "202": {"description": "Stored and queued for evaluation",
                "content": {"application/json": {"schema": accepted}}},
        **{code: {"description": text, "content": {"application/json": {"schema": error}}}
           for code, text in (("400", "Invalid input; the error names the field"),
                              ("401", "Not authenticated"), ("413", "Body too large"),
                              ("415", "Not JSON"), ("503", "Storage unavailable; retry"))}}
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"signature": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "taskq events", "version": "1"},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "signature": {"type": "apiKey", "in": "header", "name": "X-Taskq-Signature",
                          "description": "sha256=<hex HMAC-SHA256 of the body>"}}},
        "security": security,
        "paths": {
            "/events": {"post": {
                "summary": "Publish an event",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["name"],
                               "additionalProperties": False, "properties": {
                                   "name": {"type": "string", "maxLength": 128},
                                   "fields": fields,
                                   "id": {"type": "string", "maxLength": 128,
                                          "description": "Repeats are one event"},
                                   "namespace": {"type": "string"}}}}}},
                "responses": responses}},
            "/events/{name}": {"post": {
                "summary": "Publish an event whose fields are the whole body (webhooks)",
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"type": "string"}},
                               {"name": "namespace", "in": "query",
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": fields}}},
                "responses": responses}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI"}}}},
            "/healthz": {"get": {"summary": "Liveness",
                                 "responses": {"200": {"description": "ok"}}}},
        },
    }
