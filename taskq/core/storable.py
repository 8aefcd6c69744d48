"""Text every database accepts: what a job, an event or an exception said, made storable.

PostgreSQL refuses NUL in ``text`` (and ``\\u0000`` in JSON it has to read), and no database
driver can encode a lone surrogate (``\\udcff``, what ``surrogateescape`` makes of a bad file
name) as UTF-8. One such character in a failure message used to make the final status
unwritable, so the run stayed ``running`` for ever. They are written as visible escapes
(``\\x00``, ``\\udcff``) instead: the text stays readable and says what was there.
"""

from __future__ import annotations

import json
import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: How json.dumps (ensure_ascii) spells them; a cheap test on the serialized text.
_UNSTORABLE_ESCAPED = re.compile(r"\\u(0000|d[89a-f][0-9a-f]{2})")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\x00" if char == "\x00" else f"\\u{ord(char):04x}"


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates written as escapes; unchanged (the same
    object) when there are none, which is nearly always."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(_escape, text)


def storable_json(value: Any) -> Any:
    """A JSON value with every string (keys too) made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_json(k) if isinstance(k, str) else k: storable_json(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value


def dumps_storable(value: Any) -> str:
    """``json.dumps`` for database columns: the usual text, unless a string in ``value``
    holds something a database would refuse (then that string is escaped first)."""
    text = json.dumps(value)
    if "\\u" in text and _UNSTORABLE_ESCAPED.search(text):
        text = json.dumps(storable_json(value))
    return text
