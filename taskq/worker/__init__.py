"""The worker edge: what every Celery worker of taskq loads (``celery -A taskq.app``).

Its modules are named in the Celery app's ``imports`` and by ``taskq.app``; this package
imports none of them itself, so ``taskq.worker.local`` (used by the CLI) loads only the
signal handlers, not the app's tasks.
"""
