"""`taskq triggers explain` for an AND join and for one run, against what a real evaluator
did: a join waiting names the inputs armed (by which events), those missing and when the
reset window drops each; a half the window dropped is "expired"; a cron window names its next
reset; `--run` explains the status events of one run. Real Redis, a real database, real
evaluator and job workers."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta

import pytest

import taskq
from taskq.errors import NotFound, ValidationError
from tests.conftest import env_for, run_cli, wait_for
from tests.integration.test_entity_triggers import drained, entity, runs_of, settle, start
from tests.integration.test_explain import by_event, publish

pytestmark = pytest.mark.integration
__all__ = ["entity"]  # the fixture, shared with the entity trigger tests


def test_a_join_waiting_names_its_inputs_and_the_window_drops_a_stale_half(stack, settings,
                                                                          r) -> None:
    stack.evaluator()
    taskq.add_event_trigger(name="pair", job="noop", events=["ping", "pong"], reset=2)
    ping = publish(r, "ping")
    client = taskq.Client()
    waiting = by_event(client.explain("pair", since="1h"))[ping]
    assert (waiting["outcome"], waiting["armed"], waiting["missing"]) == (
        "waiting", ["ping"], ["pong"])
    [arm] = waiting["arms"]
    at = datetime.fromisoformat(waiting["event"]["at"])
    assert arm["event_id"] == ping and datetime.fromisoformat(arm["at"]) == at
    assert datetime.fromisoformat(arm["drops_at"]) == at + timedelta(seconds=2)
    assert f"ping by event {ping}" in waiting["reason"]
    assert "the reset window (2s) drops ping at" in waiting["reason"]

    time.sleep(3)  # ping is outside the window now: pong arrives alone
    pong = publish(r, "pong")
    got = by_event(client.explain("pair", since="1h"))
    assert got[ping]["outcome"] == "expired", got[ping]
    assert "the reset window (2s) dropped it at" in got[ping]["reason"]
    assert (got[pong]["outcome"], got[pong]["armed"], got[pong]["missing"]) == (
        "waiting", ["pong"], ["ping"])
    assert [a["event_id"] for a in got[pong]["arms"]] == [pong]

    again = publish(r, "ping")  # completes the join with pong
    got = by_event(client.explain("pair", since="1h"))
    assert got[again]["outcome"] == "fired" and got[pong]["outcome"] == "fired"
    assert got[again]["run"] == got[pong]["run"] and got[again]["run"]["queue"]
    assert got[ping]["outcome"] == "expired"

    shown = run_cli("triggers", "explain", "pair", "--event", ping, env={
        **env_for(settings), "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "expired" in shown.stdout and "1 event(s): 1 expired" in shown.stdout


def test_a_cron_window_names_its_next_reset(stack, settings, r) -> None:
    stack.evaluator()
    taskq.add_event_trigger(name="hourly-pair", job="noop", events=["left", "right"],
                            reset="0 * * * *")
    left = publish(r, "left")
    shown = run_cli("triggers", "explain", "hourly-pair", "--event", left, "--json",
                    env=env_for(settings))
    assert shown.returncode == 0, shown.stderr
    [d] = json.loads(shown.stdout)
    at = datetime.fromisoformat(d["event"]["at"])
    top = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert (d["outcome"], d["missing"]) == ("waiting", ["right"])
    assert datetime.fromisoformat(d["next_reset"]) == top
    assert datetime.fromisoformat(d["arms"][0]["drops_at"]) == top
    assert f"the window (cron '0 * * * *') resets next at {top.isoformat()}" in d["reason"]


def test_explain_run_judges_each_status_event_of_one_run(stack, settings, r) -> None:
    stack.evaluator()
    stack.worker("train", ["train"])
    taskq.add_trigger(name="after-train", job="noop",
                      event={"ref": "jobs.train", "kinds": ["run_status_succeeded"]})
    run = taskq.submit("train", params={"seconds": 0.01, "epochs": 1})
    wait_for(lambda: taskq.get_run(run.uuid).done, 60, message="train finished")
    other = taskq.submit("train", params={"seconds": 0.01, "epochs": 1})
    wait_for(lambda: taskq.get_run(other.uuid).done and drained(r), 60,
             message="the second train finished and evaluated")

    decisions = taskq.Client().explain("after-train", run=run.uuid)
    kinds = [d["event"]["kind"] for d in decisions]
    assert kinds[-1] == "run_status_succeeded" and {"run_status_queued",
                                                    "run_status_running"} <= set(kinds)
    assert {d["event"]["ref"] for d in decisions} == {f"runs.{run.uuid}"}
    assert all((d["outcome"], d["part"]) == ("not_matched", "kind") for d in decisions[:-1])
    fired = decisions[-1]
    assert fired["outcome"] == "fired" and fired["run"]["uuid"] != run.uuid
    assert taskq.get_run(fired["run"]["uuid"]).job == "noop"

    env = {**env_for(settings), "COLUMNS": "200"}
    table = run_cli("triggers", "explain", "after-train", "--run", run.uuid, env=env)
    assert table.returncode == 0, table.stderr
    assert f"{len(decisions)} event(s)" in table.stdout and "1 fired" in table.stdout
    both = run_cli("triggers", "explain", "after-train", "--run", run.uuid, "--since", "1h",
                   env=env)
    assert both.returncode != 0 and "exclude each other" in both.stderr
    with pytest.raises(ValidationError, match="run: 'nope' is not a run uuid"):
        taskq.Client().explain("after-train", run="nope")
    with pytest.raises(NotFound, match="run: no stored events of run"):
        taskq.Client().explain("after-train", run=str(uuid.uuid4()))


def test_a_single_instance_skip_names_the_run_that_held_it(entity, stack, r) -> None:
    start(stack, viz=(["viz"], {}))
    model = taskq.models.register("bert", project="nlp")
    taskq.TriggerScheduler().add_model_trigger(
        schedule_task_id="entity_consumer", single_instance=True, trigger_on_tags=["slow"],
        name="one-at-a-time", task_parameters={"Args/seconds": 3, "Args/uuid": "${model.id}"})
    taskq.models.add_tags(model.id, ["slow"])
    busy = wait_for(lambda: next(iter(runs_of("one-at-a-time")), None), 20)
    taskq.models.remove_tags(model.id, ["slow"])
    taskq.models.add_tags(model.id, ["slow"])  # while busy still runs: skipped
    settle(r)

    got = taskq.Client().explain("one-at-a-time", since="1h")
    fired = [d for d in got if d["outcome"] == "fired"]
    skipped = [d for d in got if d["outcome"] == "skipped"]
    assert [d["run"]["uuid"] for d in fired] == [busy.uuid]
    assert len(skipped) == 1 and skipped[0]["run"] is None
    assert f"single_instance: the previous run {busy.uuid} is still" in skipped[0]["reason"]
    [firing] = [f for f in taskq.Client().firings("one-at-a-time")
                if f["outcome"] == "skipped"]
    assert skipped[0]["firing_id"] == firing["id"]
    assert skipped[0]["event"]["at"] > fired[0]["event"]["at"]
