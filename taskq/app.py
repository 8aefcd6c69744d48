"""``celery -A taskq.app worker|beat|flower``: the process's app with the worker loaded.

A shim at the top of the house: the app comes from the Celery adapter, the signal handlers
and tasks from the worker edge. The embedded Redis is started here for a worker or beat of
the embedded default (a client starts it through the runtime when it first publishes).
"""

from __future__ import annotations

from taskq.celery.app import get_app
from taskq.settings import get_settings
from taskq.stream.embedded_redis import ensure_redis

if get_settings().embedded_redis:
    ensure_redis(get_settings().home)

app = get_app()

# The signal handlers, taskq's tasks and built-in jobs, on this app.
from taskq.worker import builtin_jobs, entity_jobs, signals, tasks  # noqa: E402,F401

__all__ = ["app"]
