"""Where a run goes: one place that resolves queue and namespace for triggers and, later,
hooks and pipelines.

Convention: runs in the ``default`` namespace use the queue name as written; runs in namespace
``ns`` use ``ns--<queue>``, so one tenant's workers (``-Q ns--train``) never consume another's
runs. A queue is ``name`` or ``agent/name`` (``agent.name`` is accepted); only the default
agent exists until agents are configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from taskq import constants

_QUEUE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")
NAMESPACE_SEPARATOR = "--"
DEFAULT_AGENT = "default"


class RoutingError(ValueError):
    pass


@dataclass(frozen=True)
class Route:
    agent: str
    queue: str  # the Celery queue name, namespace applied


def parse_queue(spec: str, *, field: str = "queue") -> tuple[str, str]:
    """``"train"`` → (default, train); ``"agent/train"`` or ``"agent.train"`` → (agent, train)."""
    if not isinstance(spec, str) or not spec:
        raise RoutingError(f"{field}: must be a non-empty string")
    parts = re.split(r"[/.]", spec)
    if len(parts) > 2:
        raise RoutingError(
            f"{field}: {spec!r} has more than two parts; use 'queue' or 'agent/queue'")
    agent, queue = (DEFAULT_AGENT, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    for label, value in (("agent", agent), ("queue", queue)):
        if not _QUEUE_RE.match(value):
            raise RoutingError(
                f"{field}: {label} {value!r} in {spec!r} is malformed (letters, digits, '_', '-')"
            )
    if NAMESPACE_SEPARATOR in queue:
        raise RoutingError(f"{field}: {queue!r} may not contain {NAMESPACE_SEPARATOR!r}")
    if agent != DEFAULT_AGENT:
        raise RoutingError(f"{field}: unknown agent {agent!r}; configured agents: {DEFAULT_AGENT}")
    return agent, queue


def namespaced_queue(namespace: str, queue: str) -> str:
    if namespace == constants.DEFAULT_NAMESPACE:
        return queue
    return f"{namespace}{NAMESPACE_SEPARATOR}{queue}"


def resolve(
    *,
    namespace: str,
    trigger_queue: str | None,
    template_queue: str | None,
    default_queue: str,
) -> Route:
    """Trigger's queue, else the job template's, else the default — then the namespace."""
    spec = trigger_queue or template_queue or default_queue
    agent, queue = parse_queue(spec)
    return Route(agent=agent, queue=namespaced_queue(namespace, queue))
