"""Model, dataset and run triggers (ClearML's TriggerScheduler): the stored spec, the pure
filters that decide which change fires, and the rules they become. No I/O.

A trigger fires on a *change* that makes its condition true, never once per object for
ever: for models and datasets the condition is the conjunction of ``on_publish``,
``on_archive`` and ``on_tags`` (publishing again counts as a new publish), and for a model
trigger with a metric a logged value crossing into its region while those hold; for runs it is
a status reached, tags gained, a metric crossing into its region, or (with none of those) a
run created. Scope filters (project, name pattern, required tags, development runs) are
judged on the state after the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, field_validator, model_validator

from taskq.core import regex
from taskq.core.events import Event
from taskq.core.matching import DropsNoPayload
from taskq.core.payload import PayloadFilter
from taskq.core.statuses import Status, status_kind
from taskq.core.watched import Family, kinds

KIND_BY_FAMILY = {Family.MODELS: "model", Family.DATASETS: "dataset", Family.RUNS: "run"}
FAMILY_BY_KIND = {v: k for k, v in KIND_BY_FAMILY.items()}
DEV_TAG = "development"
#: What a model metric trigger listens to (``taskq.models.log_metric``).
NEW_METRIC = "model_version_new_metric"
#: ClearML task statuses -> taskq run statuses (taskq's own names are accepted as well).
CLEARML_STATUSES = {"created": "queued", "queued": "queued", "in_progress": "running",
                    "stopped": "stopped", "closed": "succeeded", "completed": "succeeded",
                    "failed": "failed", "unknown": "unknown"}


def map_statuses(values: Any) -> tuple[str, ...]:
    """``trigger_on_status`` in ClearML's or taskq's words -> taskq statuses."""
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values or []:
        v = str(value).lower()
        if v in ("published", "publishing"):
            raise ValueError(f"{value!r}: taskq runs are not published; watch the model or "
                             "dataset they produce with a model / dataset trigger")
        mapped = CLEARML_STATUSES.get(v, v)
        if mapped not in {s.value for s in Status}:
            known = sorted({*CLEARML_STATUSES, *(s.value for s in Status)})
            raise ValueError(f"{value!r} is not a run status (known: {', '.join(known)})")
        out.append(mapped)
    return tuple(dict.fromkeys(out))


class EntitySpec(DropsNoPayload):
    """What a model / dataset / run trigger stores (``triggers.spec``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: Family
    project: str | None = None
    #: trigger_name: a regular expression searched in the entity's (or run's job's) name,
    #: on RE2 (linear time; Python-only syntax such as backreferences is refused).
    name_pattern: str | None = None
    on_publish: bool = False
    on_archive: bool = False
    on_tags: tuple[str, ...] = ()
    required_tags: tuple[str, ...] = ()
    on_status: tuple[str, ...] = ()
    exclude_dev: bool = False
    metric: str | None = None
    variant: str | None = None
    threshold: float | None = None
    sign: Literal["min", "max"] = "min"
    judge: Literal["last", "extreme"] = "last"
    # -- launch ----------------------------------------------------------------------
    target: Literal["job", "run", "function"]
    source_run: str | None = None
    function: str | None = None
    target_project: str | None = None
    add_tag: str | None = None
    single_instance: bool = False
    reuse_task: bool = False
    task_parameters: dict[str, Any] = {}
    task_overrides: dict[str, Any] = {}
    #: A payload filter on the change event (docs/payload-filters.md), indexed.
    payload: PayloadFilter | None = None

    @field_validator("name_pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            regex.compile_user(v)  # ValueError names the reason; pydantic adds the field
        return v

    @field_validator("sign", mode="before")
    @classmethod
    def _sign(cls, v: Any) -> Any:
        return {"maximum": "max", "minimum": "min"}.get(v, v)

    @model_validator(mode="after")
    def _coherent(self) -> EntitySpec:
        if (self.metric is None) != (self.threshold is None):
            raise ValueError("trigger_on_metric and trigger_on_threshold go together")
        if self.variant is not None and self.metric is None:
            raise ValueError("trigger_on_variant needs trigger_on_metric")
        if self.family != Family.RUNS and (self.on_status or self.exclude_dev):
            raise ValueError("status and dev-run filters are for run triggers")
        if self.family == Family.DATASETS and self.metric is not None:
            raise ValueError("trigger_on_metric is for model and run triggers")
        if self.family == Family.MODELS and (self.variant is not None
                                             or self.judge != "last"):
            raise ValueError("a model trigger judges the last value of a metric (no "
                             "trigger_on_variant, no trigger_on_metric_value)")
        if self.family == Family.RUNS and (self.on_publish or self.on_archive):
            raise ValueError("trigger_on_publish / trigger_on_archive are for models and "
                             "datasets")
        return self

    @property
    def run_mode(self) -> str:
        """metric (a crossing), status (a status reached; a metric then must be in its
        region at that moment), tags (tags gained), or created."""
        if self.metric is not None and not self.on_status:
            return "metric"
        return "status" if self.on_status else "tags" if self.on_tags else "created"


def listen_kinds(spec: EntitySpec) -> tuple[str, ...]:
    if spec.family == Family.MODELS and spec.metric is not None:
        return (NEW_METRIC,)
    if spec.family != Family.RUNS:
        return kinds(spec.family)
    mode = spec.run_mode
    if mode == "status":
        return tuple(status_kind(s) for s in spec.on_status)
    if mode == "created":  # every new run's first event (previous_status "created")
        return (status_kind(Status.COMPILED),)
    return kinds(Family.RUNS)


# -- filters ----------------------------------------------------------------------------


def _scope(spec: EntitySpec, project: Any, name: Any, tags: set[str]) -> bool:
    return ((spec.project is None or project == spec.project)
            and (spec.name_pattern is None
                 or regex.found(spec.name_pattern, str(name or "")))
            and set(spec.required_tags) <= tags)


def registry_condition(spec: EntitySpec, state: dict[str, Any]) -> bool:
    return ((not spec.on_publish or bool(state["published"]))
            and (not spec.on_archive or bool(state["archived"]))
            and set(spec.on_tags) <= set(state["tags"]))


def _watched(spec: EntitySpec, new: dict[str, Any]) -> bool:
    """Archived entities are watched only by on_archive triggers."""
    return (_scope(spec, new["project"], new["name"], set(new["tags"]))
            and not (new["archived"] and not spec.on_archive))


def registry_fires(spec: EntitySpec, prev: dict[str, Any] | None, new: dict[str, Any],
                   actions: list[str]) -> bool:
    if not _watched(spec, new):
        return False
    if not (spec.on_publish or spec.on_archive or spec.on_tags):
        return True  # any change of a matching entity
    if not registry_condition(spec, new):
        return False
    return (prev is None or not registry_condition(spec, prev)
            or (spec.on_publish and "published" in actions))


def judged(spec: EntitySpec, summary: dict[str, Any] | None) -> float | None:
    if not summary:
        return None
    if spec.judge == "extreme":
        return float(summary["max" if spec.sign == "max" else "min"])
    return float(summary["last"])


def in_region(spec: EntitySpec, value: float | None) -> bool:
    """ClearML's meaning: max -> at or above the threshold, min -> at or below it."""
    if value is None or spec.threshold is None:
        return False
    return value >= spec.threshold if spec.sign == "max" else value <= spec.threshold


def model_metric_crossed(spec: EntitySpec, payload: dict[str, Any]) -> bool:
    """A model metric trigger: the value logged entered the region (the last value before
    it, if any, was outside), while the model is in scope and its other conditions
    (published, archived, tags) hold."""
    entity = payload.get("entity")
    if payload.get("metric") != spec.metric or not isinstance(entity, dict):
        return False
    previous = payload.get("previous_value")
    return (_watched(spec, entity) and registry_condition(spec, entity)
            and in_region(spec, float(payload["value"]))
            and not in_region(spec, None if previous is None else float(previous)))


def _series(spec: EntitySpec, summary: dict[str, Any]) -> bool:
    return summary.get("title") == spec.metric and (
        spec.variant is None or summary.get("series") == spec.variant)


def metric_crossed(spec: EntitySpec, changes: dict[str, Any]) -> bool:
    """An edge: the judged value entered the region with this change."""
    return any(in_region(spec, judged(spec, s))
               and not in_region(spec, judged(spec, s.get("previous")))
               for s in changes.values() if isinstance(s, dict) and _series(spec, s))


def metric_holds(spec: EntitySpec, summaries: dict[str, Any]) -> bool:
    """A level: some matching series is in the region now (for status + metric)."""
    return any(in_region(spec, judged(spec, s)) for s in summaries.values() if _series(spec, s))


@dataclass(frozen=True)
class RegistryFilter:
    spec: EntitySpec

    def accepts(self, event: Event) -> bool:
        p = event.payload
        if self.spec.metric is not None:
            return event.kind == NEW_METRIC and model_metric_crossed(self.spec, p)
        new = p.get("entity")
        if not isinstance(new, dict):
            return False
        return registry_fires(self.spec, p.get("previous"), new, list(p.get("actions") or []))


@dataclass(frozen=True)
class RunFilter:
    spec: EntitySpec
    #: Runs this trigger launched never fire it again (no trigger loops on itself).
    trigger_name: str

    def accepts(self, event: Event) -> bool:
        run, spec = event.payload, self.spec
        tags = set(run.get("tags") or [])
        if run.get("trigger") == self.trigger_name or (spec.exclude_dev and DEV_TAG in tags):
            return False
        if not _scope(spec, run.get("project"), run.get("job"), tags):
            return False
        mode = spec.run_mode
        if mode == "metric":
            return (set(spec.on_tags) <= tags
                    and metric_crossed(spec, run.get("metrics") or {}))
        if mode == "tags":
            before = set(run.get("previous_tags") or [])
            return "previous_tags" in run and set(spec.on_tags) <= tags and not (
                set(spec.on_tags) <= before)
        if not set(spec.on_tags) <= tags:
            return False
        return mode == "status" or run.get("previous_status") == Status.CREATED.value
