"""``taskq events serve``: an HTTP endpoint so outside systems can publish events.

Tornado, because it is already how Flower serves (so it is in every taskq install), and it
caps request bodies before a handler sees them. Every route authenticates
(:mod:`taskq.http.auth`): a bearer token or a signature, each credential scoped to the
namespaces it may publish into. A Git host can post its webhook straight to
``/events/<name>``: the body becomes the event's fields, in its credential's namespace.
Slow or half-open clients are dropped after the header and body timeouts; bad input is a
4xx naming the field or the limit (:mod:`taskq.http.limits`), never a 5xx.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import tornado.httpserver
import tornado.web

from taskq.api.client import Client
from taskq.errors import EventInputError, ValidationError
from taskq.http import triggers as trigger_routes
from taskq.http.auth import Credentials, Principal
from taskq.http.base import Base
from taskq.http.connections import ROUTE, ConnectionWebhookHandler, log_request
from taskq.http.limits import MAX_BODY_BYTES, Refusal, parse_json
from taskq.http.openapi import openapi
from taskq.services import catalog
from taskq.services import connections as source_connections
from taskq.services import custom_events as external

log = logging.getLogger(__name__)

#: Trusted only with a bearer token: with a signature, only what it covers names the event.
_ID_HEADERS = ("Idempotency-Key", "X-GitHub-Delivery", "X-Gitlab-Event-UUID")
__all__ = ["MAX_BODY_BYTES", "Credentials", "make_app", "openapi", "serve"]


class EventsHandler(Base):
    async def post(self, name: str | None = None) -> None:
        try:
            await self._publish(name)
        except Refusal as exc:
            self.fail(exc.status, exc.reason)
        except (ValidationError, EventInputError) as exc:
            self.fail(400, str(exc))
        except Exception:  # Redis or the database down: say so, keep the details in logs
            log.exception("taskq: publishing %r failed", name)
            self.fail(503, "the event could not be stored; retry later")

    async def _publish(self, name: str | None) -> None:
        settings = self.client.settings
        body = parse_json(self.request.body or b"", self.request.headers.get("Content-Type", ""),
                          settings.events_max_json_depth)
        if not isinstance(body, dict):
            raise Refusal(400, "body: must be a JSON object")
        who: Principal = self.principal
        cred = who.credential
        query = self.get_query_argument("namespace", None)
        if name is None and "events" in body:
            await self._publish_many(body, cred, query, who.delivery)
            return
        if name is None:
            unknown = sorted(set(body) - {"name", "fields", "id", "namespace"})
            if unknown:
                raise Refusal(400, f"{unknown[0]}: unknown field (use name, fields, id, "
                                   "namespace)")
            name, fields, event_id = body.get("name"), body.get("fields"), body.get("id")
            asked = body.get("namespace") or query
        else:  # a webhook: its namespace is its credential's, never the query string's
            fields, event_id, asked = body, None, None
            if query is not None and query != cred.home:
                raise Refusal(403, f"namespace {query!r}: a webhook publishes into its "
                                   f"credential's namespace {cred.home!r}; the query string "
                                   "cannot choose another")
        namespace = catalog.check_namespace(self.client.rt, asked or cred.home)
        if not cred.allows(namespace):
            raise Refusal(403, f"namespace {namespace!r}: credential {cred.name!r} may "
                               f"publish into {', '.join(cred.namespaces)} only")
        if who.delivery is None:
            for header in _ID_HEADERS:
                event_id = event_id or self.request.headers.get(header)
        # Not narrowed to str: the service checks the name and says what is wrong with it.
        event_name: Any = name
        rt, source = self.client.rt, f"http:{cred.name}"

        def publish() -> tuple[str, bool]:
            if who.delivery is None:
                event, created = external.publish_once(
                    rt, event_name, fields, namespace=namespace, event_id=event_id,
                    source=source)
                return event.id, not created
            return external.ingest(rt, event_name, fields, namespace=namespace,
                                   event_id=event_id or who.delivery, delivery=who.delivery,
                                   ttl_seconds=who.ttl_seconds, source=source)

        event_id_out, duplicate = await asyncio.get_running_loop().run_in_executor(None,
                                                                                   publish)
        self.set_status(202)
        self.finish({"id": event_id_out, "name": name, "namespace": namespace,
                     "duplicate": duplicate})


    async def _publish_many(self, body: dict[str, Any], cred: Any, query: str | None,
                            delivery: str | None) -> None:
        """``{"events": [{"name", "fields", "id"}, ...]}``: one transaction for them all,
        each checked (the error names its index) and idempotent by ``id`` (a signed body
        without ids: by its signed delivery id and the index, so a replay adds nothing)."""
        unknown = sorted(set(body) - {"events", "namespace"})
        if unknown:
            raise Refusal(400, f"{unknown[0]}: unknown field (use events, namespace)")
        items = body["events"]
        if not isinstance(items, list):
            raise Refusal(400, "events: must be a list of {name, fields, id}")
        batch = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or set(item) - {"name", "fields", "id"}:
                raise Refusal(400, f"events[{i}]: must be an object of name, fields, id")
            batch.append((item.get("name"), item.get("fields"),
                          item.get("id") or (f"{delivery}.{i}" if delivery else None)))
        namespace = catalog.check_namespace(self.client.rt,
                                            body.get("namespace") or query or cred.home)
        if not cred.allows(namespace):
            raise Refusal(403, f"namespace {namespace!r}: credential {cred.name!r} may "
                               f"publish into {', '.join(cred.namespaces)} only")
        rt = self.client.rt

        def publish() -> list[tuple[Any, bool]]:
            return external.publish_many(rt, batch, namespace=namespace,
                                         source=f"http:{cred.name}")

        done = await asyncio.get_running_loop().run_in_executor(None, publish)
        self.set_status(202)
        self.finish({"namespace": namespace, "events": [
            {"id": e.id, "name": e.payload.get("name"), "duplicate": not new}
            for e, new in done]})


class OpenAPIHandler(Base):
    def get(self) -> None:
        self.finish(openapi())


class HealthHandler(Base):
    def get(self) -> None:
        self.finish({"ok": True})


def make_app(client: Client, auth: Credentials,
             sources: dict[str, Any] | None = None) -> tornado.web.Application:
    """``sources``: the source connections with their secrets (read from the environment
    when None)."""
    deps = {"client": client, "auth": auth}
    hooks = {"client": client, "sources": (source_connections.sources(client.rt)
                                           if sources is None else sources)}
    return tornado.web.Application([
        # Before /events/<name>, which would take /events/replay for an event's name.
        *[(route, handler, deps) for route, handler in trigger_routes.ROUTES],
        (r"/events", EventsHandler, deps),
        (r"/events/([A-Za-z0-9][A-Za-z0-9_.-]{0,127})", EventsHandler, deps),
        (ROUTE, ConnectionWebhookHandler, hooks),
        (r"/openapi.json", OpenAPIHandler, deps),
        (r"/healthz", HealthHandler, deps),
    ], default_handler_class=_NotFound, default_handler_args=deps, log_function=log_request)


class _NotFound(Base):
    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            self.fail(404, f"no route {self.request.path!r}; POST /events, /events/<name>, "
                           "/events/replay, /triggers/<name>/test|what-if or "
                           "/connections/<name>/webhook, GET /triggers/<name>/explain|history, "
                           "/openapi.json")


def serve(client: Client, auth: Credentials, host: str, port: int) -> None:
    settings = client.settings
    sources = source_connections.sources(client.rt)  # a missing secret stops it here

    async def main() -> None:
        # The header timeout is also how long an idle keep-alive connection is kept.
        server = tornado.httpserver.HTTPServer(
            make_app(client, auth, sources), max_body_size=2 * MAX_BODY_BYTES, xheaders=False,
            idle_connection_timeout=settings.events_header_timeout,
            body_timeout=settings.events_body_timeout)
        server.listen(port, address=host)
        await asyncio.Event().wait()

    asyncio.run(main())
