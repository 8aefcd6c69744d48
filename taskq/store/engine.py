"""Engine construction: the dialect-specific settings that make concurrency safe.

SQLite is shared by several worker processes, so every connection uses WAL, waits for locks
(busy_timeout, 60 s unless the URL says ``?timeout=SECONDS``) instead of failing, and opens
write transactions with ``BEGIN IMMEDIATE`` so two processes never deadlock upgrading a read
lock. PostgreSQL needs none of that. On both, JSON is written by
:func:`taskq.core.storable.dumps_storable`, so a NUL or a lone surrogate in a value is stored
escaped instead of failing the transaction.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.pool import NullPool

from taskq.core.storable import dumps_storable
from taskq.errors import UserError

_engines: dict[tuple[int, str], Engine] = {}
_lock = threading.Lock()


#: Seconds a SQLite writer waits for another's lock before the error (an outage to the
#: evaluator, which then retries) unless the URL gives ``?timeout=``.
SQLITE_BUSY_TIMEOUT = 60.0


def _sqlite_engine(url: str) -> Engine:
    timeout = float(make_url(url).query.get("timeout", SQLITE_BUSY_TIMEOUT))  # type: ignore[arg-type]
    engine = create_engine(url, connect_args={"timeout": timeout, "check_same_thread": False},
                           json_serializer=dumps_storable)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Reads take no write lock; writes take it up front so they never deadlock.
        read_only = conn.get_execution_options().get("taskq_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def check_url(url: str) -> None:
    """taskq migrates and tests only SQLite and PostgreSQL; another URL is refused here, in
    one line, rather than failing on a missing driver or a statement it cannot run."""
    scheme = url.split(":", 1)[0]
    if scheme.split("+", 1)[0] not in ("sqlite", "postgresql", "postgres"):
        raise UserError(f"database: {scheme}:// is not supported; taskq stores in PostgreSQL "
                        "or SQLite",
                        "set TASKQ_DATABASE_URL to postgresql://user:pass@host/db or "
                        "sqlite:///path")


def make_engine(url: str) -> Engine:
    check_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return _sqlite_engine(url)
    for short in ("postgresql://", "postgres://"):  # postgres:// is the same, often seen
        if url.startswith(short):
            url = "postgresql+psycopg://" + url[len(short) :]
    if os.environ.get("TASKQ_DB_NULLPOOL"):
        return create_engine(url, poolclass=NullPool, json_serializer=dumps_storable)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                         json_serializer=dumps_storable)


def get_engine(url: str) -> Engine:
    """One engine per (process, url): engines are never shared across a fork."""
    key = (os.getpid(), url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = make_engine(url)
            _engines[key] = engine
        return engine


def dispose_inherited() -> None:
    """Drop engines a forked child inherited, without closing the parent's connections."""
    pid = os.getpid()
    with _lock:
        for key in [k for k in _engines if k[0] != pid]:
            _engines.pop(key).dispose(close=False)
