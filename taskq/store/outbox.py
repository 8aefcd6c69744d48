"""The outbox: runs committed with their task, waiting to be (re)published. A run waiting
for approval has its row held: neither the relay nor a firing's second pass sends it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from taskq.core.stored import OutboxItem
from taskq.core.times import utcnow
from taskq.store.base import OUTBOX, StoreBase, _outbox_item, not_waiting
from taskq.store.models import Outbox, Run


class OutboxMixin(StoreBase):
    def outbox_item(self, run_uuid: str) -> OutboxItem | None:
        stmt = (select(Outbox, Run.params, Run.incarnation)
                .join(Run, Run.uuid == Outbox.run_uuid)
                .where(Outbox.run_uuid == run_uuid, Outbox.published.is_(False),
                       not_waiting(Run.approval)))
        with self.read() as conn:
            row = conn.execute(stmt).first()
        return _outbox_item(row) if row else None

    def pending_outbox(self, *, older_than: datetime, limit: int = 200) -> list[OutboxItem]:
        stmt = (select(Outbox, Run.params, Run.incarnation)
                .join(Run, Run.uuid == Outbox.run_uuid)
                .where(Outbox.published.is_(False), Outbox.created_at < older_than,
                       not_waiting(Run.approval))
                .order_by(Outbox.id).limit(limit))
        with self.read() as conn:
            return [_outbox_item(r) for r in conn.execute(stmt)]

    def mark_published(self, *run_uuids: str) -> None:
        if not run_uuids:
            return
        with self.tx() as conn:
            conn.execute(update(OUTBOX).where(OUTBOX.c.run_uuid.in_(run_uuids)).values(
                published=True, published_at=utcnow(), attempts=OUTBOX.c.attempts + 1))

    def mark_publish_failed(self, run_uuid: str, error: str) -> None:
        with self.tx() as conn:
            conn.execute(update(Outbox).where(Outbox.run_uuid == run_uuid).values(
                attempts=Outbox.attempts + 1, last_error=error[:2000]))

