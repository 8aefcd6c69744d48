"""A pipeline spec, shaped like a Polyaxonfile with ``run: {kind: dag}``.

Everything that can be checked without the database is checked here, before anything runs:
names, refs to unknown operations, cycles, param refs, policies, event kinds, conditions.
Errors name the operation and the field. :func:`taskq.core.pipelines.checks.check_params`
adds what needs the job templates (undeclared inputs and outputs, required inputs, ref
types), :func:`taskq.services.pipelines.check_against_jobs` unknown jobs, queues and hooks.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from taskq.core.conditions import Condition
from taskq.core.names import unbrace, validate_kinds, validate_ref
from taskq.core.pipelines import graph
from taskq.core.pipelines.params import OP_NAME, ParamRef, Split, split_params
from taskq.core.triggers.hook import Hook
from taskq.errors import SpecError, first_error


class Policy(StrEnum):
    """When an operation starts, judged on the final statuses of its upstream operations."""

    ALL_SUCCEEDED = "all_succeeded"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ONE_SUCCEEDED = "one_succeeded"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"


#: What an operation may wait on besides its own pipeline's operations: events from outside
#: the pipeline (a git commit, a published event), received after the pipeline started.
EXTERNAL_FAMILIES = ("connections", "events")


class OpEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str
    kinds: tuple[str, ...] = Field(min_length=1)

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        v = unbrace(v)
        if v.startswith("ops.") and OP_NAME.match(v[4:]):
            return v
        if v.partition(".")[0] in EXTERNAL_FAMILIES:
            try:
                return validate_ref(v)
            except ValueError:
                pass
        raise ValueError(f"{v!r} is not 'ops.<operation>', 'connections.<name>' or "
                         "'events.<name>' (what an operation can wait on)")

    @field_validator("kinds", mode="before")
    @classmethod
    def _kinds(cls, v: Any, info: ValidationInfo) -> Any:
        return validate_kinds(v, ref=info.data.get("ref"))

    @property
    def external(self) -> bool:
        """An event from outside the pipeline, not a status of one of its operations."""
        return not self.ref.startswith("ops.")

    @property
    def op(self) -> str:
        """The operation it waits on ('' for an external event)."""
        return "" if self.external else self.ref[4:]


class Operation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str
    job: str = Field(alias="hubRef", min_length=1, max_length=128)
    #: Shown with the operation's run (``taskq runs show``); Polyaxon's operation fields.
    description: str | None = Field(default=None, max_length=10_000)
    tags: tuple[str, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    trigger: Policy = Policy.ALL_SUCCEEDED
    events: tuple[OpEvent, ...] = ()
    conditions: Condition = None
    skip_on_upstream_skip: bool = Field(default=False, alias="skipOnUpstreamSkip")
    hooks: tuple[Hook, ...] = ()
    queue: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _job_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict) and "job" in data and "hubRef" not in data:
            data = {**{k: v for k, v in data.items() if k != "job"}, "hubRef": data["job"]}
        if isinstance(data, dict) and "pathRef" in data:
            raise ValueError("pathRef: a component file is not supported; name the job "
                             "with hubRef (or job)")
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not OP_NAME.match(v):
            raise ValueError(f"{v!r} is not an operation name (letters, digits, '_', '-')")
        return v

    def _params(self) -> Split:
        return split_params(self.name, self.params)

    def param_refs(self) -> dict[str, ParamRef]:
        """Refs resolved into the job's params when the operation starts."""
        return self._params()[1]

    def plain_params(self) -> dict[str, Any]:
        """Values: ``{value: x}`` (Polyaxon's spelling) or ``x``; refs resolved later."""
        return self._params()[0]

    def context_refs(self) -> dict[str, ParamRef]:
        return self._params()[3]

    def context_params(self) -> dict[str, Any]:
        """``contextOnly`` values (refs among them are resolved when it starts)."""
        return self._params()[2]

    def all_refs(self) -> dict[str, ParamRef]:
        return {**self.param_refs(), **self.context_refs()}

    def upstream(self) -> set[str]:
        """Every operation this one waits on, however it names it."""
        ups = set(self.dependencies) | {e.op for e in self.events if not e.external}
        ups |= {r.op for r in self.all_refs().values() if r.op}
        return ups


