"""A context wired from in-memory adapters (:mod:`taskq.testing.memory`), for unit tests.

The services run as in production (the real SQL store on a throw-away SQLite file, the real
evaluator and trigger kinds); only the stream, the coordination and the broker are replaced,
by objects that need no server, never block, and let a test set what it would otherwise wait
for: idle time, delivery counts, publish failures. They keep the semantics of what they
replace (a Redis consumer group and XAUTOCLAIM, a non-blocking Redis lock), so a service
that passes here behaves the same against Redis and Celery.

This module is a composition root for tests: it wires the store and the services, and so
must never be imported by them.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from taskq.core.jobs import JobRegistry
from taskq.core.triggers import KindRegistry, default_kinds
from taskq.services import trigger_admin
from taskq.services.evaluator import Evaluator
from taskq.services.rules import Observer
from taskq.settings import Settings
from taskq.store import migrate
from taskq.store.manager import Store
from taskq.testing.memory import (
    Clock,
    InMemoryCoordination,
    InMemoryEventLog,
    PendingEntry,
)
from taskq.testing.publisher import StubPublisher


class _IsolatedSettings(Settings):
    """Settings from the arguments only: a developer's TASKQ_* variables or
    config/taskq.toml must not change what a unit test sees."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def isolated_settings(**overrides: Any) -> Settings:
    """The defaults, with URLs set so nothing embedded is ever started."""
    values: dict[str, Any] = {"redis_url": "redis://in-memory.invalid:6379/0",
                              "database_url": "sqlite:///in-memory.invalid.db"}
    return _IsolatedSettings(**{**values, **overrides})


@dataclass
class TestContext:
    """A ``ports.Context`` for unit tests; build it with :func:`make_context`."""

    __test__ = False  # a class named Test* that pytest must not collect

    settings: Settings
    store: Store
    bus: InMemoryEventLog
    coord: InMemoryCoordination
    publisher: StubPublisher = field(default_factory=StubPublisher)
    jobs: JobRegistry = field(default_factory=JobRegistry)
    kinds: KindRegistry = field(default_factory=default_kinds)
    observers: tuple[Observer, ...] = ()

    def sync_jobs(self) -> int:
        return trigger_admin.sync_job_templates(self)

    def evaluator(self, consumer: str = "test") -> Evaluator:
        return Evaluator(self, consumer, kinds=self.kinds, observers=self.observers)

    def close(self) -> None:
        self.store.engine.dispose()


def make_context(tmp_path: Path | str | None = None, *, clock: Clock = time.monotonic,
                 **settings: Any) -> TestContext:
    """A context on a freshly migrated SQLite file (a file, because in-memory SQLite is one
    database per connection). Each call gets its own database, even in the same directory.
    ``settings`` override the defaults (``relay_grace_seconds=0``, ``max_deliveries=2``)."""
    root = Path(tempfile.mkdtemp(prefix="taskq-", dir=tmp_path))
    url = f"sqlite:///{root / 'taskq.db'}"
    migrate.upgrade(url)
    coord = InMemoryCoordination()
    return TestContext(settings=isolated_settings(home=root, database_url=url, **settings),
                       store=Store(url), bus=InMemoryEventLog(coord, clock=clock),
                       coord=coord)


__all__ = ["InMemoryCoordination", "InMemoryEventLog", "PendingEntry", "StubPublisher",
           "TestContext", "isolated_settings", "make_context"]
