"""Sending a run's task through Celery: taskq's own broker, or an agent's.

One publishing app (and broker pool) per distinct configuration, shared by every client of
the process: a Client per request must not open a broker pool per request.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import kombu.exceptions
import redis
from celery import Celery

from taskq.celery import broker_state
from taskq.celery.app import create_app, get_app
from taskq.core.stored import OutboxItem
from taskq.settings import Settings

#: The command of ``taskq.worker.control`` (a string: this adapter never imports the worker).
UNREVOKE = "taskq_unrevoke"
#: How long an unrevoke waits for the workers' replies (s).
UNREVOKE_TIMEOUT = 1.0

#: Redis commands one batched send may queue: its LPUSH, a PEXPIRE per priority step of an
#: expiring queue, its task-sent PUBLISH (a bound, so the batch never flushes early).
OPS_PER_MESSAGE = 16

_apps: dict[str, Celery] = {}
_lock = threading.Lock()


def app_for(settings: Settings) -> Celery:
    """The process's own app when the settings are the process's; else a cached one."""
    own = get_app()
    if getattr(own, "taskq_settings", None) == settings:
        return own
    key = settings.model_dump_json()
    with _lock:
        if key not in _apps:
            _apps[key] = create_app(settings)
        return _apps[key]


def _send_task(app: Celery, item: OutboxItem, headers: dict[str, str],
               producer: Any = None) -> None:
    app.send_task(item.task_name, kwargs=item.params, task_id=item.run_uuid, queue=item.queue,
                  headers=headers, eta=item.eta, producer=producer)


class CeleryPublisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def app(self) -> Celery:
        return app_for(self.settings)

    def app_for_agent(self, agent: str) -> Celery:
        if agent == "default":
            return self.app
        conf = self.settings.agents.get(agent)
        if conf is None:
            raise LookupError(f"agent {agent!r} is not configured")
        return app_for(self.settings.model_copy(update={"broker": conf["broker_url"]}))

    def send(self, item: OutboxItem, headers: dict[str, str]) -> None:
        _send_task(self.app_for_agent(item.agent), item, headers)

    def send_many(self, items: Sequence[tuple[OutboxItem, dict[str, str]]]) -> None:
        """Each agent's batch through one producer. On a Redis broker the producer batches
        (kombu's ``Producer.batch``): every ``send_task`` goes through Celery and kombu as it
        would alone (same message, same routing, its ``task-sent`` event), but their
        LPUSHes and PUBLISHes wait in one pipeline sent at the end. A broker that cannot
        batch (AMQP, or Redis with replaying retries) publishes each at once."""
        by_agent: dict[str, list[tuple[OutboxItem, dict[str, str]]]] = {}
        for item, headers in items:
            by_agent.setdefault(item.agent, []).append((item, headers))
        for agent, group in by_agent.items():
            app = self.app_for_agent(agent)
            with app.producer_or_acquire() as producer:
                if not producer.supports_batch_publish:
                    for item, headers in group:
                        _send_task(app, item, headers, producer)
                    continue
                # Room for every command of the batch, so it is one pipeline.
                with producer.batch(max_size=OPS_PER_MESSAGE * len(group)):
                    for item, headers in group:
                        _send_task(app, item, headers, producer)

    def revoke(self, run_uuid: str, *, terminate: bool, signal: str) -> None:
        control: Any = self.app.control
        control.revoke(run_uuid, terminate=terminate, signal=signal)

    def unrevoke(self, run_uuid: str) -> None:
        """Every live worker forgets that the run's task was revoked (``worker.control``),
        replies awaited up to a second, so a resumed run's message is not dropped."""
        control: Any = self.app.control
        control.broadcast(UNREVOKE, arguments={"task_id": run_uuid}, reply=True,
                          timeout=UNREVOKE_TIMEOUT)

    def held(self, items: Sequence[OutboxItem]) -> set[str]:
        """See :func:`taskq.celery.broker_state.held`, asked of each item's agent."""
        by_agent: dict[str, list[OutboxItem]] = {}
        for item in items:
            by_agent.setdefault(item.agent, []).append(item)
        found: set[str] = set()
        for agent, group in by_agent.items():
            try:
                app = self.app_for_agent(agent)
            except LookupError:  # an agent no longer configured: leave its runs alone
                found.update(item.run_uuid for item in group)
                continue
            found |= broker_state.held(app, group)
        return found

    def is_outage(self, exc: BaseException) -> bool:
        """Kombu's connection errors, and the Redis transport's own when they surface."""
        return isinstance(exc, kombu.exceptions.OperationalError
                          | kombu.exceptions.ConnectionError | redis.ConnectionError
                          | redis.TimeoutError)
