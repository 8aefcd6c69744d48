"""Alembic environment: the URL comes from taskq (``taskq db upgrade``), never from a file."""

from __future__ import annotations

from alembic import context

import taskq.store.entity_models  # noqa: F401  - its tables join Base.metadata
from taskq.store.engine import make_engine
from taskq.store.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("taskq migrations need sqlalchemy.url; run them with `taskq db upgrade`")

engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=engine.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()
