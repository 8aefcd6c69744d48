"""Connections: a git host's real push webhook, verified by its own scheme, fires a trigger
once; the run reads the push in ``current.trigger.event``. The seed scenario "train on a new
git commit" from YAML (``taskq apply -f``) and from Python; a pipeline operation waiting on
a commit."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import taskq
from taskq.core.statuses import Status
from tests.conftest import ROOT, env_for, run_cli, wait_for
from tests.integration.events_http import events_server

pytestmark = pytest.mark.integration

GITHUB_SECRET, GITLAB_SECRET = "gh-" + "a" * 30, "gl-" + "b" * 30
CONNECTIONS = json.dumps({
    "git-repo": {"kind": "git", "provider": "github", "secret_env": "GIT_REPO_SECRET"},
    "gitlab-repo": {"kind": "git", "provider": "gitlab", "secret_env": "GITLAB_SECRET",
                    "namespace": "default"}})
SHA = "4c8d5b2f9e1a7c3d6b0e8f2a4c6d8e0f1a3b5c7d"
GL_SHA = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"


def github_push() -> bytes:
    """A push as GitHub sends it (trimmed of the URLs taskq does not read)."""
    head = {"id": SHA, "tree_id": "9a1b" * 10, "distinct": True,
            "message": "Tune the learning rate", "timestamp": "2025-01-20T10:00:00Z",
            "url": f"https://github.com/acme/trainer/commit/{SHA}",
            "author": {"name": "Ada Lovelace", "email": "ada@example.com",
                       "username": "ada"},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
            "added": [], "removed": [], "modified": ["train.py"]}
    older = {**head, "id": "1" * 40, "message": "An older commit in the same push"}
    return json.dumps({
        "ref": "refs/heads/main", "before": "0f" * 20, "after": SHA, "created": False,
        "deleted": False, "forced": False, "base_ref": None,
        "compare": "https://github.com/acme/trainer/compare/0f0f...4c8d",
        "commits": [older, head], "head_commit": head,
        "repository": {"id": 1, "name": "trainer", "full_name": "acme/trainer",
                       "private": True, "html_url": "https://github.com/acme/trainer",
                       "default_branch": "main"},
        "pusher": {"name": "ada", "email": "ada@example.com"},
        "sender": {"login": "ada", "id": 7}}).encode()


def gitlab_push() -> bytes:
    commit = {"id": GL_SHA, "message": "Add the evaluation split\n",
              "title": "Add the evaluation split", "timestamp": "2025-01-20T11:00:00+00:00",
              "url": f"https://gitlab.example.com/ml/trainer/-/commit/{GL_SHA}",
              "author": {"name": "Grace Hopper", "email": "grace@example.com"},
              "added": ["split.py"], "modified": [], "removed": []}
    return json.dumps({
        "object_kind": "push", "event_name": "push", "before": "95790bf8" + "0" * 32,
        "after": GL_SHA, "ref": "refs/heads/dev", "checkout_sha": GL_SHA,
        "user_id": 4, "user_name": "Grace Hopper", "user_username": "grace",
        "user_email": "grace@example.com", "project_id": 15,
        "project": {"id": 15, "name": "trainer", "path_with_namespace": "ml/trainer",
                    "web_url": "https://gitlab.example.com/ml/trainer",
                    "default_branch": "main"},
        "commits": [commit], "total_commits_count": 1,
        "repository": {"name": "trainer",
                       "homepage": "https://gitlab.example.com/ml/trainer"}}).encode()


def github_headers(body: bytes, secret: str = GITHUB_SECRET,
                   delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958") -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": f"sha256={mac}",
            "User-Agent": "GitHub-Hookshot/abc"}


@pytest.fixture
def server(settings: Any, tmp_path: Path) -> Iterator[str]:
    with events_server(settings, tmp_path / "serve.log", TASKQ_CONNECTIONS=CONNECTIONS,
                       GIT_REPO_SECRET=GITHUB_SECRET, GITLAB_SECRET=GITLAB_SECRET) as url:
        yield url


def runs_of(trigger: str) -> list[taskq.RunRecord]:
    return taskq.list_runs(trigger=trigger, limit=50)


def finished(run_uuid: str) -> taskq.RunRecord:
    return wait_for(lambda: (x := taskq.get_run(run_uuid)) and x.done and x, 60,
                    message=f"run {run_uuid}")


def test_git_pushes_fire_once_and_runs_read_the_push(stack: Any, settings: Any,
                                                     server: str, tmp_path: Path) -> None:
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    # From Python: the seed's trigger, in Polyaxon's spelling of the ref.
    taskq.add_trigger(name="train-on-commit", job="train_on_commit",
                      event=taskq.EventTrigger(ref="{{ connections.git-repo }}",
                                               kinds=["connection_git_commit"]))
    # From YAML, as `taskq apply -f` reads it, on the GitLab connection.
    example = (ROOT / "config" / "examples" / "git-commit.yaml").read_text()
    gitlab_file = tmp_path / "gitlab.yaml"
    gitlab_file.write_text(example.replace("train-on-git-commit", "train-on-gitlab")
                           .replace("connections.git-repo", "connections.gitlab-repo"))
    applied = run_cli("apply", "-f", str(gitlab_file), env=env_for(settings))
    assert applied.returncode == 0, applied.stderr
    assert "trigger train-on-gitlab: added" in applied.stdout

    url = f"{server}/connections/git-repo/webhook"
    body = github_push()
    bad = httpx.post(url, content=body, headers=github_headers(body, secret="wrong" * 8))
    assert bad.status_code == 401, bad.text
    assert bad.json()["error"] == ("X-Hub-Signature-256: does not match connection "
                                   "'git-repo''s secret")
    assert GITHUB_SECRET not in bad.text
    forged = httpx.post(url, content=body.replace(b"Ada", b"Eve"),
                        headers=github_headers(body))
    assert forged.status_code == 401
    first = httpx.post(url, content=body, headers=github_headers(body))
    assert first.status_code == 202, first.text
    again = httpx.post(url, content=body, headers=github_headers(body))
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert again.json()["events"] == first.json()["events"] and len(first.json()["events"]) == 1
    # The namespace is the connection's; the query string cannot choose another.
    other = httpx.post(f"{url}?namespace=team-a", content=body, headers=github_headers(body))
    assert other.status_code == 403, other.text

    gl_body = gitlab_push()
    gl_headers = {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
                  "X-Gitlab-Token": GITLAB_SECRET,
                  "X-Gitlab-Event-UUID": "6a4e6f3e-2b4f-4c8d-9a3f-1d2c3b4a5f60"}
    gl_url = f"{server}/connections/gitlab-repo/webhook"
    assert httpx.post(gl_url, content=gl_body, headers={
        **gl_headers, "X-Gitlab-Token": "nope"}).status_code == 401
    for _ in range(2):
        resp = httpx.post(gl_url, content=gl_body, headers=gl_headers)
        assert resp.status_code == 202, resp.text

    gh_run = finished(wait_for(lambda: runs_of("train-on-commit"), 30)[0].uuid)
    gl_run = finished(wait_for(lambda: runs_of("train-on-gitlab"), 30)[0].uuid)
    assert gh_run.status == Status.SUCCEEDED and gl_run.status == Status.SUCCEEDED
    seen = gh_run.outputs["seen"]
    assert seen["kind"] == "connection_git_commit"
    assert {k: seen[k] for k in ("connection", "provider", "repo", "branch", "commit",
                                 "author", "message")} == {
        "connection": "git-repo", "provider": "github", "repo": "acme/trainer",
        "branch": "main", "commit": SHA, "author": "Ada Lovelace",
        "message": "Tune the learning rate"}
    assert seen["commit_param"] == SHA  # mapped from the payload onto the declared input
    gl_seen = gl_run.outputs["seen"]
    assert (gl_seen["repo"], gl_seen["branch"], gl_seen["commit"], gl_seen["author"]) == (
        "ml/trainer", "dev", GL_SHA, "Grace Hopper")
    assert gl_seen["commit_param"] == GL_SHA  # from the YAML's template param
    # One firing each: the re-sent deliveries made no second event.
    stack.evaluator("evaluator-2")  # whatever was pending has been seen twice over now
    assert len(runs_of("train-on-commit")) == 1 and len(runs_of("train-on-gitlab")) == 1
    log = (tmp_path / "serve.log").read_text()
    assert GITHUB_SECRET not in log and GITLAB_SECRET not in log


def test_a_pipeline_operation_waits_for_a_commit(stack: Any, settings: Any,
                                                 server: str, tmp_path: Path) -> None:
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], concurrency=2, wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    release = tmp_path / "release"
    spec = {"version": 1.1, "kind": "component", "name": "build", "run": {
        "kind": "dag", "operations": [
            {"name": "prep", "hubRef": "train",
             "params": {"seconds": {"value": 0.05}, "hold": {"value": str(release)}}},
            {"name": "build", "hubRef": "train_on_commit",
             "events": [{"ref": "{{ connections.git-repo }}",
                         "kinds": ["connection_git_commit"]}]}]}}
    waiting = taskq.run_pipeline(spec)
    body = github_push()
    wait_for(lambda: taskq.get_run(waiting.uuid).status == Status.RUNNING, 30)
    resp = httpx.post(f"{server}/connections/git-repo/webhook", content=body,
                      headers=github_headers(body, delivery="pipeline-delivery-1"))
    assert resp.status_code == 202, resp.text
    ops = wait_for(lambda: (o := {r.op_name: r for r in taskq.list_runs(limit=50)
                                  if r.pipeline_uuid == waiting.uuid})
                   and o["build"].done and o, 60, message="build")
    assert ops["build"].status == Status.SUCCEEDED
    assert ops["build"].outputs["seen"]["commit"] == SHA
    release.write_text("go")
    assert finished(waiting.uuid).status == Status.SUCCEEDED

    # No commit before the rest is done: the waiting operation is skipped, with the reason.
    (tmp_path / "release2").write_text("go")
    spec["run"]["operations"][0]["params"]["hold"] = {"value": str(tmp_path / "release2")}
    alone = finished(taskq.run_pipeline(spec).uuid)
    build = next(r for r in taskq.list_runs(limit=50)
                 if r.pipeline_uuid == alone.uuid and r.op_name == "build")
    assert build.status == Status.SKIPPED
    assert build.reason == ("connections.git-repo sent no connection_git_commit before the "
                            "rest of the pipeline was done")
