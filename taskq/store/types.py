"""Column types that store what they are given: text with NUL or a lone surrogate is written
escaped (:mod:`taskq.core.storable`) instead of failing the whole transaction.

Every text column of the models uses one of them (the DDL is plain ``TEXT`` / ``VARCHAR``):
names are validated before they get here, but entity versions, event ids and reasons come
from users and jobs. Binds in WHERE clauses are escaped the same way, so a lookup finds
what was stored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Dialect, String, Text
from sqlalchemy.types import TypeDecorator

from taskq.core.storable import storable_text


class StorableText(TypeDecorator[str]):
    """``TEXT`` (the same DDL); binds storable text. JSON columns get the same treatment
    from the engine's serializer (:func:`taskq.core.storable.dumps_storable`)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return storable_text(value) if isinstance(value, str) else value


class StorableString(TypeDecorator[str]):
    """``VARCHAR(n)`` (the same DDL); binds storable text."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return storable_text(value) if isinstance(value, str) else value
