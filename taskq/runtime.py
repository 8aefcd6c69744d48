"""The composition root: settings in, adapters and services wired together out.

Everything a service is given (``ports.Context``) is built here and nowhere else, lazily:
Celery forks workers after importing the app, and clients created before the fork would be
shared by the children (docs/architecture.md, "Processes and forks").
"""

from __future__ import annotations

import threading
from functools import cached_property

import redis
from celery import Celery

from taskq.celery.jobs import registry as job_registry
from taskq.celery.publisher import CeleryPublisher
from taskq.core.jobs import JobRegistry
from taskq.core.triggers.base import KindRegistry
from taskq.core.triggers.chaining import ChainingKind
from taskq.core.triggers.entity import EntityKind
from taskq.core.triggers.event import EventKind
from taskq.core.triggers.hook import HookKind
from taskq.services import trigger_admin
from taskq.services.evaluator import Evaluator
from taskq.services.pipelines import PipelineObserver
from taskq.services.rules import Observer
from taskq.settings import Settings, get_settings
from taskq.store.engine import dispose_inherited
from taskq.store.manager import Store
from taskq.stream.coordination import RedisCoordination
from taskq.stream.embedded_redis import ensure_redis
from taskq.stream.redis_stream import EventBus, consumer_name, get_redis


class Runtime:
    """One process's view of taskq's services (implements ``ports.Context``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedded_started = False

    def ensure_services(self) -> None:
        """Start the embedded redis-server when no Redis URL is configured."""
        if self.settings.embedded_redis and not self._embedded_started:
            ensure_redis(self.settings.home)
            self._embedded_started = True

    @cached_property
    def redis(self) -> redis.Redis:
        self.ensure_services()
        return get_redis(self.settings.resolved_redis_url())

    @cached_property
    def bus(self) -> EventBus:
        return EventBus(self.redis)

    @cached_property
    def coord(self) -> RedisCoordination:
        return RedisCoordination(self.redis)

    @cached_property
    def publisher(self) -> CeleryPublisher:
        self.ensure_services()
        return CeleryPublisher(self.settings)

    @property
    def celery(self) -> Celery:
        """The Celery app that publishes runs: the process's own app when settings match."""
        return self.publisher.app

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.resolved_database_url())

    @property
    def jobs(self) -> JobRegistry:
        return job_registry

    def sync_jobs(self) -> int:
        return trigger_admin.sync_job_templates(self)

    # -- the evaluator, with every trigger kind plugged in ---------------------------------

    @cached_property
    def kinds(self) -> KindRegistry:
        return KindRegistry((EventKind(), HookKind(), ChainingKind(), EntityKind()))

    @cached_property
    def observers(self) -> tuple[Observer, ...]:
        return (PipelineObserver(),)

    def evaluator(self, consumer: str | None = None) -> Evaluator:
        return Evaluator(self, consumer or consumer_name(), kinds=self.kinds,
                         observers=self.observers)


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None or _runtime.settings is not get_settings():
            _runtime = Runtime(get_settings())
        return _runtime


def reset_after_fork() -> None:
    """Called in each new worker child: forget the parent's clients and engines."""
    global _runtime
    dispose_inherited()
    with _lock:
        _runtime = None
