"""Regular expressions on RE2: matching time linear in the text, whatever the pattern.

Users write patterns (a model trigger's ``trigger_name``), and Python's backtracking engine
can spend exponential time on one of them (``^(a+)+$`` against forty a's and a "!"): one
tenant's pattern would stall the evaluator every tenant shares. RE2 has no backtracking, so
what it cannot do in linear time (backreferences, lookaround, atomic groups, possessive
quantifiers, conditionals) it refuses; such a pattern is refused at registration with the
field and the reason. taskq's own patterns that read user text (conditions, ``${...}``
references) run on RE2 too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

import re2

#: A longer name filter is almost certainly not a name filter; refusing it keeps every
#: compiled pattern small (RE2 also caps the compiled program, see MAX_PROGRAM_BYTES).
MAX_PATTERN_CHARS = 1_000
#: RE2's memory budget per pattern (compiled program and its DFA cache).
MAX_PROGRAM_BYTES = 2 << 20


class Match(Protocol):
    def group(self, index: int = 0) -> str: ...

    def start(self, index: int = 0) -> int: ...

    def end(self, index: int = 0) -> int: ...


class Pattern(Protocol):
    def search(self, text: str) -> Match | None: ...

    def fullmatch(self, text: str) -> Match | None: ...

    def finditer(self, text: str) -> Iterator[Match]: ...

    def findall(self, text: str) -> list[Any]: ...

    def split(self, text: str) -> list[str]: ...

    def sub(self, repl: Callable[[Match], str] | str, text: str) -> str: ...


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is an answer, not a line on stderr
    options.max_mem = MAX_PROGRAM_BYTES
    return options


_OPTIONS = _options()

#: Python syntax RE2 does not run, and why; checked in order on the pattern's text, so the
#: message says what the user wrote rather than RE2's parser error.
_UNSUPPORTED = (
    (("(?=", "(?!", "(?<=", "(?<!"), "lookahead and lookbehind ((?=...), (?!...), (?<=...), "
                                     "(?<!...)) are not supported"),
    (("(?P=",), "backreferences ((?P=name)) are not supported"),
    (("(?>",), "atomic groups ((?>...)) are not supported"),
    (("(?(",), "conditional groups ((?(1)...|...)) are not supported"),
    (("*+", "++", "?+", "}+"), "possessive quantifiers (*+, ++, ?+) are not supported"),
)
_WHY = ("taskq runs patterns on RE2, whose time is linear in the text, so that no pattern "
        "can stall the evaluator")


def _backreference(pattern: str) -> bool:
    """``\\1`` ... ``\\9`` or ``\\g<...>`` outside a character class."""
    i, in_class = 0, False
    while i < len(pattern) - 1:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1]
            if not in_class and (nxt in "123456789" or nxt == "g"):
                return True
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        i += 1
    return False


def why_refused(pattern: str, error: str) -> str:
    if _backreference(pattern):
        return f"backreferences (\\1, \\g<name>) are not supported: {_WHY}"
    for needles, reason in _UNSUPPORTED:
        if any(n in pattern for n in needles):
            return f"{reason}: {_WHY}"
    if "too large" in error or "out of memory" in error:
        return (f"pattern too large: its compiled form exceeds {MAX_PROGRAM_BYTES} bytes "
                "(RE2's limit per pattern)")
    return f"not a regular expression RE2 accepts: {error}"


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> Pattern:
    return cast(Pattern, re2.compile(pattern, _OPTIONS))


def compile_user(pattern: str) -> Pattern:
    """A user's pattern, compiled once per process (rules are rebuilt on every reload).
    Raises ValueError with the reason; the caller names the field."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"pattern of {len(pattern)} characters exceeds the limit of "
                         f"{MAX_PATTERN_CHARS}")
    try:
        return _compile(pattern)
    except re2.error as exc:
        message = exc.args[0] if exc.args else exc
        text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        raise ValueError(why_refused(pattern, text)) from None


@functools.lru_cache(maxsize=16_384)
def found(pattern: str, text: str) -> bool:
    """Whether a user's (already accepted) pattern is found in ``text``. Entity names come
    back event after event, and RE2's Python wrapper costs microseconds per call, so the
    answer is remembered."""
    return compile_user(pattern).search(text) is not None


def internal(pattern: str) -> Pattern:
    """One of taskq's own patterns (fixed in the source, so it always compiles)."""
    return _compile(pattern)
