"""Job chaining and external events (Metaflow's ``@trigger_on_finish`` and ``@trigger``).

Pure: specs, the rules they become, the lineage a cloned run records, payload fields mapped
to params, and the reset window. The I/O (arming a join in SQL) is in
:mod:`taskq.store.joins`; the firing in :mod:`taskq.services.firing`.

A finish trigger listens to ``run_status_succeeded`` of each upstream job; an event trigger
to ``custom_event`` of ``events.<name>``. Several inputs are joined with ``mode``: ``all``
(AND, the default: one new event on every input, the latest per input wins) or ``any``
(OR: every event fires). A ``reset`` drops partially satisfied state, like Argo Events'
conditionsReset: a number of seconds (events older than that, counted back from the newest,
no longer count), or a cron string (events before its most recent tick no longer count).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from taskq.core import names
from taskq.core.cron import Reset, check_reset
from taskq.core.events import CUSTOM_EVENT_KIND, Event
from taskq.core.matching import DropsNoPayload, EventTrigger, Input, Match, Rule
from taskq.core.names import validate_namespace
from taskq.core.payload import PayloadFilter
from taskq.core.planning import Facts, Plan, plan_clone, render_mapped
from taskq.core.statuses import Status, status_kind
from taskq.core.stored import JobTemplate
from taskq.core.triggers.base import NOTHING, FiringMode, TriggerRow, Wants
from taskq.errors import EventError, JobError, first_error

FINISH = "finish"
EVENTS = "events"
JOIN = "join"  # finish and events together (an AND across runs and published events)

# -- specs: what users write --------------------------------------------------------------


class Upstream(DropsNoPayload):
    """One job whose successful runs a finish trigger waits for (those whose run summary
    matches ``payload``, if given)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: str = Field(min_length=1, max_length=128)
    #: Another namespace's job; allowed only where ``watch_namespaces`` grants it.
    namespace: str | None = None
    payload: PayloadFilter | None = None

    @field_validator("job")
    @classmethod
    def _job(cls, v: str) -> str:
        if not names.NAME.match(v):
            raise ValueError(f"job name {v!r} is malformed (letters, digits, '_', '.', '-')")
        return v


class EventInput(DropsNoPayload):
    """One published event an event trigger waits for (those whose payload matches
    ``payload``, if given), and which payload fields become which params (``{param:
    field}``; a list means same-named fields)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    parameters: dict[str, str] | None = None
    payload: PayloadFilter | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not names.NAME.match(v):
            raise ValueError(f"event name {v!r} is malformed (letters, digits, '_', '.', '-')")
        return v

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameters(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            out: dict[str, str] = {}
            for item in v:
                param, field = (item, item) if isinstance(item, str) else tuple(item)
                if param in out:
                    raise ValueError(f"param {param!r} is mapped twice")
                out[param] = field
            return out
        return v

    @field_validator("parameters")
    @classmethod
    def _fields(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for param, field in (v or {}).items():
            if not names.FIELD.match(field):
                raise ValueError(f"field {field!r} for param {param!r} is malformed")
        return v




class JoinSpec(BaseModel):
    """What a finish or event trigger stores (``triggers.spec``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: tuple[dict[str, Any], ...] = Field(min_length=1)
    mode: Literal["all", "any"] = "all"
    reset: float | str | None = None
    #: input key -> {param: payload field}
    parameters: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("reset")
    @classmethod
    def _reset(cls, v: Reset) -> Reset:
        check_reset(v)
        return v

    @model_validator(mode="after")
    def _keys_unique(self) -> JoinSpec:
        keys = [i["key"] for i in self.inputs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"inputs: {sorted({k for k in keys if keys.count(k) > 1})[0]!r} "
                             "is listed twice")
        return self


def parse_upstream(value: Any, own_namespace: str) -> Upstream:
    """``"training"``, ``"other-ns.training"`` (a namespace prefix: namespaces have no
    dots) or ``{"job": ..., "namespace": ...}``."""
    if isinstance(value, Upstream):
        return value
    if isinstance(value, str):
        head, dot, tail = value.partition(".")
        if dot and tail:
            try:
                validate_namespace(head)
                return Upstream(job=tail, namespace=head)
            except EventError:
                pass
        return Upstream(job=value)
    if isinstance(value, dict):
        if "name" in value and "job" not in value:
            value = {"job": value["name"], **{k: v for k, v in value.items() if k != "name"}}
        return Upstream.model_validate(value)
    raise ValueError(f"expected a job name or a mapping, got {type(value).__name__}")


def parse_event(value: Any) -> EventInput:
    if isinstance(value, EventInput):
        return value
    if isinstance(value, str):
        return EventInput(name=value)
    if isinstance(value, dict):
        return EventInput.model_validate(value)
    raise ValueError(f"expected an event name or a mapping, got {type(value).__name__}")


def _as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | dict | Upstream | EventInput):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(f"{what}: expected a name or a list of names, got {type(value).__name__}")




