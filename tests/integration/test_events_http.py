"""`taskq events serve`: outside systems publish events over authenticated HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import taskq
from tests.conftest import env_for, wait_for
from tests.integration.events_http import bearer, events_server, free_port, signed, stored

pytestmark = pytest.mark.integration


@pytest.fixture
def server(settings: Any, tmp_path: Path) -> Iterator[str]:
    with events_server(settings, tmp_path / "serve.log") as url:
        yield url


def test_good_and_bad_requests(server: str) -> None:
    ok = httpx.post(f"{server}/events", headers=bearer(),
                    json={"name": "first", "fields": {"x": 1}})
    assert ok.status_code == 202, ok.text
    assert ok.json()["name"] == "first" and stored("first")[0]["payload"]["fields"] == {"x": 1}

    # A Git host's webhook: the body is the fields, the delivery id makes a redelivery one
    # event, and the signature is an HMAC of the body.
    body = json.dumps({"ref": "refs/heads/main", "after": "abc123"}).encode()
    headers = {**signed(body), "X-GitHub-Delivery": "d-42"}
    for _ in range(2):
        hook = httpx.post(f"{server}/events/git-commit", content=body, headers=headers)
        assert hook.status_code == 202, hook.text
    commits = stored("git-commit")
    assert len(commits) == 1 and commits[0]["payload"]["fields"]["after"] == "abc123"

    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"json": {"name": "x"}}, 401, "authentication required"),
        ({"json": {"name": "x"}, "headers": bearer("wrong")}, 401, "invalid bearer token"),
        ({"content": b'{"name": "x"}', "headers": signed(b'{"name": "y"}')}, 401,
         "signature does not match"),
        ({"content": b"{nope", "headers": {**bearer(), "Content-Type": "application/json"}},
         400, "body: not valid JSON"),
        ({"json": [1, 2], "headers": bearer()}, 400, "body: must be a JSON object"),
        ({"json": {"fields": {}}, "headers": bearer()}, 400, "name: None is not an event"),
        ({"json": {"name": "a b"}, "headers": bearer()}, 400, "name: 'a b' is not an event"),
        ({"json": {"name": "x", "fields": {"bad key": 1}}, "headers": bearer()}, 400,
         "fields.bad key: not a field name"),
        ({"json": {"name": "x", "extra": 1}, "headers": bearer()}, 400,
         "extra: unknown field"),
        ({"json": {"name": "x", "namespace": "nowhere"}, "headers": bearer()}, 400,
         "namespace: 'nowhere' is not configured"),
        ({"content": b"name=x", "headers": {**bearer(), "Content-Type": "text/plain"}}, 415,
         "Content-Type: must be application/json"),
        ({"json": {"name": "x", "fields": {"blob": "z" * 100_000}}, "headers": bearer()},
         413, "body:"),
    ]
    for kwargs, status, reason in cases:
        resp = httpx.post(f"{server}/events", **kwargs)
        assert resp.status_code == status, (kwargs, resp.text)
        assert reason in resp.json()["error"], (kwargs, resp.text)
    assert stored("x") == []

    assert httpx.get(f"{server}/openapi.json").status_code == 401
    spec = httpx.get(f"{server}/openapi.json", headers=bearer()).json()
    assert spec["openapi"].startswith("3.") and "/events" in spec["paths"]
    missing = httpx.get(f"{server}/nope", headers=bearer())
    assert missing.status_code == 404 and "no route" in missing.json()["error"]


def test_http_events_start_a_job(stack: Any, settings: Any, server: str,
                                 chaining_jobs: None) -> None:
    """End to end: two POSTs complete dataflow's AND join; x comes from the payload."""
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], wait=False, TASKQ_IMPORTS="workers.examples,workers.chaining")
    for p in stack.procs:
        p.wait_ready(90)
    for name, fields in (("first", {"x": 11}), ("second", {})):
        resp = httpx.post(f"{server}/events", headers=bearer(),
                          json={"name": name, "fields": fields})
        assert resp.status_code == 202, resp.text
    run = wait_for(lambda: next(iter(taskq.list_runs(job="dataflow")), None), 30)
    run = wait_for(lambda: (x := taskq.get_run(run.uuid)) and x.done and x, 30)
    assert run.params["x"] == 11 and run.trigger is not None
    assert run.trigger.type == "MANY-EVENTS"


def test_serve_refuses_to_start_without_credentials(settings: Any) -> None:
    from tests.conftest import run_cli

    out = run_cli("events", "serve", "--port", str(free_port()), env=env_for(settings))
    assert out.returncode == 1
    assert out.stderr.startswith("error: events serve needs TASKQ_EVENTS_TOKEN")
