"""Explain, dry runs, history and replay over HTTP: the answers of `taskq triggers explain`,
`test`, `history` and `taskq events replay`, as JSON.

Every route authenticates as the events routes do, and a credential reaches only the
namespaces it may publish into: the namespace asked for (``?namespace=`` or the body's
``namespace``) must be one of them, else 403; none asked is the credential's own. The work
is the services' (the same code as the CLI and Python), run off the event loop.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from taskq.api.compat.polyaxon_files import draft_of, shaped
from taskq.api.explaining import event_of
from taskq.api.scope import Scope
from taskq.core.times import parse_age, utcnow
from taskq.errors import NotFound, ValidationError
from taskq.http.base import Base
from taskq.http.limits import Refusal, parse_json
from taskq.services import catalog
from taskq.services import explain as explaining
from taskq.services import replay as replaying
from taskq.services import what_if as drafting

log = logging.getLogger(__name__)

NAME = r"([A-Za-z0-9][A-Za-z0-9_.-]{0,127})"


class _Scoped(Base):
    def _namespace(self, asked: Any) -> str:
        cred = self.principal.credential
        namespace = catalog.check_namespace(self.client.rt, asked or cred.home)
        if not cred.allows(namespace):
            raise Refusal(403, f"namespace {namespace!r}: credential {cred.name!r} may "
                               f"reach {', '.join(cred.namespaces)} only")
        return namespace

    def _body(self) -> dict[str, Any]:
        body = parse_json(self.request.body or b"{}", self.request.headers.get(
            "Content-Type", "application/json"), self.client.settings.events_max_json_depth)
        if not isinstance(body, dict):
            raise Refusal(400, "body: must be a JSON object")
        return body

    async def _answer(self, work: Callable[[], Any]) -> None:
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, work)
        except Refusal as exc:
            self.fail(exc.status, exc.reason)
        except NotFound as exc:
            self.fail(404, str(exc))
        except (ValidationError, ValueError) as exc:
            self.fail(400, str(exc))
        except Exception:  # the database or Redis away: say so, keep the details in logs
            log.exception("taskq: %s %s failed", self.request.method, self.request.path)
            self.fail(503, "the answer could not be computed; retry later")
        else:
            self.finish(result)


def _since(value: Any, what: str) -> timedelta:
    try:
        return parse_age(str(value))
    except ValueError as exc:
        raise ValidationError(f"{what}: {exc}") from None


class ExplainHandler(_Scoped):
    async def get(self, name: str) -> None:
        rt = self.client.rt
        since, event = self.get_query_argument("since", None), self.get_query_argument(
            "event", None)
        limit = self.get_query_argument("limit", "100")
        run = self.get_query_argument("run", None)
        before = self.get_query_argument("before", None)

        def work() -> dict[str, Any]:
            ns = self._namespace(self.get_query_argument("namespace", None))
            if not limit.isdigit() or not 1 <= int(limit) <= explaining.PAGE:
                raise ValidationError(f"limit: must be a whole number from 1 to "
                                      f"{explaining.PAGE}")
            if before is not None and (not before.isdigit() or int(before) < 1):
                raise ValidationError("before: must be a cursor a page of explain returned")
            if run is not None and (since or event or before):
                raise ValidationError("run: give run alone, not with event, since or before")
            if run is not None:
                return {"trigger": name, "namespace": ns, "next": None, "decisions": [
                    d.as_dict() for d in explaining.explain_run(rt, rt.kinds, name, ns, run)]}
            start = utcnow() - _since(since, "since") if since else None
            done = explaining.explain(rt, rt.kinds, name, ns, event_id=event, since=start,
                                      limit=int(limit),
                                      before=int(before) if before else None)
            return {"trigger": name, "namespace": ns,
                    "decisions": [d.as_dict() for d in done.decisions], "next": done.next}

        await self._answer(work)


class HistoryHandler(_Scoped):
    async def get(self, name: str) -> None:
        rt = self.client.rt

        def work() -> dict[str, Any]:
            ns = self._namespace(self.get_query_argument("namespace", None))
            return {"trigger": name, "namespace": ns,
                    "revisions": [r.as_dict() for r in explaining.history(rt, name, ns)]}

        await self._answer(work)


class TestHandler(_Scoped):
    async def post(self, name: str) -> None:
        rt = self.client.rt

        def work() -> dict[str, Any]:
            body = self._body()
            ns = self._namespace(body.get("namespace"))
            cred = self.principal.credential
            found = event_of(rt, body.get("event"), ns, sees=cred.allows)
            return explaining.dry_run(rt, rt.kinds, name, ns, found).as_dict()

        await self._answer(work)


class ReplayHandler(_Scoped):
    async def post(self) -> None:
        rt = self.client.rt

        def work() -> dict[str, Any]:
            body = self._body()
            unknown = sorted(set(body) - {"since", "until", "trigger", "dry_run",
                                          "namespace"})
            if unknown:
                raise Refusal(400, f"{unknown[0]}: unknown field (use since, until, "
                                   "trigger, dry_run, namespace)")
            if "since" not in body:
                raise ValidationError("since: required (90s, 15m, 2h, 7d)")
            ns = self._namespace(body.get("namespace"))
            now = utcnow()
            done = replaying.replay(
                rt, rt.kinds, namespace=ns, since=now - _since(body["since"], "since"),
                until=(now - _since(body["until"], "until")) if body.get("until") else None,
                trigger=body.get("trigger"), dry_run=bool(body.get("dry_run")))
            return {"namespace": ns, "dry_run": bool(body.get("dry_run")),
                    **done.__dict__}

        await self._answer(work)


class WhatIfHandler(_Scoped):
    """`taskq triggers what-if` with the draft in the body: ``draft`` is what the file of
    ``-f`` holds (``triggers:`` or ``hooks:``, as JSON), the entry named as the route is."""

    async def post(self, name: str) -> None:
        def work() -> dict[str, Any]:
            body = self._body()
            unknown = sorted(set(body) - {"draft", "since", "until", "namespace"})
            if unknown:
                raise Refusal(400, f"{unknown[0]}: unknown field (use draft, since, until, "
                                   "namespace)")
            for needed in ("draft", "since"):
                if needed not in body:
                    raise ValidationError(f"{needed}: required")
            ns = self._namespace(body.get("namespace"))
            data = copy.deepcopy(shaped(body["draft"], "draft", "the draft"))
            for part in ("triggers", "hooks"):
                for i, entry in enumerate(data.get(part) or []):
                    if isinstance(entry, dict) and entry.get("name") == name:
                        if entry.get("namespace", ns) != ns:
                            raise ValidationError(
                                f"draft.{part}[{i}].namespace: {entry['namespace']!r} is "
                                f"not the namespace asked for ({ns!r})")
                        entry["namespace"] = ns
            bound = copy.copy(self.client)  # the server's runtime, bound to ``ns`` alone
            bound.scope = Scope(ns)
            draft = draft_of(bound, data, name, "draft", "the draft")
            now = utcnow()
            done = drafting.what_if(
                bound.rt, bound.rt.kinds, name=name, namespace=ns, draft=draft,
                since=now - _since(body["since"], "since"),
                until=(now - _since(body["until"], "until")) if body.get("until") else None)
            return {"trigger": name, "namespace": ns, **done.__dict__}

        await self._answer(work)


ROUTES = [
    (rf"/triggers/{NAME}/explain", ExplainHandler),
    (rf"/triggers/{NAME}/history", HistoryHandler),
    (rf"/triggers/{NAME}/test", TestHandler),
    (rf"/triggers/{NAME}/what-if", WhatIfHandler),
    (r"/events/replay", ReplayHandler),
]
