"""All SQL lives behind :class:`taskq.store.manager.Store`; the rest of taskq never builds queries."""

from taskq.store.manager import Store

__all__ = ["Store"]
