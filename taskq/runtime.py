"""What one process needs to talk to taskq's services, built lazily from Settings.

Lazy because Celery forks workers after importing the app: clients created before the fork
would be shared by children (see the Celery/SQLAlchemy fork notes in docs/architecture.md).
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

import redis

from taskq import embedded
from taskq.bus import EventBus, get_redis
from taskq.settings import Settings, get_settings
from taskq.store.manager import Store


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedded_started = False

    def ensure_services(self) -> None:
        """Start the embedded redis-server when no Redis URL is configured."""
        if self.settings.embedded_redis and not self._embedded_started:
            embedded.ensure_redis(self.settings.home)
            self._embedded_started = True

    @cached_property
    def redis(self) -> redis.Redis:
        self.ensure_services()
        return get_redis(self.settings.resolved_redis_url())

    @cached_property
    def bus(self) -> EventBus:
        return EventBus(self.redis)

    @cached_property
    def celery(self) -> Any:
        """The Celery app that publishes runs: the process's own app when settings match."""
        from taskq.app import app, create_app

        if getattr(app, "taskq_settings", None) == self.settings:
            return app
        # One publishing app (and broker pool) per distinct configuration, not per Client.
        key = self.settings.model_dump_json()
        with _lock:
            if key not in _apps:
                _apps[key] = create_app(self.settings)
            return _apps[key]

    def celery_for(self, agent: str) -> Any:
        """The app that publishes to ``agent``'s broker (taskq's own for the default)."""
        if agent == "default":
            return self.celery
        conf = self.settings.agents.get(agent)
        if conf is None:
            raise LookupError(f"agent {agent!r} is not configured")
        from taskq.app import create_app

        agent_settings = self.settings.model_copy(update={"broker": conf["broker_url"]})
        key = agent_settings.model_dump_json()
        with _lock:
            if key not in _apps:
                _apps[key] = create_app(agent_settings)
            return _apps[key]

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.resolved_database_url())


_runtime: Runtime | None = None
_lock = threading.Lock()
_apps: dict[str, Any] = {}


def get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None or _runtime.settings is not get_settings():
            _runtime = Runtime(get_settings())
        return _runtime


def reset_after_fork() -> None:
    """Called in each new worker child: forget the parent's clients and engines."""
    global _runtime
    from taskq.store.engine import dispose_inherited

    dispose_inherited()
    with _lock:
        _runtime = None