class DagRun(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["dag"] = "dag"
    operations: tuple[Operation, ...] = Field(min_length=1)
    concurrency: int | None = Field(default=None, ge=1, le=1000)


class PipelineSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: float | str = 1.1
    kind: Literal["component", "operation"] = "component"
    name: str = "pipeline"
    description: str | None = None
    tags: tuple[str, ...] = ()
    #: The pipeline's own params: name -> {type, default} (as job inputs), or a list.
    inputs: dict[str, Any] | list[Any] = Field(default_factory=dict)
    run: DagRun

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not OP_NAME.match(v):
            raise ValueError(f"{v!r} is not a pipeline name (letters, digits, '_', '-')")
        return v

    @model_validator(mode="after")
    def _graph(self) -> PipelineSpec:
        check_graph(self.run.operations)
        return self

    def op(self, name: str) -> Operation:
        return next(o for o in self.run.operations if o.name == name)

    def declared_inputs(self) -> dict[str, Any]:
        raw = self.inputs
        if isinstance(raw, list):  # Polyaxon's [{name, type, value/isOptional}]
            return {i["name"]: {k: v for k, v in i.items() if k != "name"}
                    for i in raw if isinstance(i, dict) and "name" in i}
        return dict(raw)


def check_graph(ops: tuple[Operation, ...]) -> None:
    names = [o.name for o in ops]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"operations.{dupes[0]}: the name is used twice")
    known = set(names)
    for o in ops:
        for dep in o.dependencies:
            if dep not in known:
                raise SpecError(f"operations.{o.name}.dependencies: unknown operation {dep!r}")
        for e in o.events:
            if not e.external and e.op not in known:
                raise SpecError(f"operations.{o.name}.events: unknown operation {e.op!r}")
        for pname, ref in o.all_refs().items():
            if ref.op is not None and ref.op not in known:
                raise SpecError(f"operations.{o.name}.params.{pname}: unknown operation "
                                f"{ref.op!r}")
            if ref.op is None and ref.section != "inputs":
                raise SpecError(f"operations.{o.name}.params.{pname}: a dag ref takes "
                                "inputs or inputs.<name> (a dag has no outputs yet)")
            if ref.op is not None and ref.section in ("outputs", "inputs") and ref.op in {
                    e.op for e in o.events if not e.external} and ref.op not in o.dependencies:
                raise SpecError(
                    f"operations.{o.name}.params.{pname}: {ref.section} of ops.{ref.op} are "
                    "known only once it finishes, but this operation starts on its events; "
                    f"add {ref.op!r} to dependencies, or use globals")
        if o.name in o.upstream():
            raise SpecError(f"operations.{o.name}: depends on itself")
    cycle = graph.find_cycle({o.name: o.upstream() for o in ops})
    if cycle:
        raise SpecError(f"operations.{cycle[0]}: cycle {' -> '.join(cycle)}")


def topological(ops: tuple[Operation, ...]) -> list[str]:
    """Upstreams before downstreams, declaration order otherwise (a stable display order)."""
    return graph.topological([o.name for o in ops], {o.name: o.upstream() for o in ops})


def parse(data: Any) -> PipelineSpec:
    """A spec from a mapping; a SpecError naming the field on anything wrong."""
    if isinstance(data, PipelineSpec):
        return data
    if not isinstance(data, dict):
        raise SpecError(f"a pipeline is a mapping (version, kind, run: {{kind: dag, "
                        f"operations: [...]}}), got {type(data).__name__}")
    try:
        return PipelineSpec.model_validate(data)
    except SpecError:
        raise
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            ctx_err = (first.get("ctx") or {}).get("error")
            if isinstance(ctx_err, SpecError):
                raise SpecError(str(ctx_err)) from None
            raise SpecError(first_error(exc, locate=lambda loc: _where(data, loc))) from None
        raise SpecError(str(exc)) from None


def _where(data: dict[str, Any], loc: list[Any]) -> str:
    """``run.operations.1.hubRef`` -> ``operations.tensorboard.hubRef``."""
    if len(loc) >= 3 and loc[0] == "run" and loc[1] == "operations" and isinstance(loc[2], int):
        ops = (data.get("run") or {}).get("operations") or []
        name = ops[loc[2]].get("name") if loc[2] < len(ops) and isinstance(
            ops[loc[2]], dict) else None
        return ".".join(["operations", str(name or loc[2]), *map(str, loc[3:])])
    return ".".join(map(str, loc))
