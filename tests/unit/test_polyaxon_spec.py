"""What Polyaxon's docs show a Polyaxonfile and its events may say, accepted as written:
conditions over the operation's own params, ``contextOnly`` params, an operation's
``description`` and ``tags``, refs to a whole section, required inputs and ref types
checked at load, and every status of V1Statuses as an event kind. Pure: no service."""

from __future__ import annotations

from typing import Any

import pytest

from taskq.core.lineage import has_lineage
from taskq.core.matching import EventTrigger
from taskq.core.names import validate_kind
from taskq.core.pipelines import scheduler as dag
from taskq.core.pipelines.checks import check_params
from taskq.core.pipelines.spec import parse
from taskq.core.statuses import RUN_STATUS_KINDS, Status
from taskq.core.stored import JobTemplate
from taskq.core.triggers.hook import condition_scope as hook_scope
from taskq.errors import SpecError
from tests.unit.test_pipelines import decide, kinds, op, spec, states

S = Status

#: Polyaxon's V1EventTrigger docs: the run_status_* kinds it lists (all of them must be
#: accepted), and V1Statuses of its code (``on_schedule`` is there, not in the list).
DOCUMENTED_KINDS = [
    "run_status_created", "run_status_resuming", "run_status_compiled", "run_status_queued",
    "run_status_scheduled", "run_status_starting", "run_status_initializing",
    "run_status_running", "run_status_processing", "run_status_stopping",
    "run_status_failed", "run_status_stopped", "run_status_succeeded", "run_status_skipped",
    "run_status_warning", "run_status_unschedulable", "run_status_upstream_failed",
    "run_status_retrying", "run_status_unknown", "run_status_done"]
V1_STATUSES = ["created", "resuming", "on_schedule", "compiled", "queued", "scheduled",
               "starting", "running", "processing", "stopping", "failed", "stopped",
               "succeeded", "skipped", "warning", "unschedulable", "upstream_failed",
               "retrying", "unknown", "done"]


# -- conditions see the operation's own params ---------------------------------------------


def test_conditions_read_the_operations_own_params_as_the_hook_docs_write_them() -> None:
    """V1Hook's docs: ``conditions: '{{ some-io-param == "some-value" }}'``."""
    sp = spec(op("a", params={"some-io-param": {"value": "some-value"}},
                 conditions='{{ some-io-param == "some-value" }}'),
              op("b", params={"image": {"value": "other"}},
                 conditions='{{ image == "some-value" }}'))
    d = decide(sp, states(a=S.CREATED, b=S.CREATED), status=S.CREATED)
    assert kinds(d) == {"a": "start", "b": "skip"}
    assert d.actions[0].params == {"some-io-param": "some-value"}


def test_conditions_see_context_only_params_refs_and_job_defaults() -> None:
    sp = spec(op("up"), op("a", dependencies=["up"],
                           params={"image": {"value": "some-value", "contextOnly": True},
                                   "loss": {"ref": "ops.up", "value": "outputs.loss"}},
                           conditions='{{ image == "some-value" and loss < 0.2 '
                                      'and epochs == 3 }}'))
    d = dag.decide(sp, states(up=S.SUCCEEDED, a=S.CREATED), pipeline_status=S.RUNNING,
                   dag_params={}, defaults={"a": {"epochs": 3}})
    assert kinds(d) == {"a": "start"}, d.actions
    assert d.actions[0].params == {"loss": 0.1}
    assert d.actions[0].context == {"image": "some-value"}


# -- contextOnly -----------------------------------------------------------------------------


