"""Telling what a trigger waits for that matches nothing yet: a warning when it is
registered (Python ``warnings`` and the log; the CLI prints it), a mark when it is listed.
Never a refusal: registration order does not matter (:mod:`taskq.core.unmatched`)."""

from __future__ import annotations

import logging
import warnings

from taskq.core.stored import StoredTrigger
from taskq.core.unmatched import KnownNames, Unmatched, namespaces, unmatched_all
from taskq.errors import UnmatchedName
from taskq.ports import Context
from taskq.services import catalog

log = logging.getLogger(__name__)


def _run_refs(trigger: StoredTrigger) -> list[str]:
    spec = trigger.spec
    refs = [str(i.get("ref", "")) for i in spec.get("inputs", [])] + [str(spec.get("ref", ""))]
    return [r.partition(".")[2] for r in refs if r.startswith("runs.")]


def find(rt: Context, trigger: StoredTrigger,
         cache: dict[str, KnownNames] | None = None) -> list[Unmatched]:
    """The trigger's watched names that match nothing yet. ``cache`` (by namespace) lets
    a listing read each namespace's names once."""
    cache = {} if cache is None else cache
    runs = _run_refs(trigger)
    known: dict[str, KnownNames] = {}
    for ns in namespaces(trigger.kind, trigger.spec, trigger.namespace):
        if ns not in cache or runs:
            names = rt.store.known_names(ns, runs)
            if runs:
                known[ns] = names
                continue
            cache[ns] = names
        known[ns] = cache[ns]
    return unmatched_all(trigger.kind, trigger.spec, trigger.namespace, known)


def notice(rt: Context, trigger: StoredTrigger, *, stacklevel: int = 2) -> list[Unmatched]:
    """Warn about each name of a just-registered trigger that matches nothing yet."""
    try:
        found = find(rt, trigger)
    except Exception as exc:  # telling is a courtesy: it never fails a registration
        log.warning("taskq: could not check the names trigger %r waits for: %s",
                    trigger.name, exc)
        return []
    for u in found:
        message = u.message(trigger.name)
        if catalog.is_syncing():  # a worker storing the triggers its jobs declare: its log
            log.warning("taskq: %s", message)
            continue
        log.info("taskq: %s", message)  # the caller sees the warning; the log keeps it
        warnings.warn(message, UnmatchedName, stacklevel=stacklevel)
    return found
