"""`taskq run -f pipeline.yaml`, as the docs show it, against real workers."""

from __future__ import annotations

import json

import pytest
import yaml

import taskq
from tests.conftest import env_for, run_cli, wait_for

pytestmark = pytest.mark.acceptance


def test_run_the_seed_pipeline_file(stack, settings) -> None:
    stack.standard()
    out = run_cli("run", "-f", "config/examples/pipeline.yaml", env=env_for(settings,
                                                                            COLUMNS="200"))
    assert out.returncode == 0, out.stderr
    assert "pipeline" in out.stdout and "started" in out.stdout
    pipeline_uuid = out.stdout.split()[1]
    pipeline = taskq.get_run(pipeline_uuid)
    assert pipeline is not None and pipeline.status == taskq.Status.SUCCEEDED
    rows = [[c.strip() for c in line.split("│") if c.strip()]
            for line in out.stdout.splitlines() if "│" in line]
    assert ["experiment", "train", "succeeded", "train"] in rows
    assert ["tensorboard", "tensorboard", "succeeded", "viz"] in rows
    shown = run_cli("runs", "show", pipeline_uuid, env=env_for(settings))
    ops = {o["op"]: o for o in json.loads(shown.stdout)["operations"]}
    assert ops["tensorboard"]["status"] == "succeeded" and ops["experiment"]["job"] == "train"


#: Polyaxon-shaped, as its docs write it: operations with description and tags,
#: conditions over the operation's own params (``contextOnly`` too), a whole section passed
#: as one mapping, events on ``run_status_running`` and on ``run_status_resuming`` (a kind
#: taskq accepts; nothing here resumes, so that operation is skipped with the reason), and
#: a hook whose conditions read the main run's context-only param.
POLYAXON_SHAPED = """
version: 1.1
kind: component
name: polyaxon-shaped
tags: [nightly]
run:
  kind: dag
  operations:
    - name: experiment
      hubRef: train
      description: train a model
      tags: [training]
      conditions: '{{ epochs == 2 and learning-rate < 0.1 }}'
      params:
        learning-rate: {value: 0.05, contextOnly: true}
        learning_rate: {value: 0.05}
        epochs: {value: 2}
        seconds: {value: 0.4}
    - name: tensorboard
      hubRef: tensorboard
      params:
        uuid: {ref: ops.experiment, value: globals.uuid}
      events:
        - ref: ops.experiment
          kinds: [run_status_running]
    - name: evaluation
      hubRef: evaluate
      description: check the model
      dependencies: [experiment]
      conditions: '{{ image == "some-value" }}'
      params:
        uuid: {ref: ops.experiment, value: globals.uuid}
        image: {value: some-value, contextOnly: true}
        upstream: {ref: ops.experiment, value: outputs, contextOnly: true}
        upstream_inputs: {value: '{{ ops.experiment.inputs }}', contextOnly: true}
      hooks:
        - hubRef: evaluate
          trigger: succeeded
          conditions: '{{ image == "some-value" }}'
          params: {uuid: '{{ globals.uuid }}'}
    - name: not-this-image
      hubRef: evaluate
      dependencies: [experiment]
      conditions: '{{ image == "some-value" }}'
      params:
        image: {value: other-value, contextOnly: true}
    - name: on-resume
      hubRef: noop
      events:
        - ref: ops.experiment
          kinds: [run_status_resuming]
"""


def test_a_polyaxon_shaped_pipeline_runs_as_its_docs_write_it(stack, settings,
                                                               tmp_path) -> None:
    stack.standard()
    path = tmp_path / "polyaxonfile.yaml"
    path.write_text(POLYAXON_SHAPED)
    out = run_cli("run", "-f", str(path), env=env_for(settings, COLUMNS="200"))
    assert out.returncode == 0, out.stderr + out.stdout
    pipeline_uuid = out.stdout.split()[1]
    pipeline = taskq.get_run(pipeline_uuid)
    assert pipeline is not None and pipeline.status == taskq.Status.SUCCEEDED, pipeline
    ops = {r.op_name: r for r in taskq.list_runs(limit=100)
           if r.pipeline_uuid == pipeline_uuid}
    S = taskq.Status
    assert {n: r.status for n, r in ops.items()} == {
        "experiment": S.SUCCEEDED, "tensorboard": S.SUCCEEDED, "evaluation": S.SUCCEEDED,
        "not-this-image": S.SKIPPED, "on-resume": S.SKIPPED}
    experiment, evaluation = ops["experiment"], ops["evaluation"]
    # contextOnly params are the run's context, never function arguments.
    assert "learning-rate" not in experiment.params and experiment.params["epochs"] == 2
    assert set(evaluation.params) == {"uuid"} and evaluation.params["uuid"] == experiment.uuid
    seen = evaluation.outputs["context"]  # what the job read from current.context
    assert seen["image"] == "some-value"
    assert seen["upstream"] == experiment.outputs and "loss" in seen["upstream"]
    assert seen["upstream_inputs"]["learning_rate"] == 0.05
    assert evaluation.trigger is None  # a context is not a trigger
    assert "evaluated to false" in (ops["not-this-image"].reason or "")
    assert ops["on-resume"].reason == (
        "ops.experiment ended succeeded without emitting run_status_resuming")
    # description and tags are stored and shown.
    assert experiment.tags == ["nightly", "training"] and ops["tensorboard"].tags == ["nightly"]
    shown = json.loads(run_cli("runs", "show", pipeline_uuid, env=env_for(settings)).stdout)
    listed = {o["op"]: o for o in shown["operations"]}
    assert listed["experiment"]["description"] == "train a model"
    assert listed["experiment"]["tags"] == ["nightly", "training"]
    assert listed["tensorboard"]["description"] is None
    one = json.loads(run_cli("runs", "show", evaluation.uuid, env=env_for(settings)).stdout)
    assert one["description"] == "check the model"
    # The hook's conditions read the main run's context-only param.
    hook = wait_for(lambda: next((r for r in taskq.list_runs(job="evaluate", limit=100)
                                  if r.trigger_name and r.done), None), 60,
                    message="the evaluation's hook run")
    assert hook.params["uuid"] == evaluation.uuid and hook.status == S.SUCCEEDED


def test_a_polyaxonfile_is_refused_at_load_naming_the_field(settings, tmp_path) -> None:
    """A ref whose type cannot fit its input is refused before anything is stored."""
    bad = yaml.safe_load(POLYAXON_SHAPED)
    bad["run"]["operations"][0]["params"]["learning_rate"] = {"ref": "ops.tensorboard",
                                                              "value": "globals.uuid"}
    bad["run"]["operations"][0].pop("conditions")
    bad["run"]["operations"][1].pop("events")
    bad["run"]["operations"][1]["params"] = {}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    before = len(taskq.list_runs(limit=500))
    out = run_cli("run", "-f", str(path), env=env_for(settings))
    assert out.returncode == 1
    assert out.stderr.startswith(
        "error: operations.experiment.params.learning_rate: ops.tensorboard.globals.uuid is "
        "a str, but job 'train' takes 'learning_rate' as a float"), out.stderr
    assert len(taskq.list_runs(limit=500)) == before