def test_context_only_params_are_context_not_function_arguments() -> None:
    """V1Param's docs: ``convolutions: {contextOnly: true, value: {...}}``."""
    convolutions = {"conv1": {"kernels": [32, 32], "size": [2, 2], "strides": [1, 1]}}
    sp = spec(op("up"), op("a", dependencies=["up"], params={
        "convolutions": {"contextOnly": True, "value": convolutions},
        "up_uuid": {"ref": "ops.up", "value": "globals.uuid", "contextOnly": True},
        "lr": {"value": 0.1}}))
    a = sp.op("a")
    assert a.plain_params() == {"lr": 0.1}
    assert a.context_params() == {"convolutions": convolutions}
    assert set(a.context_refs()) == {"up_uuid"} and a.upstream() == {"up"}
    d = decide(sp, states(up=S.SUCCEEDED, a=S.CREATED))
    assert d.actions[0].params == {"lr": 0.1}
    assert d.actions[0].context == {"convolutions": convolutions, "up_uuid": "uuid-up"}
    # Not checked against the job's inputs: the job declares neither.
    check_params(sp, {"up": job(), "a": job(inputs={"lr": "float"})})


def test_a_context_only_context_is_not_a_trigger() -> None:
    assert not has_lineage({"context": {"image": "x"}})
    assert has_lineage({"trigger": "t", "event": {"id": "1"}})


def test_hook_conditions_see_the_main_runs_context_only_params() -> None:
    scope = hook_scope({"params": {"lr": 0.1}, "outputs": {}}, [], {"image": "some-value"})
    assert scope["image"] == "some-value" and scope["lr"] == 0.1


# -- description and tags --------------------------------------------------------------------


def test_operations_take_description_and_tags() -> None:
    """V1Operation's docs: ``description: test``, ``tags: [test]``."""
    sp = spec(op("a", description="test", tags=["test"]))
    assert sp.op("a").description == "test" and sp.op("a").tags == ("test",)
    again = parse(sp.model_dump(mode="json", by_alias=True))  # as stored, read back
    assert again.op("a").description == "test" and again.op("a").tags == ("test",)


# -- whole sections --------------------------------------------------------------------------


def test_refs_to_a_whole_section_resolve_to_one_mapping() -> None:
    """V1Param's docs: ``all_inputs_dict: {{inputs}}``, ``all_outputs_dict: {{outputs}}``."""
    sp = spec(op("up"), op("a", dependencies=["up"], params={
        "outs": {"ref": "ops.up", "value": "outputs"},
        "ins": {"ref": "ops.up", "value": "{{ inputs }}"},
        "templ": "{{ ops.up.outputs }}",
        "templ_one": {"value": "{{ ops.up.outputs.loss }}"},
        "dag_all": {"ref": "dag", "value": "inputs"}}))
    assert sp.op("a").upstream() == {"up"}
    d = decide(sp, states(up=S.SUCCEEDED, a=S.CREATED), params={"seed": 7})
    assert d.actions[0].params == {"outs": {"loss": 0.1}, "ins": {"lr": 0.5},
                                   "templ": {"loss": 0.1}, "templ_one": 0.1,
                                   "dag_all": {"seed": 7}}


@pytest.mark.parametrize(("params", "message"), [
    ({"x": {"ref": "dag", "value": "outputs"}}, "operations.a.params.x: a dag ref takes inputs"),
    ({"x": {"ref": "ops.up", "value": "globals"}}, "globals is not a section to pass whole"),
])
def test_whole_sections_that_do_not_exist_are_refused(params, message) -> None:
    with pytest.raises(SpecError) as info:
        spec(op("up"), op("a", dependencies=["up"], params=params))
    assert message in str(info.value)


# -- checked at load against the jobs --------------------------------------------------------


def job(inputs: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None,
        name: str = "train") -> JobTemplate:
    norm = {k: ({"type": v} if isinstance(v, str) else v) for k, v in (inputs or {}).items()}
    outs = {k: ({"type": v} if isinstance(v, str) else v) for k, v in (outputs or {}).items()}
    return JobTemplate(name=name, namespace="default", queue="train", task_name=name,
                       inputs=norm, outputs=outs)


TRAIN = {"lr": {"type": "float", "required": True}, "epochs": {"type": "int", "default": 3},
         "config": "dict", "anything": "any", "label": "str"}
