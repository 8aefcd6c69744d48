"""All SQL lives behind :class:`taskq.store.manager.Store`; nothing else builds queries."""

from taskq.store.manager import Store

__all__ = ["Store"]
