"""Chaining from the command line: publish events, and run a job here as if triggered."""

from __future__ import annotations

import json

import pytest

from tests.conftest import env_for, run_cli, wait_for

pytestmark = pytest.mark.acceptance


@pytest.fixture
def cli_env(settings, chaining_jobs):
    return env_for(settings, TASKQ_IMPORTS="workers.examples,workers.chaining")


def shown(uuid: str, env: dict[str, str]) -> dict:
    out = run_cli("runs", "show", uuid, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_run_as_if_triggered_by_runs_and_events(cli_env) -> None:
    """`taskq run` executes here: without --trigger current.trigger is None; with
    `--trigger training/<uuid>` it sees that run and its outputs; events (names or JSON
    with fields) feed params. Local runs fire no triggers."""
    plain = run_cli("run", "training", env=cli_env)
    assert plain.returncode == 0, plain.stderr
    training = plain.stdout.split()[1]
    assert shown(training, cli_env)["tags"] == ["local", "development"]

    bare = run_cli("run", "prediction", env=cli_env)
    assert bare.returncode == 0, bare.stderr
    assert shown(bare.stdout.split()[1], cli_env)["outputs"]["seen"] == {"type": None}

    pred = run_cli("run", "prediction", "--trigger", f"training/{training}", env=cli_env)
    assert pred.returncode == 0, pred.stderr
    seen = shown(pred.stdout.split()[1], cli_env)["outputs"]["seen"]
    assert seen["run"] == training and seen["model"] == {"x": 1} and seen["type"] == "RUN"

    flow = run_cli("run", "dataflow", "--trigger", "first", "--trigger",
                   '{"name": "second", "fields": {"x": 7}}', env=cli_env)
    assert flow.returncode == 0, flow.stderr
    data = shown(flow.stdout.split()[1], cli_env)
    assert data["params"]["x"] == 7 and data["outputs"]["seen"]["type"] == "MANY-EVENTS"
    assert data["trigger_context"]["trigger"] == "local"


def test_current_trigger_run_is_the_upstream_that_finished_last(cli_env) -> None:
    """`python predictionflow.py --trigger TrainingFlow/34 --trigger DataFlow/12 run`:
    Metaflow's `current.trigger.run` is the latest run by finish time, whichever order
    the `--trigger` options come in; `.events` are newest first the same way."""
    ran = [run_cli("run", job, env=cli_env) for job in ("training", "data")]
    assert all(x.returncode == 0 for x in ran), [x.stderr for x in ran]
    training, data = (x.stdout.split()[1] for x in ran)  # data finished last
    for order in ([f"data/{data}", f"training/{training}"],
                  [f"training/{training}", f"data/{data}"]):
        args = [a for t in order for a in ("--trigger", t)]
        out = run_cli("run", "report", *args, env=cli_env)
        assert out.returncode == 0, out.stderr
        seen = shown(out.stdout.split()[1], cli_env)["outputs"]["seen"]
        assert seen["type"] == "MANY-RUNS" and seen["run"] == data, order
        assert [e[0] for e in seen["events"]] == ["data", "training"], order
        assert (seen["training"], seen["data"]) == (training, data)


@pytest.mark.parametrize(("args", "message"), [
    (["prediction", "--trigger", "training/not-a-run"], "error: --trigger: no run"),
    (["dataflow", "--trigger", "{broken"], "error: --trigger: not valid JSON"),
    (["dataflow", "--trigger", '{"name": "x", "fields": [1]}'], "error: --trigger: fields:"),
    (["ghost"], "error: job: unknown job 'ghost'"),
])
def test_bad_local_run_is_one_line_and_a_hint(cli_env, args, message) -> None:
    out = run_cli("run", *args, env=cli_env)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith(message), out.stderr
    assert len(lines) == 2 and lines[1].startswith("hint: ")


def test_events_publish_from_the_cli(cli_env, stack) -> None:
    from taskq.settings import get_settings

    stack.settings = get_settings()
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], wait=False, TASKQ_IMPORTS="workers.examples,workers.chaining")
    for p in stack.procs:
        p.wait_ready(90)
    assert run_cli("events", "publish", "first", "--field", "x=3", env=cli_env).returncode == 0
    out = run_cli("events", "publish", "second", env=cli_env)
    assert out.returncode == 0 and "published second" in out.stdout, out.stderr
    import taskq

    run = wait_for(lambda: next(iter(taskq.list_runs(job="dataflow")), None), 30)
    run = wait_for(lambda: (x := taskq.get_run(run.uuid)) and x.done and x, 30)
    assert run.params["x"] == 3 and run.outputs["seen"]["type"] == "MANY-EVENTS"
    bad = run_cli("events", "publish", "bad name", env=cli_env)
    assert bad.returncode == 1 and bad.stderr.startswith("error: name: 'bad name'")
