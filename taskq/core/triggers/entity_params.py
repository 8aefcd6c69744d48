"""``${model.id}`` and friends in task_parameters / task_overrides, and ClearML's parameter
spellings (``Args/batch``): pure, shared by registration (checks) and launch (values)."""

from __future__ import annotations

from typing import Any

from taskq.core import regex
from taskq.core.events import Event
from taskq.core.watched import Family

#: How ``${...}`` names the entity (ClearML's words).
REF_WORD = {Family.MODELS: "model", Family.DATASETS: "dataset", Family.RUNS: "task"}
_REF = regex.internal(r"\$\{([\pL\pN_]+)\.([\pL\pN_]+)\}")
_FIELDS = ("id", "name", "project", "version")
_PARAM_PREFIXES = ("Args/", "General/", "params.")


def check_refs(value: Any, family: Family, where: str) -> None:
    """``${model.id}`` and friends: only the trigger's own entity, only known fields."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_refs(v, family, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_refs(v, family, f"{where}[{i}]")
    elif isinstance(value, str):
        for word, field in _REF.findall(value):
            if word != REF_WORD[family] or field not in _FIELDS:
                raise ValueError(f"{where}: ${{{word}.{field}}} cannot be substituted here "
                                 f"(use ${{{REF_WORD[family]}.id|name|project|version}})")
            if family == Family.RUNS and field == "version":
                raise ValueError(f"{where}: runs have no version (${{task.version}})")


def entity_values(event: Event) -> dict[str, Any]:
    p = event.payload
    if isinstance(p.get("entity"), dict):
        e = p["entity"]
        return {"id": e["id"], "name": e["name"], "project": e["project"],
                "version": e["version"]}
    return {"id": p.get("uuid"), "name": p.get("job"), "project": p.get("project"),
            "version": None}


def substitute(value: Any, values: dict[str, Any]) -> Any:
    """A whole ``"${model.id}"`` becomes the value itself; inside a longer string, its text."""
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if not isinstance(value, str):
        return value
    whole = _REF.fullmatch(value)
    if whole:
        return values.get(whole.group(2))
    return _REF.sub(lambda m: "" if values.get(m.group(2)) is None
                    else str(values[m.group(2)]), value)


def param_name(key: str) -> str:
    """ClearML's ``Args/batch`` (or ``General/batch``, ``params.batch``) -> ``batch``."""
    for prefix in _PARAM_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """task_overrides -> (params, run fields: project, queue, tags)."""
    params = {param_name(k): v for k, v in overrides.items()
              if k.startswith(_PARAM_PREFIXES)}
    fields = {k: v for k, v in overrides.items() if not k.startswith(_PARAM_PREFIXES)}
    return params, fields


OVERRIDE_FIELDS = ("project", "queue", "tags")
