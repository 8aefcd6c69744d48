"""Changes of models, datasets and runs as events: pure, so both paths that see a change (the
API call that makes it, and the poller that finds a row another writer changed) build the
same event from the same two states.

A change is identified by the entity and its *revision* (bumped once per emitted change), so
its dedup key ``<family>.<id>:r<revision>`` is the same whichever path emitted it; the store
makes sure only one of them does (the state row is compared and set under a lock).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from taskq.core.events import Event
from taskq.core.statuses import RUN_STATUS_PREFIX
from taskq.errors import ValidationError


class Family(StrEnum):
    MODELS = "models"
    DATASETS = "datasets"
    RUNS = "runs"


class Action(StrEnum):
    """What one change did; an event's kind is its first action (``model_published``)."""

    CREATED = "created"
    PUBLISHED = "published"
    ARCHIVED = "archived"
    UNARCHIVED = "unarchived"
    TAGGED = "tagged"
    UNTAGGED = "untagged"
    METRIC = "metric"
    UPDATED = "updated"


SINGULAR = {Family.MODELS: "model", Family.DATASETS: "dataset", Family.RUNS: "run"}
REGISTRY_ACTIONS = (Action.CREATED, Action.PUBLISHED, Action.ARCHIVED, Action.UNARCHIVED,
                    Action.TAGGED, Action.UNTAGGED, Action.UPDATED)
RUN_CHANGE_ACTIONS = (Action.METRIC, Action.TAGGED, Action.UNTAGGED)
#: Fields whose change is a change of a model or dataset (metadata alone is not).
WATCHED = ("name", "project", "version", "tags", "uri", "published", "published_at",
           "archived")
_EVENT_IDS = uuid.UUID("0b9d7c52-7f3e-4d8a-a6a1-3c1e5f2d8b90")


def kind(family: Family | str, action: Action | str) -> str:
    return f"{SINGULAR[Family(family)]}_{Action(action).value}"


def kinds(family: Family | str) -> tuple[str, ...]:
    actions = RUN_CHANGE_ACTIONS if Family(family) == Family.RUNS else REGISTRY_ACTIONS
    return tuple(kind(family, a) for a in actions)


def clean_tags(tags: Iterable[Any] | None) -> list[str]:
    return sorted({str(t) for t in tags or [] if str(t)})


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        # Naive values come from SQLite or from other writers: always UTC by contract.
        moment: datetime = value.astimezone(UTC) if value.tzinfo is not None else value
        return moment.replace(tzinfo=None).isoformat(timespec="microseconds")
    return str(value)


def snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """The watched state of a model or dataset row, JSON-safe and canonical."""
    return {"name": row["name"], "project": row["project"], "version": row["version"],
            "tags": clean_tags(row["tags"]), "uri": row["uri"],
            "published": bool(row["published"]), "published_at": _iso(row["published_at"]),
            "archived": bool(row["archived"])}


def entity_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the API returns and what events carry: the snapshot plus id and metadata."""
    return {"id": row["id"], "namespace": row["namespace"], **snapshot(row),
            "metadata": dict(row.get("metadata") or row.get("meta") or {}),
            **({"metrics": dict(row["metrics"] or {})} if "metrics" in row else {}),
            "created_at": _iso(row.get("created_at")),
            "updated_at": _iso(row.get("updated_at"))}


def registry_actions(prev: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Action]:
    """The actions between two snapshots, most significant first. Publishing again (a new
    ``published_at``) is a publish: that is how a re-publish fires a trigger again."""
    if prev is None:
        out = [Action.CREATED]
        if new["published"]:
            out.append(Action.PUBLISHED)
        if new["archived"]:
            out.append(Action.ARCHIVED)
        return out
    out = []
    if new["published"] and (not prev["published"]
                             or prev["published_at"] != new["published_at"]):
        out.append(Action.PUBLISHED)
    if new["archived"] and not prev["archived"]:
        out.append(Action.ARCHIVED)
    if prev["archived"] and not new["archived"]:
        out.append(Action.UNARCHIVED)
    before, after = set(prev["tags"]), set(new["tags"])
    if after - before:
        out.append(Action.TAGGED)
    if before - after:
        out.append(Action.UNTAGGED)
    others = [f for f in WATCHED if f not in ("tags", "archived", "published_at")
              and prev.get(f) != new.get(f)]
    if others and not (others == ["published"] and Action.PUBLISHED in out):
        out.append(Action.UPDATED)
    return out


def event_id(namespace: str, ref: str, revision: int) -> str:
    """Deterministic: the same change always has the same event id."""
    return str(uuid.uuid5(_EVENT_IDS, f"{namespace}:{ref}:r{revision}"))


def registry_event(family: Family | str, entity: dict[str, Any],
                   prev: dict[str, Any] | None, new: dict[str, Any], *, revision: int,
                   source: str, at: datetime) -> Event | None:
    """The event for one change of a model or dataset; None if nothing watched changed."""
    actions = registry_actions(prev, new)
    if not actions:
        return None
    ref = f"{Family(family).value}.{entity['id']}"
    return Event(id=event_id(entity["namespace"], ref, revision),
                 kind=kind(family, actions[0]), ref=ref, namespace=entity["namespace"],
                 project=entity.get("project"), timestamp=at,
                 payload={"id": entity["id"], "family": Family(family).value,
                          "entity": entity, "previous": prev,
                          "actions": [a.value for a in actions], "revision": revision,
                          "source": source})


# -- run metrics -------------------------------------------------------------------------


def metric_key(title: str, series: str) -> str:
    return f"{title}\t{series}"


def metric_point(title: str, series: str, value: Any, step: int | None,
                 at: float) -> dict[str, Any]:
    """One logged value as stored in ``runs.metrics``; ``name`` is what hook conditions use
    (the title alone when the series is the title, as ``log_metric`` logs)."""
    if not isinstance(title, str) or not title or not isinstance(series, str) or not series:
        raise ValueError("title and series must be non-empty strings")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"value of {title!r}/{series!r} must be finite, got {value!r}")
    name = title if series == title else f"{title}/{series}"
    return {"name": name, "title": title, "series": series, "value": number, "step": step,
            "at": at}


def summarize(points: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Last, min and max value per (title, series), and how many were logged."""
    out: dict[str, dict[str, Any]] = {}
    for p in points:
        title = str(p.get("title") or p.get("name"))
        series = str(p.get("series") or p.get("name"))
        value = float(p["value"])
        key = metric_key(title, series)
        s = out.get(key)
        if s is None:
            out[key] = {"title": title, "series": series, "last": value, "min": value,
                        "max": value, "step": p.get("step"), "n": 1}
        else:
            s.update(last=value, min=min(s["min"], value), max=max(s["max"], value),
                     step=p.get("step"), n=s["n"] + 1)
    return out


def run_state(tags: Iterable[Any] | None, metrics: Iterable[Mapping[str, Any]] | None
              ) -> dict[str, Any]:
    """What is compared for a run besides its status (which the event log already has)."""
    return {"tags": clean_tags(tags), "metrics": summarize(metrics or [])}


def run_change_event(run: dict[str, Any], prev: dict[str, Any], new: dict[str, Any], *,
                     revision: int, source: str, at: datetime) -> Event | None:
    """A run's tags or metrics changed: ``run_metric`` (with each changed series and its
    previous summary) or ``run_tagged`` / ``run_untagged``. None if nothing changed."""
    changed = {k: {**v, "previous": prev["metrics"].get(k)}
               for k, v in new["metrics"].items() if prev["metrics"].get(k) != v}
    before, after = set(prev["tags"]), set(new["tags"])
    actions = ([Action.METRIC] if changed else []) + (
        [Action.TAGGED] if after - before else []) + (
        [Action.UNTAGGED] if before - after else [])
    if not actions:
        return None
    ref = f"runs.{run['uuid']}"
    payload = {**run, "tags": new["tags"], "previous_tags": prev["tags"], "metrics": changed,
               "actions": [a.value for a in actions], "revision": revision,
               "source": source}
    return Event(id=event_id(run["namespace"], ref, revision), kind=kind(Family.RUNS,
                 actions[0]), ref=ref, namespace=run["namespace"], project=run.get("project"),
                 timestamp=at, payload=payload)


# -- dedup keys ----------------------------------------------------------------------------


def change_key(event: Event) -> str:
    """One firing per (trigger, entity, change): a registry, tag or metric change is keyed
    by its revision, a run status by (run, status, incarnation), a value logged on a model
    (no revision: it changes no watched state) by its event."""
    if event.kind.startswith(RUN_STATUS_PREFIX):
        incarnation = event.payload.get("incarnation") or 0
        return f"{event.ref}:{event.kind}" + (f":i{incarnation}" if incarnation else "")
    if event.payload.get("revision") is None:  # a model's logged metric: each is one
        return f"{event.ref}:e{event.id}"
    return f"{event.ref}:r{event.payload.get('revision')}"


_TAG = re.compile(r"^[^\s,][^,]{0,127}$")


def check_tags(tags: Any, field: str = "tags") -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list | tuple | set):
        raise ValidationError(f"{field}: expected a list of tags, got {type(tags).__name__}")
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise ValidationError(f"{field}: {tag!r} is not a tag (a non-empty string without "
                                  "commas, at most 128 characters)")
    return clean_tags(tags)
