"""What a pipeline is checked for against its jobs' declarations, before anything runs. Pure.

Polyaxon checks an operation's params against its component's inputs when the file is
compiled; so does taskq, so a missing required input or a ref that cannot fit its input is
refused when the pipeline is loaded, naming the field (``operations.train.params.lr: ...``),
instead of failing the operation once its upstreams have run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskq.core.jobs import normalise_io, validate_inputs
from taskq.core.pipelines.params import ParamRef, fits, ref_type
from taskq.core.pipelines.spec import Operation, PipelineSpec
from taskq.core.stored import JobTemplate
from taskq.errors import JobError, SpecError


def check_params(spec: PipelineSpec, templates: Mapping[str, JobTemplate]) -> None:
    """``templates``: each operation's job. Raises SpecError naming the operation's field."""
    dag_inputs = _dag_inputs(spec)
    for op in spec.run.operations:
        where = f"operations.{op.name}"
        declared = templates[op.name].inputs
        plain, refs = op.plain_params(), op.param_refs()
        try:
            validate_inputs(declared, plain, job=op.job, check_required=False)
            for name in refs:
                if name not in declared:
                    raise JobError(f"params.{name}: job {op.job!r} has no input {name!r}")
        except JobError as exc:
            raise SpecError(f"{where}.{exc}") from None
        _check_required(op, declared, plain, refs)
        for name, ref in op.all_refs().items():
            pool = _pool(spec, ref, templates, dag_inputs, f"{where}.params.{name}")
            if name in refs:
                target = str((declared.get(name) or {}).get("type") or "any")
                source = ref_type(ref, pool)
                if not fits(target, source):
                    raise SpecError(f"{where}.params.{name}: {ref.describe()} is a {source}, "
                                    f"but job {op.job!r} takes {name!r} as a {target}")


def _check_required(op: Operation, declared: Mapping[str, Any], plain: Mapping[str, Any],
                    refs: Mapping[str, ParamRef]) -> None:
    for name, decl in declared.items():
        if not (isinstance(decl, dict) and decl.get("required") and "default" not in decl):
            continue
        if name in refs or plain.get(name) is not None:
            continue
        raise SpecError(f"operations.{op.name}.params.{name}: job {op.job!r} requires this "
                        "input and no param gives it")


def _pool(spec: PipelineSpec, ref: ParamRef, templates: Mapping[str, JobTemplate],
          dag_inputs: dict[str, Any], where: str) -> dict[str, Any]:
    """The declarations ``ref`` reads from; refuses a name they do not declare."""
    if ref.op is None:
        pool, owner = dag_inputs, "the pipeline declares"
    elif ref.section == "globals":
        return {}
    else:
        upstream = templates[ref.op]
        pool = upstream.inputs if ref.section == "inputs" else upstream.outputs
        owner = f"job {spec.op(ref.op).job!r} of ops.{ref.op} declares"
    if not ref.whole and ref.key not in pool:
        raise SpecError(f"{where}: {owner} no {ref.section[:-1]} {ref.key!r}")
    return pool


def _dag_inputs(spec: PipelineSpec) -> dict[str, Any]:
    declared = {k: ({"type": v} if isinstance(v, str) else dict(v or {}))
                for k, v in spec.declared_inputs().items()}
    for entry in declared.values():
        entry.pop("value", None)
        entry.pop("isOptional", None)
    try:
        return normalise_io(declared, "inputs", spec.name)
    except JobError:
        return declared  # an unknown type is refused with the params, not here
