"""Why a trigger fired or did not, and what a change would do, in the Python API: explain,
history, a dry run against one event, a draft against past events (docs/explain.md).

A facet of :class:`taskq.Client` (through :class:`~taskq.api.triggers.TriggersFacet`). Every
answer is computed by the evaluator's own matcher and planners; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError as PydanticError

from taskq.api.publishing import ago
from taskq.api.scope import Scope
from taskq.core.events import Event, custom_event, new_event_id, now
from taskq.core.stored import StoredTrigger
from taskq.core.times import parse_age, utcnow
from taskq.errors import EventError, ValidationError, first_error
from taskq.runtime import Runtime
from taskq.services import explain as explaining
from taskq.services import what_if as drafting
from taskq.services.event_log import paused_gc

#: The most events one call of explain judges (the decisions are all held), and one page
#: of it (what the CLI and HTTP hand out, so their memory stays bounded).
MAX_EXPLAIN = 100_000
MAX_EXPLAIN_PAGE = explaining.PAGE


class ExplainFacet:
    rt: Runtime
    scope: Scope

    def explain(self, name: str, *, event_id: str | None = None,
                since: str | float | timedelta | None = None, limit: int = 100,
                namespace: str | None = None, run: str | None = None
                ) -> list[dict[str, Any]]:
        """For each stored event (one by id, the status events of ``run``, else those
        since ``since``, the newest ``limit``, at most 100,000) of the namespaces the
        trigger listens to: what it decided and why, under the revision in force at the
        event's time."""
        if run is not None:
            if event_id is not None or since is not None:
                raise ValidationError("run: give run alone, not with event_id or since")
            ns = self.scope.one(self.rt, namespace)
            return [d.as_dict() for d in
                    explaining.explain_run(self.rt, self.rt.kinds, name, ns, str(run))]
        decisions: list[dict[str, Any]] = self._explain(name, event_id, since, limit,
                                                        namespace, None, MAX_EXPLAIN)["decisions"]
        return decisions

    def explain_page(self, name: str, *, since: str | float | timedelta | None = None,
                     limit: int = 100, before: int | None = None,
                     namespace: str | None = None) -> dict[str, Any]:
        """One page of :meth:`explain` (at most 10,000 decisions), what the CLI and HTTP
        hand out: ``decisions`` and ``next``, the cursor to pass as ``before`` for the
        older page (None when no older event is left)."""
        if before is not None and (isinstance(before, bool) or not isinstance(before, int)
                                   or before < 1):
            raise ValidationError("before: must be a cursor a page of explain returned")
        return self._explain(name, None, since, limit, namespace, before, MAX_EXPLAIN_PAGE)

    def _explain(self, name: str, event_id: str | None,
                 since: str | float | timedelta | None, limit: int, namespace: str | None,
                 before: int | None, most: int) -> dict[str, Any]:
        ns = self.scope.one(self.rt, namespace)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
            raise ValidationError(f"limit: must be a whole number from 1 to {most}")
        try:
            age = (since if isinstance(since, timedelta) or since is None else
                   timedelta(seconds=since) if isinstance(since, int | float)
                   else parse_age(since))
        except ValueError as exc:
            raise ValidationError(f"since: {exc}") from None
        with paused_gc():  # until the answer is built: 100,000 decisions, then their dicts
            done = explaining.explain(self.rt, self.rt.kinds, name, ns, event_id=event_id,
                                      since=utcnow() - age if age is not None else None,
                                      limit=limit, before=before)
            return {"decisions": [d.as_dict() for d in done.decisions], "next": done.next}

    def trigger_history(self, name: str, namespace: str | None = None
                        ) -> list[dict[str, Any]]:
        """Every revision of the trigger ``name``, oldest first: what changed, when, by whom
        (python, cli, http, yaml, code, evaluator, beat)."""
        ns = self.scope.one(self.rt, namespace)
        return [r.as_dict() for r in explaining.history(self.rt, name, ns)]

    def test_trigger(self, name: str, event: str | dict[str, Any], *,
                     draft: StoredTrigger | None = None,
                     namespace: str | None = None) -> dict[str, Any]:
        """A dry run of the trigger as stored (or ``draft``) against one event: a stored
        event's id, or one written by hand (``{"name": ..., "fields": {...}}`` for a
        published event, or ``{"kind": ..., "ref": ..., "payload": ...}``). The decision,
        with the params a clone would get; nothing is written."""
        ns = self.scope.one(self.rt, namespace)
        found = event_of(self.rt, event, ns, sees=self.scope.sees)
        return explaining.dry_run(self.rt, self.rt.kinds, name, ns, found,
                                  draft=draft).as_dict()

    def what_if(self, name: str, draft: StoredTrigger, since: str | float | timedelta, *,
                until: str | float | timedelta | None = None,
                namespace: str | None = None,
                progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """What ``draft`` (``taskq.api.compat.polyaxon_files.draft``, or any stored-trigger
        value) would have done with the stored events of the last ``since``, beside the
        trigger ``name`` as it is: how many each would have fired, the events where they
        differ, and the params of the runs the draft would have started."""
        ns = self.scope.one(self.rt, namespace)
        start = utcnow()
        begin = ago(since, "since", start)
        end = None if until is None else ago(until, "until", start)
        done = drafting.what_if(self.rt, self.rt.kinds, name=name, namespace=ns, draft=draft,
                                since=begin, until=end, progress=progress)
        return {"events": done.events, "current": done.current, "draft": done.draft,
                "differ": done.differ}


def event_of(rt: Runtime, event: Any, namespace: str, *, sees: Callable[[str], bool]
             ) -> Event:
    """The event a dry run is about: a stored one by id (of a namespace the caller
    ``sees``), or one written by hand."""
    if isinstance(event, str):
        stored = rt.store.find_event(event)
        if stored is None or not sees(stored.namespace):
            raise ValidationError(f"event: no stored event {event!r}")
        return stored
    if not isinstance(event, dict):
        raise ValidationError("event: a stored event's id or a mapping")
    try:
        if "kind" in event:
            return Event.model_validate({"id": new_event_id(), "timestamp": now(),
                                         "namespace": namespace, **event})
        if isinstance(event.get("name"), str):
            return custom_event(event["name"], event.get("fields") or {},
                                namespace=event.get("namespace") or namespace,
                                source=event.get("source"))
    except (PydanticError, EventError) as exc:
        raise ValidationError(first_error(exc, "event")) from None
    raise ValidationError("event: give `kind` and `ref` (any event), or `name` and "
                          "`fields` (a published event)")
