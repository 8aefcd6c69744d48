"""kombu's Redis transport, with a channel that can be closed after its connection was.

When the broker goes away, closing a connection can stop half way: one channel's close
raises the connection error (a pending ``BRPOP`` or a fanout queue delete on a dead
socket), kombu swallows it and detaches the connection from its transport, and the
channels not yet closed stay open. Closing one of those later (the consumer restarting, the
garbage collector, interpreter exit) restores its unacknowledged messages through a new
client, whose parameters kombu reads from the detached connection: ``AttributeError:
'NoneType' object has no attribute 'hostname'``, an error no ``ignore_errors`` catches.

Skipping that restore loses nothing Redis still holds: the messages stay in kombu's
``unacked`` hash, which ``restore_visible`` empties after the visibility timeout, and the
redelivery sweep republishes any queued run whose message is gone.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

#: What ``broker_transport`` names for a ``redis://`` or ``rediss://`` broker.
TRANSPORT = "taskq.celery.redis_transport:Transport"


class QoS(kombu_redis.QoS):  # type: ignore[misc]
    def restore_unacked(self, client: Any = None) -> None:
        transport = self.channel.connection
        if client is None and (transport is None or transport.client is None):
            log.warning("taskq: %d unacknowledged message(s) left in the broker's unacked "
                        "hash (their connection closed first); they return after the "
                        "visibility timeout", len(self._delivered))
            self._delivered.clear()
            return
        super().restore_unacked(client)  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    QoS = QoS


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel
