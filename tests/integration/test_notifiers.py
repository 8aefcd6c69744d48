"""Connections and the built-in notifier jobs against a real local HTTP server."""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import taskq
from taskq.core.statuses import Status
from taskq.settings import configure
from taskq.worker.builtin_jobs import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.conftest import wait_for
from workers import examples

pytestmark = pytest.mark.integration
SECRET = "hmac-secret-never-logged"
TOKEN = "T000/B000/never-in-logs"


class Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    fail_first: int = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Recorder.fail_first > 0:
            Recorder.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        Recorder.received.append({"path": self.path, "headers": dict(self.headers),
                                  "body": body})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server():
    Recorder.received = []
    Recorder.fail_first = 1  # the first POST gets a 503: the notifier must retry
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_failed_run_notifies_slack_and_signed_webhook(stack, settings, http_server) -> None:
    connections = {"slack-connection": {"kind": "slack", "url_env": "TEST_SLACK_URL"},
                   "hooks-endpoint": {"kind": "webhook", "url_env": "TEST_HOOK_URL",
                                      "secret_env": "TEST_HOOK_SECRET"}}
    configure(settings, connections=connections)
    env = {"TASKQ_CONNECTIONS": json.dumps(connections),
           "TEST_SLACK_URL": f"{http_server}/services/{TOKEN}",
           "TEST_HOOK_URL": f"{http_server}/hooks", "TEST_HOOK_SECRET": SECRET}
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], wait=False)
    services = stack.worker("services", ["services"], wait=False, **env)
    for p in stack.procs:
        p.wait_ready(90)
    # The seed's example: trigger: failed, connection: slack-connection, hubRef: slack.
    taskq.add_hook(job="train", hook={"trigger": "failed", "connection": "slack-connection",
                                      "hubRef": "slack"})
    taskq.add_hook(job="train", hook={"trigger": "done", "connection": "hooks-endpoint",
                                      "hubRef": "webhook"})
    broken = taskq.submit(examples.train, params={"fail": True})
    wait_for(lambda: len(Recorder.received) >= 2, 30, message="two notifications")
    by_path = {r["path"].split("/")[1]: r for r in Recorder.received}

    slack = json.loads(by_path["services"]["body"])
    assert broken.uuid in slack["text"] and "failed" in slack["text"]
    assert slack["blocks"][0]["type"] == "section"

    hook = by_path["hooks"]
    payload = json.loads(hook["body"])
    assert payload["run"]["uuid"] == broken.uuid and payload["run"]["status"] == "failed"
    expected = sign(SECRET, hook["headers"][TIMESTAMP_HEADER], hook["body"])
    assert hook["headers"][SIGNATURE_HEADER] == expected

    notifier_runs = [r for r in taskq.list_runs(limit=50) if r.job in ("slack", "webhook")]
    wait_for(lambda: all(taskq.get_run(r.uuid).status == Status.SUCCEEDED
                         for r in notifier_runs), 20)
    assert {r.queue for r in notifier_runs} == {"services"}
    # Secrets stay out of params, lineage, events and logs.
    store = taskq.Client().rt.store
    for r in notifier_runs:
        stored = (json.dumps(dataclasses.asdict(store.get_run(r.uuid)))  # type: ignore[arg-type]
                  + json.dumps(store.run_events(r.uuid)))
        assert SECRET not in stored and TOKEN not in stored
    assert SECRET not in services.output() and TOKEN not in services.output()


def test_missing_connection_at_run_time_is_recorded(stack, settings) -> None:
    """Configured where the hook is registered, but not on the worker: the notifier run
    fails with a reason that names the connection, not a secret."""
    connections = {"hooks-endpoint": {"kind": "webhook", "url_env": "TEST_HOOK_URL_UNSET"}}
    configure(settings, connections=connections)
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], wait=False)
    stack.worker("services", ["services"], wait=False,
                 TASKQ_CONNECTIONS=json.dumps(connections))
    for p in stack.procs:
        p.wait_ready(90)
    taskq.add_hook(job="train", hook={"connection": "hooks-endpoint", "hubRef": "webhook"})
    taskq.submit(examples.train, params={"seconds": 0.05, "epochs": 1})
    run = wait_for(lambda: next((r for r in taskq.list_runs(job="webhook") if r.done), None),
                   30)
    assert run.status == Status.FAILED
    assert "TEST_HOOK_URL_UNSET" in (run.reason or "")


def test_seed_examples_from_yaml(stack, settings, http_server) -> None:
    """The seed's two examples as written in config/examples/hooks.yaml, applied with the
    CLI: a failed training notifies Slack; a good one is evaluated."""
    from tests.conftest import ROOT, env_for, run_cli

    Recorder.fail_first = 0
    connections = {"slack-connection": {"kind": "slack", "url_env": "TEST_SLACK_URL"}}
    configure(settings, connections=connections)
    env = {"TASKQ_CONNECTIONS": json.dumps(connections),
           "TEST_SLACK_URL": f"{http_server}/services/{TOKEN}"}
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], wait=False)
    stack.worker("viz", ["viz"], wait=False)
    stack.worker("services", ["services"], wait=False, **env)
    for p in stack.procs:
        p.wait_ready(90)
    applied = run_cli("apply", "-f", str(ROOT / "config/examples/hooks.yaml"),
                      env=env_for(settings, **env))
    assert applied.returncode == 0, applied.stderr
    broken = taskq.submit(examples.train, params={"fail": True})
    good = taskq.submit(examples.train, params={"learning_rate": 0.05, "epochs": 3,
                                                "seconds": 0.1})
    wait_for(lambda: Recorder.received, 30, message="the Slack notification")
    assert broken.uuid in json.loads(Recorder.received[0]["body"])["text"]
    evaluation = wait_for(lambda: next((r for r in taskq.list_runs(job="evaluate")
                                        if r.params.get("uuid") == good.uuid), None), 30)
    assert wait_for(lambda: taskq.get_run(evaluation.uuid).done, 20)
    assert [r for r in taskq.list_runs(job="evaluate") if r.params.get("uuid") == broken.uuid
            ] == []