UP_OUT = {"loss": "float", "name": "str", "steps": "int"}


@pytest.mark.parametrize(("params", "message"), [
    ({}, "operations.train.params.lr: job 'train' requires this input and no param gives it"),
    ({"lr": {"value": None}}, "operations.train.params.lr: job 'train' requires this input"),
    ({"lr": {"value": 0.1, "contextOnly": True}}, "operations.train.params.lr: job 'train' "
                                                  "requires this input"),
    ({"lr": {"ref": "ops.up", "value": "outputs.name"}},
     "operations.train.params.lr: ops.up.outputs.name is a str, but job 'train' takes 'lr' "
     "as a float"),
    ({"lr": {"ref": "ops.up", "value": "outputs"}},
     "operations.train.params.lr: ops.up.outputs is a dict, but job 'train' takes 'lr' as "
     "a float"),
    ({"lr": 0.1, "epochs": {"ref": "ops.up", "value": "outputs.loss"}},
     "operations.train.params.epochs: ops.up.outputs.loss is a float, but job 'train' takes "
     "'epochs' as a int"),
    ({"lr": 0.1, "config": {"ref": "ops.up", "value": "globals.uuid"}},
     "operations.train.params.config: ops.up.globals.uuid is a str"),
    ({"lr": {"ref": "dag", "value": "inputs.rate"}},
     "operations.train.params.lr: dag.inputs.rate is a str, but job 'train' takes 'lr'"),
    ({"lr": {"ref": "dag", "value": "inputs.nope"}},
     "operations.train.params.lr: the pipeline declares no input 'nope'"),
    ({"lr": 0.1, "note": {"ref": "ops.up", "value": "outputs.ghost", "contextOnly": True}},
     "operations.train.params.note: job 'prep' of ops.up declares no output 'ghost'"),
])
def test_required_inputs_and_ref_types_are_checked_at_load(params, message) -> None:
    sp = spec(op("up", job="prep"), op("train", dependencies=["up"], params=params),
              inputs={"rate": {"type": "str", "default": "fast"}})
    with pytest.raises(SpecError) as info:
        check_params(sp, {"up": job(outputs=UP_OUT, name="prep"), "train": job(TRAIN)})
    assert message in str(info.value)


@pytest.mark.parametrize("params", [
    {"lr": {"ref": "ops.up", "value": "outputs.loss"}},
    {"lr": {"ref": "ops.up", "value": "outputs.steps"}},  # an int fits a float
    {"lr": 0.1, "config": {"ref": "ops.up", "value": "outputs"},
     "anything": {"ref": "ops.up", "value": "inputs"},
     "label": {"ref": "ops.up", "value": "outputs.steps"}},
    {"lr": 0.1, "label": {"ref": "ops.up", "value": "globals.uuid"},
     "config": {"ref": "dag", "value": "inputs"}},
])
def test_refs_that_fit_are_accepted(params) -> None:
    sp = spec(op("up", job="prep"), op("train", dependencies=["up"], params=params))
    check_params(sp, {"up": job(outputs=UP_OUT, name="prep"), "train": job(TRAIN)})


# -- every Polyaxon status is a kind ---------------------------------------------------------


@pytest.mark.parametrize("kind", DOCUMENTED_KINDS)
def test_every_documented_run_status_kind_is_accepted(kind: str) -> None:
    assert validate_kind(kind) == kind
    assert EventTrigger(ref="jobs.train", kinds=[kind]).kinds == (kind,)
    sp = spec(op("a"), op("b", events=[{"ref": "ops.a", "kinds": [kind]}]))
    assert sp.op("b").events[0].kinds == (kind,)


def test_every_v1_status_is_a_kind() -> None:
    assert {f"run_status_{s}" for s in V1_STATUSES} <= RUN_STATUS_KINDS
    assert {s for s in V1_STATUSES if s != "done"} <= {s.value for s in Status}