def parse(namespace: str, on_finish: Any, on: Any, mode: Any = "all", reset: Reset = None
          ) -> tuple[list[Upstream], list[EventInput], str, Reset]:
    """Check what a user wrote; errors name the argument and the item."""
    if mode not in ("all", "any"):
        raise ValueError(f"mode: {mode!r} is not 'all' (AND) or 'any' (OR)")
    check_reset(reset)
    upstream, events = [], []
    for i, item in enumerate(_as_list(on_finish, "trigger_on_finish")):
        try:
            upstream.append(parse_upstream(item, namespace))
        except ValueError as exc:
            raise ValueError(f"trigger_on_finish[{i}]: {first_error(exc)}") from None
    for i, item in enumerate(_as_list(on, "trigger_on")):
        try:
            events.append(parse_event(item))
        except ValueError as exc:
            raise ValueError(f"trigger_on[{i}]: {first_error(exc)}") from None
    if not upstream and not events:
        raise ValueError("trigger_on_finish / trigger_on: name at least one job or event")
    _refuse_repeats(namespace, upstream, events)
    return upstream, events, mode, reset


def _refuse_repeats(namespace: str, upstream: list[Upstream], events: list[EventInput]) -> None:
    """Each input is one key of the join (its job, or its event's name): a key given twice
    is a typo, refused where it is written rather than when the trigger is stored."""
    seen: set[str] = set()
    keyed = [("trigger_on_finish", i, u.job if u.namespace in (None, namespace)
              else f"{u.namespace}.{u.job}") for i, u in enumerate(upstream)]
    keyed += [("trigger_on", i, e.name) for i, e in enumerate(events)]
    for arg, i, key in keyed:
        if key in seen:
            raise ValueError(f"{arg}[{i}]: {key!r} is listed twice")
        seen.add(key)


def declared(namespace: str, on_finish: Any, on: Any, options: dict[str, Any]
             ) -> dict[str, Any]:
    """``@taskq.job(trigger_on_finish=..., trigger_on=..., trigger_options=...)``, checked."""
    unknown = sorted(set(options) - {"mode", "reset"})
    if unknown:
        raise ValueError(f"trigger_options: unknown option {unknown[0]!r} (known: mode, reset)")
    try:
        upstream, events, mode, reset = parse(namespace, on_finish, on,
                                              options.get("mode", "all"), options.get("reset"))
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith("trigger_") else f"trigger_options.{msg}"
                         ) from None
    return {"upstream": [u.model_dump() for u in upstream],
            "events": [e.model_dump() for e in events], "mode": mode, "reset": reset}


def build_spec(namespace: str, upstream: list[Upstream], events: list[EventInput], *,
               mode: str, reset: Reset) -> tuple[str, JoinSpec]:
    """The stored kind (finish, events, or join for both) and spec."""
    inputs = []
    for u in upstream:
        ns = u.namespace or namespace
        key = u.job if ns == namespace else f"{ns}.{u.job}"
        inputs.append({"key": key, "namespace": ns, "ref": f"jobs.{u.job}",
                       "kinds": [status_kind(Status.SUCCEEDED)], **_filtered(u.payload)})
    for e in events:
        inputs.append({"key": e.name, "namespace": namespace, "ref": f"events.{e.name}",
                       "kinds": [CUSTOM_EVENT_KIND], **_filtered(e.payload)})
    params = {e.name: dict(e.parameters) for e in events if e.parameters is not None}
    kind = JOIN if upstream and events else FINISH if upstream else EVENTS
    spec = JoinSpec(inputs=tuple(inputs), mode=mode, reset=reset,  # type: ignore[arg-type]
                    parameters=params)
    return kind, spec


def _filtered(payload: PayloadFilter | None) -> dict[str, Any]:
    """An input's payload filter, stored only when it has one (older specs stay equal)."""
    return {} if payload is None else {"payload": payload.raw()}


def check_mapping(spec: JoinSpec, declared: dict[str, Any], job: str) -> None:
    """Mapped params must be inputs the target job declares (refused at registration)."""
    for key, mapping in spec.parameters.items():
        for param in mapping:
            if param not in declared:
                raise JobError(f"trigger_on.{key}.parameters.{param}: job {job!r} has no "
                               f"input {param!r}")


# -- the kind -----------------------------------------------------------------------------


class ChainingKind:
    """Finish and event triggers; an AND of several inputs fires as a join."""

    stored_kinds: tuple[str, ...] = (FINISH, EVENTS, JOIN)

    def build_rule(self, row: TriggerRow) -> Rule:
        spec = JoinSpec.model_validate(row.spec)
        inputs = tuple(Input(key=i["key"], namespace=i["namespace"],
                             event=EventTrigger(ref=i["ref"], kinds=i["kinds"],
                                                payload=i.get("payload")))
                       for i in spec.inputs)
        return Rule(id=row.id, name=row.name, namespace=row.namespace,
                    event=inputs[0].event, job=row.job, params=row.params,
                    queue=row.queue, version=row.version, kind=row.kind,
                    inputs=inputs, mode=spec.mode, spec=spec,
                    options={"reset": spec.reset, "parameters": spec.parameters})

    def firing_mode(self, rule: Rule) -> FiringMode:
        return "join" if rule.is_join else "single"

    def wants(self, rule: Rule) -> Wants:
        return NOTHING

    def plan(self, match: Match, template: JobTemplate | None, key: str, facts: Facts,
             events: Mapping[str, Event] | None = None) -> Plan:
        return plan_clone(match, template, key, facts, render_mapped, events)
