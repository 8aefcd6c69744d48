"""Hooks: a job run after another run reaches a final status (Polyaxon's V1Hook).

A hook is stored as a trigger of kind ``hook`` whose ref is the job template it is attached
to (``jobs.<name>``: every run of it) or one run (``runs.<uuid>``). It therefore shares the
evaluator, the dedup rule (one firing per hook and run), the outbox and the routing of every
other trigger; what it adds is here: the status filter, the condition, the default context
and the params checked against the target job's inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from taskq.core.conditions import Condition, evaluate_condition
from taskq.core.events import Event
from taskq.core.jobs import validate_inputs
from taskq.core.lineage import default_context
from taskq.core.matching import DropsNoPayload, EventTrigger, Match, Rule
from taskq.core.payload import PayloadFilter
from taskq.core.planning import Facts, Plan, Rendered, plan_clone
from taskq.core.statuses import DONE, status_kind
from taskq.core.stored import JobTemplate
from taskq.core.templating import render_params
from taskq.core.triggers.base import FiringMode, TriggerRow, Wants

HookTrigger = Literal["succeeded", "failed", "stopped", "skipped", "upstream_failed", "done"]

#: Context-only params every hook run receives unless ``disable_defaults``.
DEFAULT_CONTEXT = ("uuid", "name", "kind", "status", "inputs", "outputs", "condition",
                   "started_at", "finished_at", "duration", "wait_time")


class Hook(DropsNoPayload):
    """Accepts Polyaxon's YAML spelling (``hubRef``, ``disableDefaults``) and snake_case."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    hub_ref: str = Field(alias="hubRef", min_length=1, max_length=128)
    trigger: HookTrigger = "done"
    connection: str | None = None
    conditions: Condition = None
    presets: tuple[str, ...] = ()
    queue: str | None = None
    namespace: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    disable_defaults: bool = Field(default=False, alias="disableDefaults")
    #: Which runs' payloads the hook fires for (docs/payload-filters.md); indexed, and
    #: judged before ``conditions``.
    payload: PayloadFilter | None = None

    @field_validator("trigger", mode="before")
    @classmethod
    def _none_is_done(cls, v: Any) -> Any:
        return DONE if v is None else v

    @field_validator("params", mode="before")
    @classmethod
    def _params_mapping(cls, v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ValueError("must be a mapping of parameter names to values")
        return v

    def kinds(self) -> tuple[str, ...]:
        return (status_kind(self.trigger),)

    def spec(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=False)


def apply_presets(hook: Hook, presets: dict[str, dict[str, Any]]) -> Hook:
    """Presets are named bundles (``params``, ``queue``, ``namespace``) from configuration,
    applied in the order listed; what the hook itself says wins over all of them."""
    params: dict[str, Any] = {}
    queue: str | None = None
    namespace: str | None = None
    for name in hook.presets:
        preset = presets.get(name)
        if preset is None:
            known = ", ".join(sorted(presets)) or "none configured"
            raise ValueError(f"hook.presets: unknown preset {name!r} (known: {known})")
        params.update(preset.get("params") or {})
        queue = preset.get("queue", queue)
        namespace = preset.get("namespace", namespace)
    return hook.model_copy(update={"params": {**params, **hook.params},
                                   "queue": hook.queue or queue,
                                   "namespace": hook.namespace or namespace})


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Polyaxon's ``{value: x, contextOnly: true}`` form, or plain values.

    Returns (inputs for the job, context-only values).
    """
    inputs: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for name, raw in params.items():
        if isinstance(raw, dict) and "value" in raw and set(raw) <= {
                "value", "contextOnly", "context_only", "ref"}:
            if raw.get("contextOnly") or raw.get("context_only"):
                context[name] = raw["value"]
            else:
                inputs[name] = raw["value"]
        else:
            inputs[name] = raw
    return inputs, context


def last_metrics(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metrics or []:
        out[m["name"]] = m["value"]
    return out


def condition_scope(run: dict[str, Any], metrics: list[dict[str, Any]],
                    context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Names a condition may use: outputs, then metrics (last value), then params, then the
    main run's ``contextOnly`` params, each by its own name; and ``inputs``, ``outputs``,
    ``params``, ``metrics``, ``globals``."""
    params = run.get("params") or {}
    outputs = run.get("outputs") or {}
    last = last_metrics(metrics)
    scope: dict[str, Any] = {**(context or {}), **params, **last, **outputs}
    scope.update(inputs=params, params=params, outputs=outputs, metrics=last,
                 globals=default_context(run))
    return scope


def check(hook: Hook, run: dict[str, Any], metrics: list[dict[str, Any]],
          context: dict[str, Any] | None = None) -> str | None:
    """None if the hook should run; else the reason it is skipped. Raises TemplateFailure
    when the condition cannot be evaluated (recorded as an error, never raised further)."""
    if hook.conditions is None:
        return None
    if evaluate_condition(hook.conditions, condition_scope(run, metrics, context)):
        return None
    return f"conditions {hook.conditions!r} evaluated to false"


# -- the kind -----------------------------------------------------------------------------


def render_hook(match: Match, events: Mapping[str, Event], template: JobTemplate,
                context: dict[str, Any], facts: Facts) -> Rendered:
    """The condition decides; params split into the job's inputs (checked against the
    target) and context-only values, with Polyaxon's default context unless disabled."""
    hook: Hook = match.rule.spec
    run = context["run"] or {}
    metrics = list(facts.event_run.metrics) if facts.event_run else []
    main_context = ((facts.event_run.trigger_context or {}).get("context")
                    if facts.event_run else None)
    skipped = check(hook, run, metrics, main_context)
    if skipped:
        return Rendered(skipped=skipped)
    inputs, extra = split_params(match.rule.params)
    extra = render_params(extra, context)
    if not hook.disable_defaults:
        extra = {**default_context(run), **extra}
    params = validate_inputs(template.inputs, render_params(inputs, context), job=match.rule.job)
    return Rendered(params=params, trigger_context={"hook": hook.spec(), "context": extra})


class HookKind:
    stored_kinds: tuple[str, ...] = ("hook",)

    def build_rule(self, row: TriggerRow) -> Rule:
        hook = Hook.model_validate(row.spec["hook"])
        event = EventTrigger(ref=row.spec["ref"], kinds=hook.kinds(), payload=hook.payload)
        return Rule(id=row.id, name=row.name, namespace=row.namespace, event=event,
                    job=hook.hub_ref, params=hook.params, queue=row.queue,
                    version=row.version, spec=hook, kind="hook")

    def firing_mode(self, rule: Rule) -> FiringMode:
        return "single"

    def wants(self, rule: Rule) -> Wants:
        return Wants(event_run=bool(rule.spec.conditions))

    def plan(self, match: Match, template: JobTemplate | None, key: str, facts: Facts,
             events: Mapping[str, Event] | None = None) -> Plan:
        return plan_clone(match, template, key, facts, render_hook, events)
