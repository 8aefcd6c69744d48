"""Jobs written the way Celery users write them — no ``inputs=`` — used from a pipeline, a
hook and a trigger on real workers, with every param coerced by the function's signature.

The test process never imports the jobs' module: it (like any client, and like the
evaluator) checks params against the JSON the workers stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import taskq
from taskq import ValidationError
from taskq.core.statuses import Status
from tests.conftest import ROOT, env_for, run_cli, wait_for

pytestmark = pytest.mark.acceptance

JOBS = '''
from __future__ import annotations

import enum
from typing import Literal, TypedDict

from pydantic import BaseModel

import taskq
from taskq import current


class Schedule(BaseModel):
    warmup: int = 0
    decay: float = 0.5


class Precision(enum.Enum):
    fp16 = "fp16"
    fp32 = "fp32"


@taskq.job(queue="train")
def experiment(learning_rate: float = 0.01, epochs: int = 1,
               mode: Literal["fast", "slow"] = "fast", schedule: Schedule = Schedule()) -> None:
    current.set_output("seen", {
        "learning_rate": [learning_rate, type(learning_rate).__name__],
        "epochs": [epochs, type(epochs).__name__], "mode": mode,
        "schedule": [type(schedule).__name__, schedule.warmup, schedule.decay]})


@taskq.job(queue="viz")
def report(uuid: str, epochs: int = 0, precision: Precision = Precision.fp32) -> None:
    current.set_output("seen", {"uuid": uuid, "epochs": [epochs, type(epochs).__name__],
                                "precision": [type(precision).__name__, precision.value]})


class Scores(TypedDict):
    loss: float


@taskq.job(queue="train", trigger_on=[{"name": "data-ready", "parameters": ["epochs"]}])
def retrain(epochs: int = 1, verbose: bool = False) -> Scores:
    current.set_output("seen", {"epochs": [epochs, type(epochs).__name__],
                                "verbose": [verbose, type(verbose).__name__]})
    return {"loss": 0.25}  # the typed return declares the output and records it
'''


def finished(run_uuid: str, timeout: float = 60) -> taskq.RunRecord:
    return wait_for(lambda: (x := taskq.get_run(run_uuid)) and x.done and x, timeout,
                    message=f"run {run_uuid} to finish")


def only(job: str, **params: Any) -> taskq.RunRecord:
    def find() -> taskq.RunRecord | None:
        return next((r for r in taskq.list_runs(job=job, limit=100)
                     if all(r.params.get(k) == v for k, v in params.items())), None)
    return wait_for(find, 60, message=f"a run of {job} with {params}")


def test_signature_only_jobs_from_a_pipeline_a_hook_and_a_trigger(stack, settings,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "sig_jobs.py").write_text(JOBS)
    env = {"TASKQ_IMPORTS": "sig_jobs", "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    stack.evaluator(wait=False, **env)
    stack.worker("train", ["train"], wait=False, **env)
    stack.worker("viz", ["viz"], wait=False, **env)
    for p in stack.procs:
        p.wait_ready(90)
    store = taskq.Client().rt.store
    for job in ("experiment", "report", "retrain"):
        wait_for(lambda j=job: store.find_job_template(j, "default"), 30,
                 message=f"the workers to store {job}")
    assert store.find_job_template("experiment", "default").inputs["epochs"] == {
        "type": "int", "default": 1}

    # A hook: "7" and "fp16" are coerced by report's signature; the function gets an enum.
    taskq.add_hook(job="experiment", hook={
        "hubRef": "report", "trigger": "succeeded",
        "params": {"uuid": "{{ globals.uuid }}", "epochs": "7", "precision": "fp16"}})
    with pytest.raises(ValidationError, match=r"params\.precision: Input should be 'fp16' "
                                              r"or 'fp32'"):
        taskq.add_hook(job="experiment", hook={"hubRef": "report", "trigger": "failed",
                                               "params": {"uuid": "u", "precision": "int8"}})

    # A pipeline passing `epochs` (refused before: "job 'experiment' has no input 'epochs'").
    pipeline = taskq.run_pipeline({
        "version": 1.1, "kind": "component", "name": "sig", "run": {"kind": "dag",
        "operations": [{"name": "exp", "hubRef": "experiment", "params": {
            "epochs": {"value": "3"}, "learning_rate": {"value": "0.5"},
            "mode": {"value": "slow"}, "schedule": {"value": {"warmup": "2"}}}}]}})
    done = finished(pipeline.uuid)
    assert done.status == Status.SUCCEEDED, done.reason
    exp = only("experiment", epochs=3)
    assert exp.params == {"learning_rate": 0.5, "epochs": 3, "mode": "slow",
                          "schedule": {"warmup": 2, "decay": 0.5}}
    assert finished(exp.uuid).outputs["seen"] == {
        "learning_rate": [0.5, "float"], "epochs": [3, "int"], "mode": "slow",
        "schedule": ["Schedule", 2, 0.5]}
    hooked = finished(only("report", uuid=exp.uuid).uuid)
    assert hooked.status == Status.SUCCEEDED, hooked.reason
    assert hooked.outputs["seen"] == {"uuid": exp.uuid, "epochs": [7, "int"],
                                      "precision": ["Precision", "fp16"]}

    # A trigger declared with the job: the event's field "5" becomes the int 5.
    taskq.publish_event("data-ready", {"epochs": "5"})
    retrained = finished(only("retrain", epochs=5).uuid)
    assert retrained.status == Status.SUCCEEDED, retrained.reason
    assert retrained.outputs["seen"] == {"epochs": [5, "int"], "verbose": [False, "bool"]}
    assert retrained.outputs["loss"] == 0.25
    assert store.find_job_template("retrain", "default").outputs == {"loss": {"type": "float"}}

    # submit and the CLI check the same way, before anything is queued.
    with pytest.raises(ValidationError, match=r"^job 'experiment' params\.epochs: expected "
                                              r"int, got 'many'$"):
        taskq.submit("experiment", params={"epochs": "many"})
    cli_env = env_for(settings, COLUMNS="200")
    refused = run_cli("submit", "experiment", "-p", "mode=warp", env=cli_env)
    assert refused.returncode == 1
    assert "params.mode: Input should be 'fast' or 'slow'" in refused.stderr
    out = run_cli("submit", "experiment", "-p", "epochs=2", "-p", "learning_rate=1",
                  env=cli_env)
    assert out.returncode == 0, out.stderr
    by_cli = finished(out.stdout.split()[1])
    assert by_cli.status == Status.SUCCEEDED, by_cli.reason
    assert by_cli.outputs["seen"]["learning_rate"] == [1.0, "float"]
    assert by_cli.outputs["seen"]["epochs"] == [2, "int"]
