"""The explain family and bulk publishing over HTTP, as a CI system or a console calls
them: `GET /triggers/<name>/explain|history`, `POST /triggers/<name>/test`,
`POST /events/replay`, and `POST /events` with `{"events": [...]}`. Every route
authenticates and a credential reaches only its namespaces. A real `taskq events serve`
process, real Redis and database; replay fires through the real evaluator path."""

from __future__ import annotations

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
