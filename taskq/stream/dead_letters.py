"""The dead-letter side of the event stream: each entry's own last error, moving an entry
aside with its reason, and putting dead letters back (``taskq events dead --replay``).

Both moves are atomic in Redis (a MULTI, a script), so a dead letter is replayed once
however many replays race: the first removes it, the others find nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis

from taskq import constants
from taskq.core.stored import Entry

log = logging.getLogger(__name__)

#: Append each dead letter's original fields to the stream and delete it, in one step.
_REPLAY = """
local out = {}
for i = 2, #ARGV do
  local rows = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #rows == 1 then
    local f, args = rows[1][2], {}
    for j = 1, #f, 2 do
      if string.sub(f[j], 1, 9) == 'original.' then
        args[#args + 1] = string.sub(f[j], 10)
        args[#args + 1] = f[j + 1]
      end
    end
    if #args > 0 then
      local sid = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', unpack(args))
      redis.call('XDEL', KEYS[1], ARGV[i])
      out[#out + 1] = ARGV[i]
      out[#out + 1] = sid
    end
  end
end
return out
"""

DEAD_LETTER_MAXLEN = 100_000
#: Longest error kept per entry (the reason of its dead letter, if it comes to that).
ERROR_CHARS = 1000


def _sid(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class DeadLetters:
    """Mixed into the event bus: ``r`` is its client, ``stream`` and ``group`` its names."""

    r: redis.Redis
    stream: str
    group: str

    def note_failure(self, stream_id: str, error: str) -> None:
        """Remember why this entry's evaluation failed, for its dead letter's reason."""
        self.r.hset(constants.EVENT_FAILURES, stream_id, error[:ERROR_CHARS])

    def failure_of(self, stream_id: str) -> str | None:
        raw: Any = self.r.hget(constants.EVENT_FAILURES, stream_id)
        return None if raw is None else _sid(raw)

    def dead_letter(self, entry: Entry, reason: str) -> None:
        """Move an entry aside with its reason, then ack it so it never blocks the stream."""
        fields: dict[Any, Any] = {"reason": reason, "stream_id": entry.stream_id}
        for k, v in entry.fields.items():
            fields[f"original.{_sid(k)}"] = v
        pipe = self.r.pipeline(transaction=True)
        pipe.xadd(constants.DEAD_LETTER_STREAM, fields, maxlen=DEAD_LETTER_MAXLEN,
                  approximate=True)
        pipe.xack(self.stream, self.group, entry.stream_id)
        pipe.hdel(constants.EVENT_FAILURES, entry.stream_id)
        pipe.execute()
        log.warning("taskq: dead-lettered stream entry %s: %s", entry.stream_id, reason)

    def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        out = []
        rows: Any = self.r.xrevrange(constants.DEAD_LETTER_STREAM, count=count)
        for sid, fields in rows:
            out.append({"id": _sid(sid), **{_sid(k): _sid(v) for k, v in fields.items()}})
        return out

    def replay_dead(self, ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """Re-append dead letters (``ids``, or all there are now) to the stream and remove
        them from the dead-letter stream: (dead-letter id, new stream id) for each one
        this call replayed. An id already replayed, or never there, is left out."""
        if ids is not None:
            return self._replay(list(ids))
        last: Any = self.r.xrevrange(constants.DEAD_LETTER_STREAM, count=1)
        if not last:
            return []
        until, start = _sid(last[0][0]), "-"
        done: list[tuple[str, str]] = []
        while True:
            rows: Any = self.r.xrange(constants.DEAD_LETTER_STREAM, min=start, max=until,
                                      count=100)
            if not rows:
                return done
            batch = [_sid(sid) for sid, _ in rows]
            done.extend(self._replay(batch))
            start = f"({batch[-1]}"

    def _replay(self, ids: list[str]) -> list[tuple[str, str]]:
        if not ids:
            return []
        flat: Any = self.r.eval(_REPLAY, 2, constants.DEAD_LETTER_STREAM, self.stream,
                                constants.EVENTS_STREAM_MAXLEN, *ids)
        pairs = [(_sid(flat[i]), _sid(flat[i + 1])) for i in range(0, len(flat), 2)]
        for dead, new in pairs:
            log.warning("taskq: replayed dead letter %s as stream entry %s", dead, new)
        return pairs
