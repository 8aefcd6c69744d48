"""Every name taskq accepts, checked one way: job, event and field names, kinds, refs,
namespaces. A validator raises ``EventError`` naming what is wrong and what is expected.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from taskq.core import kinds as catalogue
from taskq.core.statuses import RUN_STATUS_KINDS, RUN_STATUS_PREFIX
from taskq.errors import EventError

#: A job, event, model or dataset name.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: A payload field (it may start with ``_``).
FIELD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
#: A caller's event id (a Git host's delivery id, ...).
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,127}$")
_REF_RE = re.compile(rf"^(runs|jobs|models|datasets|events|connections|projects)\."
                     rf"({NAME.pattern[1:-1]})$|^org$")
#: Trigger side only: ``jobs.*``, ``models.*``, ``datasets.*``, ``events.*``,
#: ``connections.*`` match every entity of that family (filters narrow them); events
#: always name one entity.
_WILDCARD_RE = re.compile(r"^(jobs|models|datasets|events|connections)\.\*$")
WILDCARD = "*"

_NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")




def validate_kind(kind: str) -> str:
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise EventError(
            f"kind {kind!r} is malformed: use lower-case letters, digits, '_', '.', '-' "
            "starting with a letter (e.g. run_status_running)"
        )
    if kind.startswith(RUN_STATUS_PREFIX) and kind not in RUN_STATUS_KINDS:
        known = ", ".join(sorted(RUN_STATUS_KINDS))
        raise EventError(f"kind {kind!r} is not a run status event; known kinds: {known}")
    return kind


def validate_ref(ref: str) -> str:
    """``<family>.<name>`` (docs/events.md lists the families), or ``org``."""
    if not isinstance(ref, str) or not _REF_RE.match(ref):
        raise EventError(
            f"ref {ref!r} is malformed: expected 'runs.<uuid>', 'jobs.<job name>', "
            "'models.<id>', 'datasets.<id>', 'events.<name>', 'connections.<name>', "
            "'projects.<name>' or 'org'"
        )
    family, _, name = ref.partition(".")
    if family == "runs":
        try:
            # Canonical form, so "runs.<UPPER>" or a hex uuid still matches emitted events.
            return f"runs.{uuid.UUID(name)}"
        except ValueError:
            raise EventError(f"ref {ref!r} is malformed: {name!r} is not a run uuid") from None
    return ref


def unbrace(ref: str) -> str:
    """Polyaxon's docs spell refs ``{{ ops.x }}``; the bare ref is what is stored."""
    ref = ref.strip()
    if ref.startswith("{{") and ref.endswith("}}"):
        ref = ref[2:-2].strip()
    return ref


def validate_trigger_ref(ref: str) -> str:
    """What a trigger may listen to: a ref, or a whole family (``models.*``)."""
    if isinstance(ref, str) and _WILDCARD_RE.match(ref):
        return ref
    return validate_ref(ref)


def family_wildcard(ref: str) -> str:
    """``models.m1`` -> ``models.*``: the index key of a family-wide trigger."""
    return f"{ref.partition('.')[0]}.{WILDCARD}"


def validate_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not _NAMESPACE_RE.match(namespace):
        raise EventError(
            f"namespace {namespace!r} is malformed: lower-case letters, digits, '_' and '-'"
        )
    return namespace




def validate_kinds(value: Any, *, ref: str | None = None) -> tuple[str, ...]:
    """A trigger's ``kinds``: one kind or a list, each valid, each once; with ``ref``, each
    one that ref can send (a trigger that could never fire is refused naming both)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of event kinds, got {type(value).__name__}")
    for kind in value:
        validate_kind(kind)
        why = catalogue.refusal(kind, ref) if ref is not None else None
        if why:
            raise ValueError(why)
    return tuple(dict.fromkeys(value))
