"""A job's inputs read from its function, the way Celery users write them. Pure.

``def experiment(learning_rate: float = 0.01, epochs: int = 1)`` declares two optional
inputs with their types and defaults; a parameter without a default is required. What
``@taskq.job(inputs=...)`` says is laid over that (a description, ``contextOnly``, an
explicit type): it adds and overrides, it no longer has to repeat the function. ``*args``,
``**kwargs`` and the ``self`` of a bound task are not inputs. Everything here is turned into
the JSON a job template stores (:mod:`taskq.core.params` reads it back), and every refusal
names the job and the field, at the line where the job is declared.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, is_typeddict

from pydantic import BaseModel, TypeAdapter

from taskq.core.params import ParamsValidator
from taskq.errors import JobError

_PLAIN_HINTS: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool",
                                dict: "dict", list: "list"}
_SCHEMA_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
                 "array": "list", "object": "dict"}


@dataclass(frozen=True)
class Signature:
    """What the function declares: the stored inputs, the real annotations of structured
    ones (the worker validates with them), and whether it takes ``**kwargs``."""

    inputs: dict[str, Any]
    hints: dict[str, Any] = field(default_factory=dict)
    accepts_extra: bool = False
    #: A typed return (TypedDict, dataclass, pydantic model): its fields are the outputs.
    returns: Any = None


def _without_none(hint: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _is_record(hint: Any) -> bool:
    return isinstance(hint, type) and (
        is_typeddict(hint) or dataclasses.is_dataclass(hint) or issubclass(hint, BaseModel))


def _coarse(hint: Any, schema: Mapping[str, Any]) -> str:
    origin = get_origin(hint) or hint
    if origin in (list, tuple, set, frozenset):
        return "list"
    if origin is dict or _is_record(hint):
        return "dict"
    if origin is Literal or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        ref = str(schema.get("$ref", "")).rsplit("/", 1)[-1]
        target = (schema.get("$defs") or {}).get(ref, schema)
        return _SCHEMA_TYPES.get(str(target.get("type")), "any")
    return "any"


def describe(hint: Any, where: str) -> dict[str, Any]:
    """The JSON description of a type hint: a plain type name, plus the JSON schema of a
    structured type."""
    if hint is Any or hint is inspect.Parameter.empty:
        return {"type": "any"}
    inner = _without_none(hint)
    if inner in _PLAIN_HINTS:
        return {"type": _PLAIN_HINTS[inner]}
    try:
        schema = TypeAdapter(hint).json_schema()
    except Exception as exc:  # pydantic cannot validate this type at all
        reason = str(exc).splitlines()[0]
        raise JobError(f"{where}: type {hint!r} cannot be a param ({reason})") from None
    return {"type": _coarse(inner, schema), "schema": schema}


def _hints(func: Callable[..., Any], job: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # one annotation does not resolve: find which
        pass
    hints: dict[str, Any] = {}
    for name, annotation in getattr(func, "__annotations__", {}).items():
        try:
            hints[name] = typing.get_type_hints(_Annotated(annotation, func))["value"]
        except Exception as exc:
            if name != "return":  # an unresolvable return declares no outputs
                raise JobError(f"job {job!r} inputs.{name}: annotation {annotation!r} cannot "
                               f"be resolved ({exc})") from None
    return hints


class _Annotated:
    """One annotation of ``func``, resolved in ``func``'s module like the whole would be."""

    def __init__(self, annotation: Any, func: Callable[..., Any]) -> None:
        self.__annotations__ = {"value": annotation}
        self.__module__ = getattr(func, "__module__", __name__)


def _json_default(value: Any, hint: Any, structured: bool, where: str) -> Any:
    try:
        if structured:
            return TypeAdapter(hint).dump_python(value, mode="json")
        json.dumps(value)
        return value
    except Exception:
        raise JobError(f"{where}.default: {value!r} cannot be stored as JSON") from None


def read(func: Callable[..., Any], *, job: str, explicit: Mapping[str, Any],
         bound: bool = False) -> Signature:
    """The inputs of ``func``, with ``explicit`` (already normalised) laid over them."""
    hints = _hints(func, job)
    params = list(inspect.signature(func).parameters.values())
    if bound:
        params = params[1:]  # Celery's ``self``
    inputs: dict[str, Any] = {}
    structured: dict[str, Any] = {}
    accepts_extra = False
    for p in params:
        where = f"job {job!r} inputs.{p.name}"
        if p.kind is p.VAR_KEYWORD:
            accepts_extra = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        if p.kind is p.POSITIONAL_ONLY:
            raise JobError(f"{where}: a positional-only parameter cannot be given by name")
        hint = hints.get(p.name, Any)
        entry = describe(hint, where)
        if "schema" in entry:
            structured[p.name] = hint
        if p.default is p.empty:
            entry["required"] = True
        else:
            entry["default"] = _json_default(p.default, hint, "schema" in entry, where)
        inputs[p.name] = entry
    for name, decl in explicit.items():
        where = f"job {job!r} inputs.{name}"
        if name not in inputs:
            if not accepts_extra and not decl.get("contextOnly"):
                raise JobError(f"{where}: {func.__name__}() has no parameter {name!r} (add "
                               "it, take **kwargs, or mark it contextOnly)")
            inputs[name] = dict(decl)
            continue
        merged = {**inputs[name], **decl}
        if "type" in decl and "schema" not in decl:
            merged.pop("schema", None)
            structured.pop(name, None)
        if "default" in decl and "required" not in decl:
            merged.pop("required", None)
        inputs[name] = merged
    _check_defaults(job, inputs, structured)
    returns = hints.get("return")
    return Signature(inputs=inputs, hints=structured, accepts_extra=accepts_extra,
                     returns=returns if _is_record(returns) else None)


def _check_defaults(job: str, inputs: Mapping[str, Any], hints: Mapping[str, Any]) -> None:
    """A default that does not fit its own type is a typo, refused where it is written."""
    validator = ParamsValidator(inputs, hints)
    for name, decl in inputs.items():
        if "default" in decl:
            try:
                validator.validate({name: decl["default"]}, job=job, check_required=False)
            except JobError as exc:
                raise JobError(str(exc).replace(f"params.{name}", f"inputs.{name}.default",
                                                1)) from None


def outputs_of(returns: Any, job: str) -> dict[str, Any]:
    """The outputs a typed return declares: one per field, described like an input."""
    if is_typeddict(returns):
        fields = typing.get_type_hints(returns)
    elif dataclasses.is_dataclass(returns):
        fields = typing.get_type_hints(returns)
        fields = {f.name: fields.get(f.name, Any) for f in dataclasses.fields(returns)}
    else:
        fields = {n: f.annotation for n, f in returns.model_fields.items()}
    return {n: describe(h, f"job {job!r} outputs.{n}") for n, h in fields.items()}


def returned_outputs(returns: Any, value: Any) -> dict[str, Any]:
    """A typed return value as outputs (JSON), for the keys the job did not set itself."""
    if is_typeddict(returns):  # typing.TypedDict needs no pydantic schema to read
        value = dict(value) if isinstance(value, Mapping) else None
        returns = Any
    try:
        dumped = TypeAdapter(returns).dump_python(value, mode="json", warnings=False)
    except Exception:  # not what the annotation says: the job's own outputs stand
        return {}
    return dict(dumped) if isinstance(dumped, dict) else {}
