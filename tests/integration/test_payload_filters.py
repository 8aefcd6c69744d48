"""Payload filters end to end: a trigger registered from Python and one from YAML (``taskq
apply -f``) fire `observe` only for the published events whose payload matches, each once;
explain says which clause refused the others and the value it saw; a wrong filter is
refused naming the field, from Python and from the CLI. A filter on a git connection's
push events picks the branch. Real Redis, SQLite and PostgreSQL,
real Celery workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import taskq
from tests.conftest import env_for, run_cli, wait_for
from tests.integration.events_http import events_server
from tests.integration.test_connections import (
    CONNECTIONS,
    GITHUB_SECRET,
    GITLAB_SECRET,
    finished,
    github_headers,
    github_push,
    runs_of,
)
from tests.integration.test_exactly_once import drained
from tests.integration.test_run_statuses import seen

pytestmark = pytest.mark.integration

YAML = """
triggers:
  - name: retrain-on-drift
    job: observe
    event:
      ref: events.drift
      kinds: [custom_event]
      payload:
        fields:
          model: [{wildcard: "resnet-*-v2"}]
          severity: [{anything-but: [low, info]}]
"""


def test_a_payload_filter_fires_only_for_matching_payloads(stack: Any, settings: Any,
                                                           r: Any, tmp_path: Path) -> None:
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    taskq.add_trigger(name="deploy-main", job="observe", event=taskq.EventTrigger(
        ref="events.deploy", kinds=["custom_event"], payload={"fields": {
            "branch": ["main", {"prefix": "release/"}],
            "coverage": [{"numeric": [">=", 0.8]}]}}))
    path = tmp_path / "drift.yaml"
    path.write_text(YAML)
    applied = run_cli("apply", "-f", str(path), env=env_for(settings))
    assert applied.returncode == 0, applied.stderr
    assert "trigger retrain-on-drift: added" in applied.stdout
    again = run_cli("apply", "-f", str(path), env=env_for(settings))
    assert "trigger retrain-on-drift: unchanged" in again.stdout, again.stdout

    with pytest.raises(taskq.ValidationError, match=(
            r"^event\.payload\.fields\.coverage\[0\]\.numeric\[1\]: \"high\" is not a finite "
            r"number$")):
        taskq.add_trigger(name="bad", job="observe", event={
            "ref": "events.deploy", "kinds": ["custom_event"],
            "payload": {"fields": {"coverage": [{"numeric": [">=", "high"]}]}}})
    bad = tmp_path / "bad.yaml"
    bad.write_text(YAML.replace("wildcard", "wildcards"))
    refused = run_cli("apply", "-f", str(bad), env=env_for(settings))
    assert refused.returncode != 0
    assert ("triggers[0]: event.payload.fields.model[0]: unknown operator 'wildcards'"
            in refused.stderr + refused.stdout)

    published = {
        "main": taskq.publish_event("deploy", {"branch": "main", "coverage": 0.91}),
        "release": taskq.publish_event("deploy", {"branch": "release/2.1", "coverage": 0.8}),
        "dev": taskq.publish_event("deploy", {"branch": "dev", "coverage": 0.99}),
        "thin": taskq.publish_event("deploy", {"branch": "main", "coverage": 0.5}),
        "drift": taskq.publish_event("drift", {"model": "resnet-50-v2", "severity": "high"}),
        "low": taskq.publish_event("drift", {"model": "resnet-50-v2", "severity": "low"}),
        "bert": taskq.publish_event("drift", {"model": "bert-v2", "severity": "high"}),
    }
    wait_for(lambda: len(seen()) >= 3, 90, message="the matching events' runs")
    wait_for(lambda: drained(r), 30, message="stream drained")
    got = sorted(s["id"] for s in seen())
    assert got == sorted(published[k] for k in ("main", "release", "drift"))

    client = taskq.Client()
    [thin] = client.explain("deploy-main", event_id=published["thin"])
    assert (thin["outcome"], thin["part"]) == ("not_matched", "payload")
    assert thin["reason"] == ("payload filter `payload.fields.coverage` numeric >= 0.8, "
                              "saw 0.5")
    [dev] = client.explain("deploy-main", event_id=published["dev"])
    assert dev["reason"] == ("payload filter `payload.fields.branch` \"main\" or prefix "
                             "\"release/\", saw \"dev\"")
    [low] = client.explain("retrain-on-drift", event_id=published["low"])
    assert low["reason"] == ("payload filter `payload.fields.severity` anything-but \"low\", "
                             "\"info\", saw \"low\"")
    [fired] = client.explain("retrain-on-drift", event_id=published["drift"])
    assert fired["outcome"] == "fired"


CONNECTION_YAML = """
triggers:
  - name: train-on-main
    job: train_on_commit
    event:
      ref: '{{ connections.git-repo }}'
      kinds: [connection_git_commit]
      payload:
        branch: [main]
        author: [{equals-ignore-case: ada lovelace}]
"""


@pytest.fixture
def git_server(settings: Any, tmp_path: Path) -> Iterator[str]:
    with events_server(settings, tmp_path / "serve.log", TASKQ_CONNECTIONS=CONNECTIONS,
                       GIT_REPO_SECRET=GITHUB_SECRET, GITLAB_SECRET=GITLAB_SECRET) as url:
        yield url


def test_a_payload_filter_on_a_connection_event(stack: Any, settings: Any, git_server: str,
                                                r: Any, tmp_path: Path) -> None:
    """A git host's real push webhook: the YAML trigger wants main by Ada, the Python one
    release branches; each push fires exactly the trigger its branch matches."""
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    path = tmp_path / "commits.yaml"
    path.write_text(CONNECTION_YAML)
    applied = run_cli("apply", "-f", str(path), env=env_for(settings))
    assert applied.returncode == 0, applied.stderr
    taskq.add_trigger(name="train-on-release", job="train_on_commit", event={
        "ref": "connections.git-repo", "kinds": ["connection_git_commit"],
        "payload": {"branch": [{"prefix": "release/"}]}})

    url = f"{git_server}/connections/git-repo/webhook"
    main = github_push()
    release = main.replace(b'"refs/heads/main"', b'"refs/heads/release/2.0"')
    for body, delivery in ((main, "d-main"), (release, "d-release")):
        resp = httpx.post(url, content=body, headers=github_headers(body, delivery=delivery))
        assert resp.status_code == 202, resp.text
    on_main = wait_for(lambda: runs_of("train-on-main"), 60, message="train-on-main")
    on_release = wait_for(lambda: runs_of("train-on-release"), 60,
                          message="train-on-release")
    wait_for(lambda: drained(r), 30, message="stream drained")
    assert len(runs_of("train-on-main")) == 1 and len(runs_of("train-on-release")) == 1
    assert finished(on_main[0].uuid).outputs["seen"]["branch"] == "main"
    assert finished(on_release[0].uuid).outputs["seen"]["branch"] == "release/2.0"
