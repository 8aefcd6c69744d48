"""core.triggers."""

from __future__ import annotations

from taskq.core.triggers.base import KindRegistry
from taskq.core.triggers.chaining import ChainingKind
from taskq.core.triggers.entity import EntityKind
from taskq.core.triggers.event import EventKind
from taskq.core.triggers.hook import HookKind


def default_kinds() -> KindRegistry:
    """Every trigger kind taskq ships, on a fresh registry (the runtime's, a test's)."""
    return KindRegistry((EventKind(), HookKind(), ChainingKind(), EntityKind()))


__all__ = ["KindRegistry", "default_kinds"]
