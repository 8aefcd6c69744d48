"""A broker that only records what it was sent: the publisher port without a server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from taskq.core.stored import OutboxItem


@dataclass
class StubPublisher:
    """What would have gone to the broker; ``fail_next``: the next N sends are refused."""

    sent: list[tuple[OutboxItem, dict[str, str]]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    #: (run uuid, terminate, signal) of every revoke.
    revocations: list[tuple[str, bool, str]] = field(default_factory=list)
    fail_next: int = 0
    #: Run uuids whose message the broker no longer has (a test loses them).
    lost: set[str] = field(default_factory=set)

    #: One entry per ``send_many`` call: the run uuids it sent together.
    batches: list[list[str]] = field(default_factory=list)

    def send(self, item: OutboxItem, headers: dict[str, str]) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError(f"stub broker refused run {item.run_uuid}")
        self.sent.append((item, dict(headers)))
        self.lost.discard(item.run_uuid)

    def send_many(self, items: Sequence[tuple[OutboxItem, dict[str, str]]]) -> None:
        """All or nothing, as one pipeline: a refusal (``fail_next``) sends none of them."""
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError(f"stub broker refused a batch of {len(items)} runs")
        for item, headers in items:
            self.send(item, headers)
        self.batches.append([item.run_uuid for item, _ in items])

    def revoke(self, run_uuid: str, *, terminate: bool, signal: str) -> None:
        self.revoked.append(run_uuid)
        self.revocations.append((run_uuid, terminate, signal))

    def unrevoke(self, run_uuid: str) -> None:
        self.revoked = [r for r in self.revoked if r != run_uuid]

    def held(self, items: Sequence[OutboxItem]) -> set[str]:
        """Every run sent and not lost, as a broker that keeps its messages would hold."""
        sent = {item.run_uuid for item, _ in self.sent}
        return {i.run_uuid for i in items if i.run_uuid in sent and i.run_uuid not in self.lost}

    def is_outage(self, exc: BaseException) -> bool:
        return False  # its refusals are builtin ConnectionErrors, outages to the services
