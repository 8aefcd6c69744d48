"""What a request body may be before taskq parses it: its size, its nesting, its JSON.

Every refusal is a 4xx naming the limit, because a 5xx tells a sender to retry, and a body
that was too deep once is too deep forever. The depth is counted on the raw bytes before
``json.loads`` runs, so a body nested 30,000 levels never reaches a recursive parser.
"""

from __future__ import annotations

import json
import re
from typing import Any

from taskq.errors import TaskqError

#: The fields are capped at 64 KiB; the envelope (name, id, namespace) gets 4 KiB more.
#: Bodies above this are refused with 413; the server drops anything past twice that
#: without reading it.
MAX_BODY_BYTES = 64 * 1024 + 4096
#: A JSON string, escapes included. An unterminated one runs to the end of the body, so a
#: match never fails: no backtracking, no retry from every later quote (linear time).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


class Refusal(TaskqError):
    """A request refused with ``status``; ``reason`` names the field or the limit."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """True if the brackets outside strings nest past ``limit`` (``{}`` is 1).

    An unterminated string hides the rest of the body, as it stops the parser there too."""
    depth = 0
    for char in _STRING.sub(b'""', body).translate(None, _NOT_BRACKETS):
        if char in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def parse_json(body: bytes, content_type: str, max_depth: int) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise Refusal(413, f"body: {len(body)} bytes, more than the limit of "
                           f"{MAX_BODY_BYTES} bytes")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise Refusal(415, "Content-Type: must be application/json")
    too_deep = Refusal(400, f"body: JSON nested deeper than {max_depth} levels (the limit, "
                            "TASKQ_EVENTS_MAX_JSON_DEPTH)")
    try:
        # UTF-8 only (RFC 8259): json.loads would also guess UTF-16 and UTF-32 from bytes,
        # where a quote or a backslash is not the byte the depth scan looks for.
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refusal(400, f"body: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if nested_deeper_than(body, max_depth):
        raise too_deep
    try:
        return json.loads(text or "null")
    except RecursionError:  # the scan above makes this unreachable; never a 500 anyway
        raise too_deep from None
    except ValueError as exc:
        raise Refusal(400, f"body: not valid JSON ({exc})") from None
