"""The explain family and bulk publishing over HTTP, as a CI system or a console calls
them: `GET /triggers/<name>/explain|history`, `POST /triggers/<name>/test`,
`POST /events/replay`, and `POST /events` with `{"events": [...]}`. Every route
authenticates and a credential reaches only its namespaces. A real `taskq events serve`
process, real Redis and database; replay fires through the real evaluator path."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

import taskq
from tests.integration.events_http import bearer
from tests.integration.test_events_ingest import TEAM_A_TOKEN, log_path, server

pytestmark = pytest.mark.integration
__all__ = ["log_path", "server"]  # the fixtures, shared with the ingest tests


def call(method: str, url: str, token: str | None = None, **kw: Any) -> httpx.Response:
    headers = bearer(token) if token else bearer()
    resp = httpx.request(method, url, headers=headers, timeout=30, **kw)
    assert resp.status_code < 500, resp.text
    return resp


def test_explain_test_history_and_replay_over_http(server: str) -> None:
    # Events first, the trigger after them: nothing fired, a replay fires each once.
    batch = {"events": [{"name": "deploy", "fields": {"v": i}, "id": f"d-{i}"}
                        for i in range(3)]}
    published = call("POST", f"{server}/events", json=batch)
    assert published.status_code == 202, published.text
    ids = [e["id"] for e in published.json()["events"]]
    again = call("POST", f"{server}/events", json=batch).json()["events"]
    assert [e["id"] for e in again] == ids and all(e["duplicate"] for e in again)
    bad = call("POST", f"{server}/events", json={"events": [{"name": "ok"}, {"name": "b d"}]})
    assert bad.status_code == 400 and bad.json()["error"].startswith("events[1].name:")
    taskq.add_trigger(name="late", job="noop", event={"ref": "events.deploy",
                                                      "kinds": ["custom_event"]})

    shown = call("GET", f"{server}/triggers/late/explain?since=1h")
    assert shown.status_code == 200, shown.text
    decisions = {d["event"]["id"]: d for d in shown.json()["decisions"]}
    assert {decisions[i]["outcome"] for i in ids} == {"not_yet"}, decisions[ids[0]]
    assert shown.json()["next"] is None
    # A page at a time, newest first: each page's `next` is the older page's `before`.
    pages, before = [], ""
    while before is not None:
        page = call("GET", f"{server}/triggers/late/explain?since=1h&limit=2{before}").json()
        pages.append([d["event"]["id"] for d in page["decisions"]])
        before = None if page["next"] is None else f"&before={page['next']}"
    assert [i for p in reversed(pages) for i in p] == list(decisions) and len(pages) >= 2
    assert call("GET", f"{server}/triggers/late/explain?before=x").json()["error"].startswith(
        "before:")

    tried = call("POST", f"{server}/triggers/late/test", json={"event": ids[0]})
    assert tried.status_code == 200 and tried.json()["outcome"] == "would_fire", tried.text
    assert taskq.Client().firings("late") == []  # a dry run writes nothing

    dry = call("POST", f"{server}/events/replay", json={"since": "1h", "dry_run": True})
    assert dry.json()["dry_run"] and len(dry.json()["new"]) == 3
    done = call("POST", f"{server}/events/replay", json={"since": "1h", "trigger": "late"})
    assert done.status_code == 200 and done.json()["fired"] == 3, done.text
    assert sorted(f["event_id"] for f in taskq.Client().firings("late")) == sorted(ids)
    twice = call("POST", f"{server}/events/replay", json={"since": "1h"}).json()
    assert (twice["fired"], twice["already"]) == (0, 3)

    history = call("GET", f"{server}/triggers/late/history").json()["revisions"]
    assert [r["action"] for r in history] == ["created"]

    # Another tenant's credential reaches its own namespace only.
    other = call("GET", f"{server}/triggers/late/explain?namespace=default", TEAM_A_TOKEN)
    assert other.status_code == 403 and "team-a" in other.json()["error"]
    other = call("POST", f"{server}/events/replay", TEAM_A_TOKEN,
                 json={"since": "1h", "namespace": "default"})
    assert other.status_code == 403
    assert httpx.get(f"{server}/triggers/late/explain", timeout=30).status_code == 401
    assert call("POST", f"{server}/events/replay", json={"since": "1h",
                                                         "oops": 1}).status_code == 400


DRAFT = {"triggers": [{"name": "gate", "event": {"ref": "events.work",
                                                 "kinds": ["custom_event"]},
                       "job": "train", "params": {"seconds": "{{ 10 // fields.n }}"}}]}


def test_what_if_and_one_runs_events_over_http(server: str) -> None:
    client = taskq.Client()
    client.add_trigger(name="gate", job="train", params={"seconds": "{{ fields.n }}"},
                       event={"ref": "events.work", "kinds": ["custom_event"]})
    batch = {"events": [{"name": "work", "fields": {"n": n}} for n in (0, 1, 2)]}
    ids = [e["id"] for e in call("POST", f"{server}/events", json=batch).json()["events"]]
    runs_before = len(client.list_runs(limit=100))

    asked = call("POST", f"{server}/triggers/gate/what-if",
                 json={"draft": DRAFT, "since": "1h"})
    assert asked.status_code == 200, asked.text
    d = asked.json()
    assert (d["trigger"], d["namespace"], d["events"], d["current"], d["draft"]) == (
        "gate", "default", 3, 3, 2)
    by_event = {row["event_id"]: row for row in d["differ"]}
    assert set(by_event) == set(ids)
    assert (by_event[ids[0]]["current"], by_event[ids[0]]["draft"]) == ("fired", "error")
    assert by_event[ids[1]]["params"]["seconds"] == 10.0
    assert len(client.list_runs(limit=100)) == runs_before and client.firings("gate") == []

    refused = [
        ({"draft": DRAFT}, 400, "since: required"),
        ({"draft": {"jobs": []}, "since": "1h"}, 400, "draft: the draft needs a"),
        ({"draft": DRAFT, "since": "1h", "oops": 1}, 400, "oops: unknown field"),
        ({"draft": {"triggers": [{**DRAFT["triggers"][0], "namespace": "team-a"}]},
          "since": "1h"}, 400, "draft.triggers[0].namespace: 'team-a' is not"),
        ({"draft": {"triggers": [{**DRAFT["triggers"][0], "job": "nosuch"}]},
          "since": "1h"}, 400, "triggers[0]:"),
    ]
    for body, status, error in refused:
        answer = call("POST", f"{server}/triggers/gate/what-if", json=body)
        assert (answer.status_code, answer.json()["error"][:len(error)]) == (
            status, error), answer.text
    missing = call("POST", f"{server}/triggers/other/what-if",
                   json={"draft": DRAFT, "since": "1h"})
    assert missing.status_code == 400 and "no trigger or hook named 'other'" in missing.text
    other = call("POST", f"{server}/triggers/gate/what-if", TEAM_A_TOKEN,
                 json={"draft": DRAFT, "since": "1h", "namespace": "default"})
    assert other.status_code == 403
    assert httpx.post(f"{server}/triggers/gate/what-if", json={"draft": DRAFT, "since": "1h"},
                      timeout=30).status_code == 401

    # ?run=: the status events of one run (no evaluator here: a match is still pending)
    taskq.add_trigger(name="on-noop", job="noop",
                      event={"ref": "jobs.noop", "kinds": ["run_status_queued"]})
    run = taskq.submit("noop")
    shown = call("GET", f"{server}/triggers/on-noop/explain?run={run.uuid}")
    assert shown.status_code == 200, shown.text
    decisions = shown.json()["decisions"]
    assert {d["event"]["ref"] for d in decisions} == {f"runs.{run.uuid}"}
    queued = [d for d in decisions if d["event"]["kind"] == "run_status_queued"]
    assert queued and queued[0]["outcome"] == "pending"
    bad = call("GET", f"{server}/triggers/on-noop/explain?run=nope")
    assert bad.status_code == 400 and bad.json()["error"].startswith("run: 'nope'")
    both = call("GET", f"{server}/triggers/on-noop/explain?run={run.uuid}&since=1h")
    assert both.status_code == 400 and both.json()["error"].startswith("run:")
    gone = call("GET", f"{server}/triggers/on-noop/explain?run={uuid.uuid4()}")
    assert gone.status_code == 404 and "no stored events of run" in gone.json()["error"]
    spec = call("GET", f"{server}/openapi.json").json()
    assert "/triggers/{name}/what-if" in spec["paths"]
    assert "run" in {p["name"] for p in spec["paths"]["/triggers/{name}/explain"]["get"][
        "parameters"]}
