"""Conditions: a hook's or an operation's ``conditions`` expression, judged in the sandbox.

Polyaxon's spelling works (``{{ some-io-param == "x" }}``, a bare expression or one in
braces); the expression runs in the same bounded sandbox as templates, with one time limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from jinja2 import TemplateError
from pydantic import AfterValidator

from taskq.core import regex
from taskq.core.templating import environment, guarded
from taskq.errors import TemplateFailure

#: Linear-time patterns (RE2): a condition is user text, and the backtracking spelling of
#: the string-literal splitter took quadratic time on ``'\\'\\'...``.
_LITERAL = regex.internal(r"""(?s)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_RUN = regex.internal(r"[\pL\pN_-]+")
_HYPHENATED = regex.internal(r"[A-Za-z_][\pL\pN_]*(?:-[\pL\pN_]+)+")
_WORD = regex.internal(r"[\pL\pN_]+")


def _expression(source: str) -> str:
    """``'{{ loss < 0.2 }}'`` and ``loss < 0.2`` both mean the expression inside."""
    text = source.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    return text


def _outside_literals(expr: str, change: Callable[[str], str]) -> str:
    parts = _LITERAL.split(expr)
    return "".join(p if i % 2 else change(p) for i, p in enumerate(parts))


def _replace_runs(text: str, pattern: regex.Pattern,
                  swap: Callable[[str, int, int], str | None]) -> str:
    """Each maximal run ``pattern`` finds, replaced by ``swap(run, start, end)`` unless that
    says None: word boundaries without lookaround, which RE2 does not have."""
    out: list[str] = []
    last = 0
    for m in pattern.finditer(text):
        new = swap(m.group(), m.start(), m.end())
        if new is not None:
            out += [text[last:m.start()], new]
            last = m.end()
    out.append(text[last:])
    return "".join(out)


def _alias_hyphens(expr: str, names: set[str] | None) -> tuple[str, dict[str, str]]:
    """Polyaxon writes ``{{ some-io-param == "x" }}``; Jinja would read a subtraction. A
    hyphenated word that is a known name (any, with ``names=None``) becomes an alias,
    outside string literals. A word is hyphenated when it is a whole run of word characters
    and hyphens, not after ``.`` or a quote and not before a quote."""
    aliases: dict[str, str] = {}

    def swap(part: str) -> str:
        def one(word: str, start: int, end: int) -> str | None:
            if ((start and part[start - 1] in ".'\"") or (end < len(part) and part[end] in "'\"")
                    or _HYPHENATED.fullmatch(word) is None
                    or (names is not None and word not in names)):
                return None
            return aliases.setdefault(word, f"__taskq_hyphenated_{len(aliases)}")

        return _replace_runs(part, _RUN, one)

    return _outside_literals(expr, swap), aliases


def check_condition(source: str, *, field: str = "conditions") -> None:
    """Refuse a condition that does not parse, at registration."""
    expr, _ = _alias_hyphens(_expression(source), None)
    try:
        environment.compile_expression(expr)
    except TemplateError as exc:
        raise TemplateFailure(f"{field}: syntax error: {exc}") from None


def _alias_word(expr: str, word: str, alias: str) -> str:
    """``word`` as a whole name (not an attribute after ``.``), outside string literals."""
    def swap(part: str) -> str:
        return _replace_runs(part, _WORD, lambda run, start, _end: alias if run == word and (
            not start or part[start - 1] != ".") else None)

    return _outside_literals(expr, swap)


#: Names Jinja binds itself; a run's param or output so named is reached through an alias.
_RESERVED = ("self", "loop", "caller", "varargs", "kwargs")


def evaluate_condition(source: str, context: dict[str, Any], *,
                       field: str = "conditions") -> bool:
    """True or False; a runtime error (an undefined name, ...) raises TemplateFailure."""
    expr, aliases = _alias_hyphens(_expression(source), set(context))
    scope = dict(context)
    for word, alias in aliases.items():
        scope[alias] = context[word]
    for word in _RESERVED:
        if word in context:
            alias = f"__taskq_reserved_{word}"
            expr = _alias_word(expr, word, alias)
            scope[alias] = context[word]
    # One positional mapping: a name such as "self" must not clash with the call.
    value = guarded(field, "evaluation", lambda: environment.compile_expression(
        expr, undefined_to_none=False)(scope))
    return to_bool(value, field=field)


def to_bool(value: Any, *, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "y"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "n", ""}:
        return False
    raise TemplateFailure(f"{field}: evaluated to {value!r}, which is not a boolean")


def _parsed(source: str | None) -> str | None:
    if source is not None:
        try:
            check_condition(source)
        except TemplateFailure as exc:
            raise ValueError(str(exc)) from None
    return source


#: A declared ``conditions`` field: parsed when it is declared, so a typo is refused at
#: registration instead of failing every firing later.
Condition = Annotated[str | None, AfterValidator(_parsed)]
