"""Where a run goes: one place that resolves queue and namespace for triggers and, later,
hooks and pipelines.

Convention: runs in the ``default`` namespace use the queue name as written; runs in namespace
``ns`` use ``ns--<queue>``, so one tenant's workers (``-Q ns--train``) never consume another's
runs. A queue is ``name`` or ``agent/name`` (``agent.name`` is accepted); only the default
agent exists until agents are configured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskq import constants
from taskq.errors import RoutingError

_QUEUE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")
NAMESPACE_SEPARATOR = "--"
DEFAULT_AGENT = "default"




@dataclass(frozen=True)
class Route:
    agent: str
    queue: str  # the Celery queue name, namespace applied


def parse_queue(spec: str, *, field: str = "queue",
                agents: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[str, str]:
    """``"train"`` → (default, train); ``"agent/train"`` or ``"agent.train"`` → (agent, train);
    ``"agent/"`` → the agent's default queue.

    ``agents`` is the configured map (name → broker_url, default_queue, queues); the default
    agent is taskq's own broker and takes any queue.
    """
    if not isinstance(spec, str) or not spec:
        raise RoutingError(f"{field}: must be a non-empty string")
    parts = re.split(r"[/.]", spec)
    if len(parts) > 2:
        raise RoutingError(
            f"{field}: {spec!r} has more than two parts; use 'queue' or 'agent/queue'")
    agent, queue = (DEFAULT_AGENT, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    if not _QUEUE_RE.match(agent):
        raise RoutingError(
            f"{field}: agent {agent!r} in {spec!r} is malformed (letters, digits, '_', '-')")
    conf = (agents or {}).get(agent)
    if agent != DEFAULT_AGENT and conf is None:
        known = ", ".join([DEFAULT_AGENT, *sorted(agents or {})])
        raise RoutingError(f"{field}: unknown agent {agent!r}; configured agents: {known}")
    if not queue and conf is not None and conf.get("default_queue"):
        queue = str(conf["default_queue"])
    if not _QUEUE_RE.match(queue):
        raise RoutingError(
            f"{field}: queue {queue!r} in {spec!r} is malformed (letters, digits, '_', '-')")
    if NAMESPACE_SEPARATOR in queue:
        raise RoutingError(f"{field}: {queue!r} may not contain {NAMESPACE_SEPARATOR!r}")
    allowed = (conf or {}).get("queues") or []
    if allowed and queue not in allowed:
        raise RoutingError(f"{field}: agent {agent!r} does not allow queue {queue!r} "
                           f"(allowed: {', '.join(allowed)})")
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
    agents: Mapping[str, Mapping[str, Any]] | None = None,
) -> Route:
    """Trigger's queue, else the job template's, else the default — then the namespace."""
    spec = trigger_queue or template_queue or default_queue
    agent, queue = parse_queue(spec, agents=agents)
    return Route(agent=agent, queue=namespaced_queue(namespace, queue))
