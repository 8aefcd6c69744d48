"""`taskq events serve`: outside systems publish events over authenticated HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import taskq
from tests.conftest import ROOT, env_for, wait_for

pytestmark = pytest.mark.integration

TOKEN = "t0ken-" + "x" * 30
SECRET = "s3cret-" + "y" * 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings: Any, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    exe = shutil.which("taskq") or str(Path(sys.executable).parent / "taskq")
    env = env_for(settings, TASKQ_EVENTS_TOKEN=TOKEN, TASKQ_EVENTS_HMAC_SECRET=SECRET)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([exe, "events", "serve", "--port", str(port)], env=env,
                            cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", headers=bearer(), timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, message="the events endpoint")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def stored(name: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from taskq.store.models import RunEvent

    store = taskq.Client().rt.store
    with store.read() as conn:
        rows = conn.execute(select(RunEvent.body).where(RunEvent.kind == "custom_event"))
        return [b for (b,) in rows if b["payload"]["name"] == name]


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
