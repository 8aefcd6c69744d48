"""An operation's params: values, refs to upstream operations or the pipeline, and
``contextOnly`` ones; and the type a ref yields, so a ref that cannot fit its input is
refused when the pipeline is loaded. Pure.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from taskq.core.names import unbrace
from taskq.errors import SpecError, first_error

OP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_VALUE_REF = re.compile(
    r"^(outputs|inputs|globals)(?:\.([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$")
#: Polyaxon's template spelling of a ref, as a whole value: ``{{ ops.x.outputs.loss }}``,
#: ``{{ ops.x.outputs }}``, ``{{ dag.inputs.lr }}``.
_TEMPLATE_REF = re.compile(
    r"^\{\{\s*(ops\.[A-Za-z0-9][A-Za-z0-9_-]{0,127}|dag)\.((?:outputs|inputs|globals)"
    r"(?:\.[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?)\s*\}\}$")
#: The keys of Polyaxon's full form of a param (anything else is a literal mapping).
_PARAM_KEYS = frozenset({"value", "ref", "contextOnly", "context_only"})
#: What ``globals.<key>`` may name (Polyaxon's keys that mean something here).
GLOBAL_KEYS = frozenset({"uuid", "name", "status", "condition", "created_at", "started_at",
                         "finished_at", "duration", "wait_time", "project_name", "namespace"})
#: (values, refs) passed to the job, then (values, refs) that are context-only.
Split = tuple[dict[str, Any], dict[str, "ParamRef"], dict[str, Any], dict[str, "ParamRef"]]


class ParamRef(BaseModel):
    """``{ref: ops.X, value: outputs.y|inputs.y|globals.uuid}`` or ``{ref: dag, value:
    inputs.y}`` (the pipeline's own params); ``value: outputs`` / ``value: inputs`` is the
    whole section as one mapping. The value may be written in braces (``{{ outputs.y }}``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str
    value: str

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        v = unbrace(v)
        if v != "dag" and not (v.startswith("ops.") and OP_NAME.match(v[4:])):
            raise ValueError(f"{v!r} is not 'ops.<operation>' or 'dag'")
        return v

    @field_validator("value")
    @classmethod
    def _value(cls, v: str) -> str:
        v = unbrace(v) if isinstance(v, str) else v
        m = _VALUE_REF.match(v) if isinstance(v, str) else None
        if m is None:
            raise ValueError(f"{v!r} is not outputs.<name>, inputs.<name>, globals.<key>, "
                             "or a whole section (outputs, inputs)")
        if m.group(1) == "globals" and m.group(2) is None:
            raise ValueError("globals is not a section to pass whole: name a key, "
                             f"one of {', '.join(sorted(GLOBAL_KEYS))}")
        if m.group(1) == "globals" and m.group(2) not in GLOBAL_KEYS:
            raise ValueError(f"globals.{m.group(2)} is not one of {', '.join(sorted(GLOBAL_KEYS))}")
        return v

    @property
    def op(self) -> str | None:
        return self.ref[4:] if self.ref.startswith("ops.") else None

    @property
    def section(self) -> str:
        return self.value.partition(".")[0]

    @property
    def key(self) -> str:
        """The name in the section; empty for a whole section."""
        return self.value.partition(".")[2]

    @property
    def whole(self) -> bool:
        return not self.key

    def describe(self) -> str:
        return f"{self.ref}.{self.value}"


def split_params(op: str, params: dict[str, Any]) -> Split:
    """(values, refs) passed to the job, then (values, refs) that are ``contextOnly``:
    given to the run as context (``current.context``) and to its conditions, never as
    function arguments, and never checked against the job's inputs."""
    plain: dict[str, Any] = {}
    refs: dict[str, ParamRef] = {}
    ctx_plain: dict[str, Any] = {}
    ctx_refs: dict[str, ParamRef] = {}
    for name, raw in params.items():
        full = isinstance(raw, dict) and (set(raw) <= _PARAM_KEYS or "ref" in raw)
        context_only = full and bool(raw.get("contextOnly") or raw.get("context_only"))
        ref = _ref_of(raw, full)
        if ref is not None:
            try:
                parsed = ParamRef.model_validate(ref)
            except ValueError as exc:
                raise SpecError(f"operations.{op}.params.{name}: "
                                f"{first_error(exc)}") from None
            (ctx_refs if context_only else refs)[name] = parsed
            continue
        value = raw.get("value") if full else raw
        (ctx_plain if context_only else plain)[name] = value
    return plain, refs, ctx_plain, ctx_refs


def _ref_of(raw: Any, full: bool) -> dict[str, Any] | None:
    """``{ref, value}``, or a value that is a whole template ref (``{{ ops.x.outputs }}``)."""
    if full and "ref" in raw:  # other keys (Polyaxon's toInit, ...) are ignored
        return {"ref": raw["ref"], "value": raw.get("value")}
    value = raw.get("value") if full else raw
    if isinstance(value, str):
        m = _TEMPLATE_REF.match(value.strip())
        if m is not None:
            return {"ref": m.group(1), "value": m.group(2)}
    return None


#: Globals that are numbers; every other global is a string (or None).
_NUMERIC_GLOBALS = frozenset({"duration", "wait_time"})
#: (input type, type a ref yields) pairs that coerce without loss, besides equal types.
_WIDENS = frozenset({("float", "int"), ("str", "int"), ("str", "float")})


def ref_type(ref: ParamRef, pool: dict[str, Any]) -> str:
    """The type ``ref`` yields: a whole section is a dict, a global a str (or a float), a
    named input or output its declared type (``pool``: that section's declarations)."""
    if ref.whole:
        return "dict"
    if ref.section == "globals":
        return "float" if ref.key in _NUMERIC_GLOBALS else "str"
    decl = pool.get(ref.key)
    if isinstance(decl, str):
        return decl
    return str((decl or {}).get("type") or "any")


def fits(target: str, source: str) -> bool:
    """Can a value of type ``source`` be given to an input of type ``target``?"""
    return "any" in (target, source) or target == source or (target, source) in _WIDENS
