"""`taskq triggers explain` and `taskq triggers test` against what a real evaluator did:
every change to a trigger is a revision, each firing names the one that fired it, and each
event is judged by the revision of its time. Real Redis, a real database, a real evaluator
worker; `triggers test` writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import taskq
from taskq import constants
from taskq.store.models import Firing, JoinArm, Run, RunEvent, TriggerRevision
from tests.conftest import env_for, run_cli, wait_for
from tests.integration.test_entity_triggers import drained

pytestmark = pytest.mark.integration

V1 = """
triggers:
  - name: sized
    event: {ref: events.work, kinds: [custom_event]}
    job: train
    params: {seconds: '{{ fields.n }}', epochs: 1}
"""
V2 = V1.replace("'{{ fields.n }}', epochs: 1", "'{{ fields.n * 2 }}', epochs: 2")


def apply(settings: Any, tmp_path: Path, text: str) -> str:
    path = tmp_path / "triggers.yaml"
    path.write_text(text)
    done = run_cli("apply", "-f", str(path), env=env_for(settings))
    assert done.returncode == 0, done.stderr
    return done.stdout


def publish(r: Any, name: str, **fields: Any) -> str:
    event_id = taskq.publish_event(name, payload=fields)
    wait_for(lambda: drained(r), 30, message=f"{name} evaluated")
    return event_id


def by_event(decisions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["event"]["id"]: d for d in decisions}


def test_explain_judges_each_event_by_the_revision_of_its_time(stack, settings, r,
                                                             tmp_path) -> None:
    stack.evaluator()
    early = publish(r, "work", n=0.01)  # before the trigger existed
    assert "sized: added" in apply(settings, tmp_path, V1)
    first = publish(r, "work", n=0.01)
    other = publish(r, "other", n=0.01)
    assert "sized: updated (version 2)" in apply(settings, tmp_path, V2)
    second = publish(r, "work", n=0.02)
    bad = publish(r, "work", n="x")  # "xx" is no float: a params error
    taskq.Client().disable_trigger("sized")
    off = publish(r, "work", n=0.03)

    client = taskq.Client()
    revisions = [(f["version"], f["outcome"]) for f in reversed(client.firings("sized"))]
    assert revisions == [(1, "fired"), (2, "fired"), (2, "error")]
    got = by_event(client.explain("sized", since="1h"))
    assert got[early]["outcome"] == "not_yet"
    assert (got[first]["outcome"], got[first]["version"]) == ("fired", 1)
    run1 = taskq.get_run(got[first]["run"]["uuid"])
    assert run1.params["epochs"] == 1 and got[first]["run"]["queue"] == "train"
    assert (got[second]["outcome"], got[second]["version"]) == ("fired", 2)
    assert taskq.get_run(got[second]["run"]["uuid"]).params == {
        "learning_rate": 0.01, "epochs": 2, "seconds": 0.04, "fail": False, "hold": ""}
    assert (got[other]["outcome"], got[other]["part"]) == ("not_matched", "ref")
    assert got[bad]["outcome"] == "error" and "params.seconds" in got[bad]["reason"]
    assert (got[off]["outcome"], got[off]["version"]) == ("disabled", 3)
    queued = [d for d in got.values() if d["event"]["kind"] == "run_status_queued"]
    assert queued and {(d["outcome"], d["part"]) for d in queued} == {("not_matched", "kind")}

    env = env_for(settings)
    one = run_cli("triggers", "explain", "sized", "--event", first, "--json", env=env)
    assert one.returncode == 0, one.stderr
    [shown] = json.loads(one.stdout)
    assert shown["outcome"] == "fired" and shown["run"] == got[first]["run"]
    table = run_cli("triggers", "explain", "sized", "--since", "1h",
                    env={**env, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert "not_yet" in table.stdout and "disabled" in table.stdout
    assert "not_matched (kind)" in table.stdout

    # The CLI hands out a page at a time; the older page is one `--before` away.
    page = run_cli("triggers", "explain", "sized", "--since", "1h", "--limit", "2",
                   "--json", env=env)
    assert page.returncode == 0, page.stderr
    newest = [d["event"]["id"] for d in json.loads(page.stdout)]
    cursor = page.stderr.split("--before ")[1].split()[0]
    older = run_cli("triggers", "explain", "sized", "--since", "1h", "--limit", "2",
                    "--before", cursor, "--json", env=env)
    assert older.returncode == 0, older.stderr
    before_them = [d["event"]["id"] for d in json.loads(older.stdout)]
    order = list(by_event(client.explain("sized", since="1h")))
    assert order.index(newest[0]) - 2 == order.index(before_them[0]) and len(newest) == 2
    walked, before = [], None
    while True:
        step = client.explain_page("sized", since="1h", limit=3, before=before)
        walked[:0] = step["decisions"]
        if (before := step["next"]) is None:
            break
    assert walked == client.explain("sized", since="1h", limit=100)
    with pytest.raises(taskq.ValidationError, match="limit: must be a whole number from 1 "
                                                     "to 10000"):
        client.explain_page("sized", limit=10_001)
    with pytest.raises(taskq.ValidationError, match="to 100000"):
        client.explain("sized", limit=100_001)

    history = client.trigger_history("sized")
    assert [(h["version"], h["action"], h["by"]) for h in history] == [
        (1, "created", "yaml"), (2, "updated", "yaml"), (3, "disabled", "python")]


def test_quarantine_and_deletion_are_revisions_explain_reads(stack, settings, r) -> None:
    stack.evaluator()
    taskq.add_event_trigger(name="broken", job="train", events=["work"],
                            params={"seconds": "{{ fields.n // 0 }}"})
    failed = [publish(r, "work", n=1) for _ in range(5)]
    wait_for(lambda: taskq.Client().get_trigger("broken")["quarantined"], 20,
             message="broken quarantined")
    after = publish(r, "work", n=1)
    got = by_event(taskq.Client().explain("broken", since="1h"))
    assert [got[e]["outcome"] for e in failed] == ["error"] * 5
    assert "ZeroDivisionError" in got[failed[0]]["reason"]
    assert got[after]["outcome"] == "quarantined"
    assert "5 evaluations in a row failed" in got[after]["reason"]
    history = taskq.Client().trigger_history("broken")
    assert [(h["action"], h["by"]) for h in history] == [("created", "python"),
                                                          ("quarantined", "evaluator")]
    taskq.Client().delete_trigger("broken")
    gone = publish(r, "work", n=1)
    got = by_event(taskq.Client().explain("broken", since="1h"))
    assert got[gone]["outcome"] == "deleted" and got[after]["outcome"] == "quarantined"


def counts(settings: Any, r: Any) -> tuple[int, ...]:
    store = taskq.Client().rt.store
    with store.read() as conn:
        rows = tuple(int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                     for t in (Run, Firing, RunEvent, TriggerRevision, JoinArm))
    return (*rows, int(r.xlen(constants.EVENTS_STREAM)))


def test_triggers_test_dry_runs_the_current_revision_or_a_draft(stack, settings, r,
                                                               tmp_path) -> None:
    stack.evaluator()
    apply(settings, tmp_path, V1)
    stored = publish(r, "work", n=0.25)
    env = env_for(settings)
    before = counts(settings, r)

    hand = run_cli("triggers", "test", "sized", "--event",
                   '{"name": "work", "fields": {"n": 0.5}}', "--json", env=env)
    assert hand.returncode == 0, hand.stderr
    decided = json.loads(hand.stdout)
    assert decided["outcome"] == "would_fire" and decided["version"] == 1
    assert decided["params"]["seconds"] == 0.5 and decided["run"]["queue"] == "train"

    draft = tmp_path / "draft.yaml"
    draft.write_text(V2)
    drafted = run_cli("triggers", "test", "sized", "--event", stored, "-f", str(draft),
                      env=env)
    assert drafted.returncode == 0, drafted.stderr
    assert "decision  would_fire" in drafted.stdout
    assert '"seconds": 0.5' in drafted.stdout and '"epochs": 2' in drafted.stdout
    assert "already decided this event (fired)" in " ".join(drafted.stdout.split())

    failed = {"kind": "run_status_failed", "payload": {},
              "ref": "runs.00000000-0000-4000-8000-000000000000"}
    kind = run_cli("triggers", "test", "sized", "--event", json.dumps(failed), "--json",
                   env=env)
    assert kind.returncode == 0, kind.stderr
    assert (json.loads(kind.stdout)["outcome"], json.loads(kind.stdout)["part"]) == (
        "not_matched", "kind")
    assert counts(settings, r) == before  # nothing written, nothing published
    assert taskq.Client().get_trigger("sized")["version"] == 1
