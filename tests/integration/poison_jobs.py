"""A job that fails with text no database column accepts as it is (imported by workers)."""

from __future__ import annotations

import taskq
from taskq import current

#: NUL (refused by PostgreSQL text) and a lone surrogate (no UTF-8 spelling at all).
POISON = "bad byte \x00 and \udcff in the message"


@taskq.job(queue="train")
def poison_fail() -> None:
    """Fails after recording an output that carries the same poison."""
    current.set_output("note", POISON)
    raise ValueError(POISON)
