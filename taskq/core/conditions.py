"""Conditions: a hook's or an operation's ``conditions`` expression, judged in the sandbox.

Polyaxon's spelling works (``{{ some-io-param == "x" }}``, a bare expression or one in
braces); the expression runs in the same bounded sandbox as templates, with one time limit.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from jinja2 import TemplateError
from pydantic import AfterValidator

from taskq.core.templating import MAX_SECONDS, Timeout, environment, time_limit
from taskq.errors import TemplateFailure

_HYPHENATED = re.compile(r"(?<![\w.'\"-])([A-Za-z_]\w*(?:-\w+)+)(?![\w'\"-])")


def _expression(source: str) -> str:
    """``'{{ loss < 0.2 }}'`` and ``loss < 0.2`` both mean the expression inside."""
    text = source.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    return text


def _alias_hyphens(expr: str, names: set[str] | None) -> tuple[str, dict[str, str]]:
    """Polyaxon writes ``{{ some-io-param == "x" }}``; Jinja would read a subtraction. A
    hyphenated word that is a known name (any, with ``names=None``) becomes an alias,
    outside string literals."""
    aliases: dict[str, str] = {}

    def swap(m: re.Match[str]) -> str:
        word = m.group(1)
        if names is not None and word not in names:
            return word
        alias = aliases.setdefault(word, f"__taskq_hyphenated_{len(aliases)}")
        return alias

    parts = re.split(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", expr, flags=re.S)
    out = [p if i % 2 else _HYPHENATED.sub(swap, p) for i, p in enumerate(parts)]
    return "".join(out), aliases


def check_condition(source: str, *, field: str = "conditions") -> None:
    """Refuse a condition that does not parse, at registration."""
    expr, _ = _alias_hyphens(_expression(source), None)
    try:
        environment.compile_expression(expr)
    except TemplateError as exc:
        raise TemplateFailure(f"{field}: syntax error: {exc}") from None


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
            parts = re.split(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", expr, flags=re.S)
            expr = "".join(p if i % 2 else re.sub(rf"(?<![\w.]){word}\b", alias, p)
                           for i, p in enumerate(parts))
            scope[alias] = context[word]
    try:
        with time_limit(MAX_SECONDS):
            # One positional mapping: a name such as "self" must not clash with the call.
            value = environment.compile_expression(expr, undefined_to_none=False)(scope)
    except Timeout:
        raise TemplateFailure(f"{field}: evaluation took longer than {MAX_SECONDS}s") from None
    except TemplateFailure as exc:
        raise TemplateFailure(f"{field}: {exc}") from None
    except Exception as exc:
        raise TemplateFailure(f"{field}: {type(exc).__name__}: {exc}") from None
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
