"""One validator for a job's params: a pydantic ``TypeAdapter`` per declared input.

A declaration is JSON (it is stored in the job template), so a process that never imported
the job's function — a client submitting, the evaluator firing, a pipeline advancing — builds
the same validator from it: a plain type name (``int``, ``str``, ...) keeps taskq's lenient
coercion, and a structured type (``Literal``, an enum, ``list[int]``, a pydantic model or a
dataclass) carries its JSON schema, from which an equivalent pydantic type is rebuilt. The
worker, which has the function, validates with the real annotations instead, so the function
receives the enum member or the model instance it asked for. Every refusal reads
``job 'x' params.<name>: <reason>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, PlainValidator, TypeAdapter, create_model
from pydantic import ValidationError as PydanticError

from taskq.errors import JobError, first_error

#: The plain type names a declaration may give (``{"type": ...}``).
TYPES = frozenset({"str", "int", "float", "bool", "dict", "list", "any"})


def _as_str(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected a str, got {type(value).__name__}")


def _as_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.lower() in {"true", "1", "yes"}
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected a bool, got {value!r}")


def _number(kind: str, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected {kind}, got a bool")
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"expected an int, got {value!r}")
        try:
            return convert(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected {kind}, got {value!r}") from None
    return check


def _container(kind: str, cls: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, cls):
            raise ValueError(f"expected a {kind}, got {type(value).__name__}")
        return cls(value)
    return check


_PLAIN: dict[str, Callable[[Any], Any]] = {
    "str": _as_str, "bool": _as_bool, "int": _number("int", int),
    "float": _number("float", float), "dict": _container("dict", dict),
    "list": _container("list", list), "any": lambda value: value,
}


def plain_type(name: str) -> Any:
    """The pydantic type of a plain type name: taskq's coercion ("3" -> 3, "yes" -> True)."""
    return Annotated[Any, PlainValidator(_PLAIN[name])]


# -- a JSON schema back into a pydantic type ----------------------------------------------

_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                            "null": type(None)}


class _Rebuild:
    """JSON schema (as pydantic wrote it) -> an equivalent type, ``$defs`` resolved once."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.defs: Mapping[str, Any] = root.get("$defs") or {}
        self.built: dict[str, Any] = {}

    def type(self, schema: Mapping[str, Any]) -> Any:
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            if name not in self.built:
                self.built[name] = Any  # a recursive reference stops here
                self.built[name] = self.type(self.defs.get(name) or {})
            return self.built[name]
        if "enum" in schema:
            return Literal[tuple(schema["enum"])]
        if "const" in schema:
            return Literal[schema["const"]]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return Union[tuple(self.type(s) for s in schema[key])]  # noqa: UP007
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.type(schema["allOf"][0])
        kind = schema.get("type")
        if isinstance(kind, list):
            return Union[tuple(self.type({**schema, "type": k}) for k in kind)]  # noqa: UP007
        if kind == "array":
            if "prefixItems" in schema:
                return tuple[tuple(self.type(s) for s in schema["prefixItems"])]  # type: ignore[misc]
            return list[self.type(schema.get("items") or {})]  # type: ignore[misc]
        if kind == "object":
            return self.object(schema)
        return _SCALARS.get(str(kind), Any)

    def object(self, schema: Mapping[str, Any]) -> Any:
        props: Mapping[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        if not props:
            value = self.type(extra) if isinstance(extra, dict) else Any
            return dict[str, value]  # type: ignore[valid-type]
        required = set(schema.get("required") or ())
        fields: dict[str, Any] = {}
        for name, sub in props.items():
            default = ... if name in required else sub.get("default")
            fields[name] = (self.type(sub), default)
        config = ConfigDict(extra="forbid" if extra is False else "ignore")
        return create_model(str(schema.get("title") or "Params"), __config__=config, **fields)


def from_schema(schema: Mapping[str, Any]) -> Any:
    return _Rebuild(schema).type(schema)


# -- the validator -------------------------------------------------------------------------


class ParamsValidator:
    """Coerces and checks params against one job's declared inputs; built once per
    declaration (see :func:`validator_for`) or per job (the worker, with real hints)."""

    def __init__(self, inputs: Mapping[str, Any], hints: Mapping[str, Any] | None = None
                 ) -> None:
        self.inputs = dict(inputs)
        self.adapters: dict[str, TypeAdapter[Any]] = {}
        for name, decl in self.inputs.items():
            if not isinstance(decl, Mapping):
                decl = {"type": decl}
            if "schema" in decl:
                hint = (hints or {}).get(name)
                kind = hint if hint is not None else from_schema(decl["schema"])
            else:  # an unknown name (a template written by something newer): not checked
                kind = plain_type(_coarse_name(decl))
            try:
                self.adapters[name] = TypeAdapter(kind)
            except Exception:  # a schema this pydantic cannot rebuild: its coarse type
                self.adapters[name] = TypeAdapter(plain_type(_coarse_name(decl)))

    def validate(self, params: Mapping[str, Any], *, job: str, check_required: bool = True,
                 objects: bool = False) -> dict[str, Any]:
        """Declared params coerced (undeclared ones pass through: a job may take
        ``**kwargs``); ``objects`` keeps structured values as the annotated Python objects
        instead of their JSON form."""
        out = dict(params)
        for name, decl in self.inputs.items():
            where = f"job {job!r} params.{name}"
            decl = decl if isinstance(decl, Mapping) else {"type": decl}
            required = check_required and decl.get("required") and "default" not in decl
            if name in out and not (required and out[name] is None):
                if out[name] is None:
                    continue
                adapter = self.adapters[name]
                try:
                    value = adapter.validate_python(out[name])
                except PydanticError as exc:
                    raise JobError(f"job {job!r} {first_error(exc, f'params.{name}')}"
                                   ) from None
                if "schema" in decl and not objects:
                    value = adapter.dump_python(value, mode="json")
                out[name] = value
            elif required:
                raise JobError(f"{where}: required input is missing")
        return out


def _coarse_name(decl: Mapping[str, Any]) -> str:
    name = str(decl.get("type", "any"))
    return name if name in _PLAIN else "any"


_cache: dict[str, ParamsValidator] = {}


def validator_for(inputs: Mapping[str, Any]) -> ParamsValidator:
    """The validator of a stored declaration, built once per distinct declaration."""
    key = json.dumps(inputs, sort_keys=True, default=repr)
    found = _cache.get(key)
    if found is None:
        if len(_cache) >= 512:
            _cache.clear()
        found = _cache[key] = ParamsValidator(inputs)
    return found
