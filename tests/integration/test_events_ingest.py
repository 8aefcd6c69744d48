"""What an attacker of ``taskq events serve`` tried, each as a test against the real server.

Replays of a signed webhook, one credential publishing into every namespace, JSON nested
until the server failed, connections held open without a word, and a lower-case ``bearer``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis

import taskq
from tests.conftest import env_for, run_cli, wait_for
from tests.integration.events_http import (
    SECRET,
    TOKEN,
    bearer,
    events_server,
    free_port,
    signed,
    stored,
    taskq_signed,
)

pytestmark = pytest.mark.integration

TEAM_A_TOKEN = "team-a-" + "a" * 30
OPS_TOKEN = "ops-" + "o" * 30
GIT_A_SECRET = "git-a-" + "g" * 30
SECRETS = (TOKEN, SECRET, TEAM_A_TOKEN, OPS_TOKEN, GIT_A_SECRET)

SCOPED = {
    "TASKQ_EVENTS_TOKENS": json.dumps({
        "team-a-ci": {"token_env": "TEAM_A_TOKEN", "namespaces": ["team-a"]},
        "ops": {"token_env": "OPS_TOKEN", "namespaces": ["*"]}}),
    "TEAM_A_TOKEN": TEAM_A_TOKEN,
    "OPS_TOKEN": OPS_TOKEN,
    "TASKQ_EVENTS_WEBHOOKS": json.dumps({
        "git-team-a": {"secret_env": "GIT_A_SECRET", "namespace": "team-a"}}),
    "GIT_A_SECRET": GIT_A_SECRET,
    "TASKQ_EVENTS_HEADER_TIMEOUT": "1",
    "TASKQ_EVENTS_BODY_TIMEOUT": "1",
}


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "serve.log"


@pytest.fixture
def server(settings: Any, log_path: Path) -> Iterator[str]:
    with events_server(settings, log_path, **SCOPED) as url:
        yield url


def post(url: str, **kwargs: Any) -> httpx.Response:
    resp = httpx.post(url, timeout=30, **kwargs)
    assert resp.status_code < 500, resp.text
    return resp


def test_a_signed_webhook_replayed_is_one_event(server: str, r: redis.Redis) -> None:
    body = json.dumps({"ref": "refs/heads/main", "after": "f00"}).encode()
    headers = taskq_signed(body, "delivery-1")
    answers = [post(f"{server}/events/push", content=body, headers=headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [202] * 5, answers[-1].text
    assert [a.json().get("duplicate") for a in answers] == [False, True, True, True, True]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(stored("push")) == 1
    # Remembered in Redis for as long as the signature is accepted (the 300 s window).
    keys = r.keys("taskq:ingest:*")
    assert len(keys) == 1 and 0 < r.ttl(keys[0]) <= 301

    # The delivery id is signed: a fresh one on a replayed signature is refused.
    forged = post(f"{server}/events/push", content=body,
                  headers={**headers, "X-Taskq-Delivery": "delivery-2"})
    assert forged.status_code == 401 and "signature does not match" in forged.json()["error"]
    # So is the timestamp: a well-signed request older (or newer) than the window.
    for skew in (-400, 400):
        stale = taskq_signed(body, f"delivery-skew{skew}", timestamp=int(time.time()) + skew)
        resp = post(f"{server}/events/push", content=body, headers=stale)
        assert resp.status_code == 401, resp.text
        assert "X-Taskq-Timestamp" in resp.json()["error"] and "300" in resp.json()["error"]
    # The old taskq signature (the body alone, replayable forever) names what is missing.
    old = {**signed(body)}
    old["X-Taskq-Signature"] = old.pop("X-Hub-Signature-256")
    resp = post(f"{server}/events/push", content=body, headers=old)
    assert resp.status_code == 401 and "X-Taskq-Timestamp" in resp.json()["error"]
    assert len(stored("push")) == 1

    # A Git host signs the body alone, so its delivery header is not trusted: the signed
    # body is the delivery, and five "fresh" delivery ids are one event.
    gh_body = json.dumps({"action": "opened", "number": 7}).encode()
    answers = [post(f"{server}/events/pull", content=gh_body,
                    headers={**signed(gh_body), "X-GitHub-Delivery": f"gh-{i}"})
               for i in range(5)]
    assert [a.status_code for a in answers] == [202] * 5
    assert [a.json().get("duplicate") for a in answers] == [False, True, True, True, True]
    assert len(stored("pull")) == 1

    # taskq's scheme on /events too; the body's id stays the caller's idempotency key.
    publish = json.dumps({"name": "signed-publish", "id": "job-7"}).encode()
    first = post(f"{server}/events", content=publish, headers=taskq_signed(publish, "p-1"))
    again = post(f"{server}/events", content=publish, headers=taskq_signed(publish, "p-1"))
    retry = post(f"{server}/events", content=publish, headers=taskq_signed(publish, "p-2"))
    assert [x.status_code for x in (first, again, retry)] == [202, 202, 202]
    assert [x.json()["duplicate"] for x in (first, again, retry)] == [False, True, True]
    assert len(stored("signed-publish")) == 1


def test_each_credential_publishes_only_where_it_may(server: str) -> None:
    def publish(headers: dict[str, str], namespace: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"name": "scoped"}
        if namespace:
            body["namespace"] = namespace
        return post(f"{server}/events", headers=headers, json=body)

    team_a = bearer(TEAM_A_TOKEN)
    assert publish(team_a, "team-a").status_code == 202
    for other in ("team-b", "default"):
        refused = publish(team_a, other)
        assert refused.status_code == 403, refused.text
        assert f"namespace {other!r}" in refused.json()["error"]
    omitted = publish(team_a)
    assert omitted.status_code == 202 and omitted.json()["namespace"] == "team-a"
    # The one shared token publishes into the default namespace only.
    assert publish(bearer(), "team-b").status_code == 403
    assert publish(bearer()).json()["namespace"] == "default"
    assert publish(bearer(OPS_TOKEN), "team-b").status_code == 202
    assert len(stored("scoped", "team-b")) == 1 and len(stored("scoped", "team-a")) == 2
    assert stored("scoped", "team-a")[0]["payload"]["source"] == "http:team-a-ci"

    # A webhook's namespace is its credential's; the query string cannot move it.
    body = json.dumps({"after": "abc"}).encode()
    attempts = [
        ("?namespace=team-b", taskq_signed(body, "a-1", GIT_A_SECRET)),
        ("?namespace=team-b", taskq_signed(body, "a-2")),
        ("?namespace=team-b", {**team_a, "Content-Type": "application/json"}),
        ("?namespace=team-b", {**signed(body, GIT_A_SECRET), "X-GitHub-Delivery": "a-3"}),
    ]
    for query, headers in attempts:
        resp = post(f"{server}/events/push{query}", content=body, headers=headers)
        assert resp.status_code == 403, (headers, resp.text)
        assert "namespace 'team-b'" in resp.json()["error"]
    ok = post(f"{server}/events/push", content=body,
              headers=taskq_signed(body, "a-4", GIT_A_SECRET))
    assert ok.status_code == 202 and ok.json()["namespace"] == "team-a"
    same = post(f"{server}/events/push?namespace=team-a", content=body,
                headers=taskq_signed(body, "a-5", GIT_A_SECRET))
    assert same.status_code == 202 and same.json()["namespace"] == "team-a"
    assert stored("push", "team-b") == [] and len(stored("push", "team-a")) == 2


def test_deep_or_odd_json_is_a_400_naming_the_limit(server: str) -> None:
    def nested(depth: int) -> bytes:
        # {"name": ..., "fields": {"a": [[...]]}}: ``depth`` levels in all.
        inner = b"[" * (depth - 2) + b"1" + b"]" * (depth - 2)
        return b'{"name": "deep", "fields": {"a": ' + inner + b"}}"

    headers = {**bearer(), "Content-Type": "application/json"}
    for depth in (30_000, 300, 33):
        resp = post(f"{server}/events", content=nested(depth), headers=headers)
        assert resp.status_code == 400, (depth, resp.text)
        assert "deeper than 32" in resp.json()["error"]
        assert "TASKQ_EVENTS_MAX_JSON_DEPTH" in resp.json()["error"]
    hook = b'{"a": ' + b"[" * 299 + b"]" * 299 + b"}"
    resp = post(f"{server}/events/deep", content=hook, headers=taskq_signed(hook, "deep-1"))
    assert resp.status_code == 400 and "deeper than 32" in resp.json()["error"]
    assert post(f"{server}/events", content=nested(32), headers=headers).status_code == 202
    assert len(stored("deep")) == 1

    # Valid JSON the store or the stream cannot keep (a lone surrogate, an infinity) is
    # refused as input, never stored to be dropped later; a NUL character is accepted and
    # kept, in the stored row as its visible escape (every column stores it so).
    for text in ('"\\ud800"', '{"\\udfff": 1}', "1e999"):
        resp = post(f"{server}/events", headers=headers,
                    content=f'{{"name": "odd", "fields": {{"s": {text}}}}}'.encode())
        assert resp.status_code == 400 and resp.json()["error"].startswith("fields"), text
    nul = post(f"{server}/events", headers=headers,
               content=b'{"name": "odd", "fields": {"s": "a\\u0000b"}}')
    assert nul.status_code == 202 and stored("odd")[0]["payload"]["fields"] == {"s": "a\\x00b"}
    big = b'{"name": "x", "fields": {"blob": "' + b"z" * 100_000 + b'"}}'
    resp = post(f"{server}/events", content=big, headers=headers)
    assert resp.status_code == 413 and "69632 bytes" in resp.json()["error"]


def test_the_python_api_refuses_what_the_store_cannot_keep(settings: Any) -> None:
    value: Any = 1
    for _ in range(300):
        value = [value]
    for fields in ({"a": value}, {"s": "\ud800"}, {"s": ["\udc00"]}):
        with pytest.raises(taskq.ValidationError, match=r"^fields"):
            taskq.publish_event("odd", fields)


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_half_open_and_slow_clients_are_dropped(server: str) -> None:
    parts = urlsplit(server)
    partial = [
        b"",  # connected, never a byte
        b"POST /events HTTP/1.1\r\nHost: x\r\n",  # headers never end
        (b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         b"Content-Length: 100\r\n" + b"Authorization: Bearer " + TOKEN.encode() +
         b"\r\n\r\n" + b'{"na'),  # the body never ends
    ]
    socks = []
    for sent in partial:
        sock = socket.create_connection((parts.hostname or "", parts.port or 0), timeout=5)
        sock.sendall(sent)
        sock.settimeout(0.2)
        socks.append(sock)
    try:
        for sock, sent in zip(socks, partial, strict=True):
            wait_for(lambda s=sock: _closed(s), 60, message=f"the server to drop {sent[:30]!r}")
    finally:
        for sock in socks:
            sock.close()
    assert post(f"{server}/events", headers=bearer(), json={"name": "after"}).status_code == 202


def test_the_auth_scheme_is_case_insensitive(server: str) -> None:
    for scheme, token in (("bearer", TOKEN), ("BEARER", TOKEN), ("bEaReR", TEAM_A_TOKEN)):
        resp = post(f"{server}/events", json={"name": "cased"},
                    headers={"Authorization": f"{scheme} {token}"})
        assert resp.status_code == 202, (scheme, resp.text)
    resp = post(f"{server}/events", json={"name": "cased"},
                headers={"Authorization": f"Basic {TOKEN}"})
    assert resp.status_code == 401
    assert len(stored("cased")) == 3


def test_every_route_authenticates_and_no_secret_leaks(server: str, log_path: Path) -> None:
    answers: list[httpx.Response] = []
    for method, path in (("GET", "/healthz"), ("GET", "/openapi.json"), ("POST", "/events"),
                         ("POST", "/events/push"), ("GET", "/nope"), ("PUT", "/events")):
        resp = httpx.request(method, f"{server}{path}", timeout=30)
        assert resp.status_code == 401, (method, path, resp.text)
        answers.append(resp)
    body = b'{"k": 1}'
    for headers in (bearer("x" + TOKEN), bearer(TEAM_A_TOKEN), bearer(OPS_TOKEN),
                    signed(body, "wrong"), taskq_signed(body, "leak-1", GIT_A_SECRET),
                    taskq_signed(body, "leak-2", SECRET + "x")):
        for path in ("/events/leak?namespace=team-b", "/events/leak", "/openapi.json"):
            answers.append(httpx.post(f"{server}{path}", content=body, timeout=30,
                                      headers={**headers, "Content-Type": "application/json"}))
    assert {a.status_code for a in answers} <= {202, 401, 403, 405}
    assert len(stored("leak")) == 3
    said = "\n".join([log_path.read_text(), json.dumps(stored("leak")),
                      *(a.text for a in answers), *(str(a.headers) for a in answers)])
    for secret in SECRETS:
        assert secret not in said


def test_serve_refuses_credentials_it_cannot_use(settings: Any) -> None:
    port = str(free_port())
    cases = [
        ({"TASKQ_EVENTS_TOKENS": json.dumps({"ci": {"token_env": "NOPE_TOKEN",
                                                    "namespaces": ["team-a"]}})},
         "NOPE_TOKEN"),
        ({"TASKQ_EVENTS_TOKENS": json.dumps({"ci": {"token_env": "TEAM_A_TOKEN",
                                                    "namespaces": ["nowhere"]}}),
          "TEAM_A_TOKEN": TEAM_A_TOKEN}, "'nowhere'"),
        ({"TASKQ_EVENTS_WEBHOOKS": json.dumps({"git": {"secret_env": "GIT_A_SECRET",
                                                       "namespace": "team-a"}}),
          "TASKQ_EVENTS_HMAC_SECRET": GIT_A_SECRET, "GIT_A_SECRET": GIT_A_SECRET},
         "same secret"),
    ]
    for env, reason in cases:
        out = run_cli("events", "serve", "--port", port, env=env_for(settings, **env))
        assert out.returncode == 1 and reason in out.stderr, out.stderr
        assert all(s not in out.stderr + out.stdout for s in SECRETS)
