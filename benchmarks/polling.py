"""Polling cost follows the changes, not the table: rows read per poll of the model registry
with 10k, 100k and 1M stored models, ten of them changed by another writer (plain SQL).

    python benchmarks/polling.py [--sizes 10000,100000,1000000] [--changes 10]
                                 [--database-url URL] [--redis-url URL]

For each size: a fresh database (SQLite files under a temp dir unless --database-url names a
PostgreSQL server, where a database per size is created), the models bulk-inserted with an
old ``updated_at``, the poller's watermark after them, then ``--changes`` rows updated with
plain SQL. One poll is measured (rows the store's reads returned, by its own counter; SQL
statements executed; wall time), then a second poll with nothing changed. The query plan of
the watermark read is printed once. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 20_000


def fresh_database(base: str | None, size: int, tmp: Path) -> str:
    if not base:
        return f"sqlite:///{tmp / f'poll_{size}.db'}"
    from sqlalchemy import create_engine, text

    name = f"taskq_bench_poll_{size}"
    engine = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return f"{base.rpartition('/')[0]}/{name}"


def fill(store: Any, size: int) -> Any:
    """Bulk insert ``size`` models changed a day ago; returns that instant."""
    from sqlalchemy import insert

    from taskq.core.times import utcnow
    from taskq.store.registry import MODELS

    old = utcnow() - timedelta(days=1)
    with store.tx() as conn:
        for start in range(0, size, BATCH):
            conn.execute(insert(MODELS), [dict(
                id=uuid.uuid4().hex, namespace="default", name=f"model-{i}",
                project=f"project-{i % 100}", version="1", tags=[], uri=None, metadata={},
                published=False, published_at=None, archived=False, created_at=old,
                updated_at=old) for i in range(start, min(size, start + BATCH))])
    if store.dialect == "postgresql":
        with store.tx() as conn:
            conn.exec_driver_sql("ANALYZE models")
    return old


def change(store: Any, count: int) -> None:
    """Another writer: tag ``count`` random models, stamping updated_at (30 s ago, so the
    watermark may pass them)."""
    from sqlalchemy import func, select, text

    from taskq.core.times import utcnow
    from taskq.store.registry import MODELS

    with store.tx() as conn:
        ids = conn.execute(select(MODELS.c.id).order_by(func.random()).limit(count)
                           ).scalars().all()
        for entity_id in ids:
            conn.execute(text("UPDATE models SET tags = :t, updated_at = :u WHERE id = :i"),
                         {"t": json.dumps(["bench"]), "i": entity_id,
                          # naive UTC: the text format taskq itself stores on SQLite
                          "u": (utcnow() - timedelta(seconds=30)).replace(tzinfo=None)})


def plan(store: Any) -> str:
    sql = ("SELECT * FROM models WHERE updated_at >= :a AND (updated_at > :a OR id > :i) "
           "ORDER BY updated_at, id LIMIT 500")
    from sqlalchemy import text

    from taskq.core.times import utcnow

    prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
    with store.read() as conn:
        rows = conn.execute(text(prefix + sql), {"a": utcnow(), "i": ""}).all()
    return "\n".join("    " + " ".join(str(c) for c in r) for r in rows)


def measure(url: str, redis_url: str, size: int, changes: int, show_plan: bool
            ) -> list[dict[str, Any]]:
    from sqlalchemy import event

    from taskq.core.stored import Watermark
    from taskq.core.watched import Family
    from taskq.runtime import Runtime
    from taskq.services import poller as polling
    from taskq.settings import Settings
    from taskq.store import migrate

    migrate.upgrade(url)
    rt = Runtime(Settings(redis_url=redis_url, database_url=url))
    store = rt.store
    t0 = time.perf_counter()
    old = fill(store, size)
    filled = time.perf_counter() - t0
    store.set_cursor("poll.watermark.models", Watermark(old + timedelta(seconds=1), "").dump())
    change(store, changes)
    if show_plan:
        print(f"  query plan of the watermark read ({store.dialect}):\n{plan(store)}")
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(store.engine, "before_cursor_execute", count)
    out = []
    for label in (f"{changes} changed", "nothing changed"):
        statements[0] = 0
        start = time.perf_counter()
        result = polling.poll_family(rt, Family.MODELS)
        elapsed = (time.perf_counter() - start) * 1000
        out.append({"stored": size, "poll": label, "rows_read": result.rows_read,
                    "emitted": result.emitted, "statements": statements[0],
                    "ms": round(elapsed, 2), "fill_s": round(filled, 1)})
    event.remove(store.engine, "before_cursor_execute", count)
    store.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="postgresql://... (else SQLite)")
    parser.add_argument("--redis-url", default=os.environ.get("TASKQ_REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="taskq-bench-poll-") as tmp:
        for i, size in enumerate(int(s) for s in args.sizes.split(",")):
            url = fresh_database(args.database_url, size, Path(tmp))
            rows.extend(measure(url, args.redis_url, size, args.changes, show_plan=i == 0))
            print(f"  {size:>9,} stored: filled in {rows[-1]['fill_s']} s", flush=True)
    print("\n| stored models | poll | rows read | events emitted | SQL statements | ms |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['stored']:,} | {r['poll']} | {r['rows_read']} | {r['emitted']} | "
              f"{r['statements']} | {r['ms']} |")


if __name__ == "__main__":
    main()
