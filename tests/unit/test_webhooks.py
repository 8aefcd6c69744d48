"""Each provider's webhook shape and signature scheme, as events (pure: no server)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from taskq.core import connections as conns
from taskq.core import webhooks
from taskq.settings import Settings

SECRET = b"s" * 32
SHA = "a" * 40


def src(kind: str, provider: str, name: str = "c") -> conns.Source:
    return conns.Source(name=name, kind=kind, provider=provider, secret_env="X",
                        namespace="default")


def mac(body: bytes) -> str:
    return hmac.new(SECRET, body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("provider", "good", "bad", "header"), [
    ("github", lambda b: {"X-Hub-Signature-256": f"sha256={mac(b)}"},
     {"X-Hub-Signature-256": "sha256=00"}, "X-Hub-Signature-256"),
    ("gitea", lambda b: {"X-Gitea-Signature": mac(b)}, {"X-Gitea-Signature": "00"},
     "X-Gitea-Signature"),
    ("bitbucket", lambda b: {"X-Hub-Signature": f"sha256={mac(b)}"},
     {"X-Hub-Signature": "sha256=00"}, "X-Hub-Signature"),
    ("gitlab", lambda b: {"X-Gitlab-Token": SECRET.decode()}, {"X-Gitlab-Token": "x"},
     "X-Gitlab-Token"),
])
def test_each_git_provider_signature(provider, good, bad, header) -> None:
    body = b'{"ref": "refs/heads/main"}'
    conns.verify(src("git", provider), good(body), body, SECRET)
    with pytest.raises(conns.SignatureRefused, match=f"^{header}: does not match") as err:
        conns.verify(src("git", provider), bad, body, SECRET)
    assert SECRET.decode() not in str(err.value)
    with pytest.raises(conns.SignatureRefused, match=f"^{header}: missing"):
        conns.verify(src("git", provider), {}, body, SECRET)


def test_registry_proofs() -> None:
    conns.verify(src("registry", "harbor"), {"Authorization": SECRET.decode()}, b"{}", SECRET)
    conns.verify(src("registry", "dockerhub"), {}, b"{}", SECRET,
                 query_secret=SECRET.decode())
    with pytest.raises(conns.SignatureRefused, match=r"\?secret= query"):
        conns.verify(src("registry", "dockerhub"), {}, b"{}", SECRET)
    # Bitbucket without a configured secret: unsigned webhooks are accepted.
    conns.verify(src("git", "bitbucket"), {}, b"{}", None)


def parse(s: conns.Source, headers: dict[str, str], body: dict) -> webhooks.Delivery:
    return webhooks.parse(s, headers, body, json.dumps(body).encode())


def test_gitea_push_is_one_event_for_the_head() -> None:
    body = {"ref": "refs/heads/main", "after": SHA,
            "commits": [{"id": "b" * 40, "message": "old", "author": {"name": "x"}},
                        {"id": SHA, "message": "new", "author": {"name": "Lin"}}],
            "repository": {"full_name": "org/repo"}}
    got = parse(src("git", "gitea"), {"X-Gitea-Event": "push", "X-Gitea-Delivery": "d1"},
                body)
    assert got.id == "d1" and len(got.payloads) == 1
    assert got.payloads[0] | {} == {"repo": "org/repo", "ref": "refs/heads/main",
                                    "branch": "main", "tag": None, "commit": SHA,
                                    "author": "Lin", "author_email": None,
                                    "message": "new", "url": None}


def test_bitbucket_push_is_one_event_per_pushed_branch() -> None:
    body = {"repository": {"full_name": "team/repo"}, "push": {"changes": [
        {"new": {"type": "branch", "name": "main", "target": {
            "hash": SHA, "message": "m", "author": {"raw": "Kim <k@x>"}}}},
        {"new": None, "old": {"type": "branch", "name": "gone"}}]}}
    got = parse(src("git", "bitbucket"), {"X-Event-Key": "repo:push",
                                          "X-Request-UUID": "u1"}, body)
    assert got.id == "u1" and [(p["branch"], p["commit"], p["author"])
                               for p in got.payloads] == [("main", SHA, "Kim <k@x>")]


def test_gitlab_without_uuid_dedups_on_checkout_sha_and_ref() -> None:
    body = {"ref": "refs/heads/main", "checkout_sha": SHA, "commits": [],
            "project": {"path_with_namespace": "g/r"}, "user_name": "Al"}
    one = parse(src("git", "gitlab"), {"X-Gitlab-Event": "Push Hook"}, body)
    two = parse(src("git", "gitlab"), {"X-Gitlab-Event": "Push Hook"}, {**body, "x": 1})
    assert one.id == two.id and one.payloads[0]["author"] == "Al"


def test_a_ping_and_a_deletion_make_no_event() -> None:
    assert parse(src("git", "github"), {"X-GitHub-Event": "ping"}, {}).ignored
    deleted = parse(src("git", "github"), {"X-GitHub-Event": "push"},
                    {"ref": "refs/heads/x", "after": "0" * 40})
    assert deleted.payloads == [] and "deleted" in (deleted.ignored or "")


def test_registry_pushes() -> None:
    hub = parse(src("registry", "dockerhub"), {}, {
        "push_data": {"tag": "v2", "pusher": "me"},
        "repository": {"repo_name": "me/app", "name": "app"}})
    assert hub.payloads == [{"image": "me/app", "tag": "v2", "digest": None}]
    harbor = parse(src("registry", "harbor"), {}, {"type": "PUSH_ARTIFACT", "event_data": {
        "resources": [{"digest": "sha256:" + "d" * 64, "tag": "v1",
                       "resource_url": "harbor.example.com/library/app:v1"}],
        "repository": {"repo_full_name": "library/app"}}})
    assert harbor.payloads == [{"image": "harbor.example.com/library/app", "tag": "v1",
                                "digest": "sha256:" + "d" * 64}]
    version = {"version": "sha256:e1",
               "container_metadata": {"tag": {"name": "latest", "digest": "sha256:e1"}}}
    ghcr = parse(src("registry", "ghcr"), {"X-GitHub-Event": "package",
                                           "X-GitHub-Delivery": "g1"}, {
        "action": "published", "package": {"name": "Trainer", "owner": {"login": "Acme"},
                                           "package_version": version}})
    assert ghcr.payloads == [{"image": "ghcr.io/acme/trainer", "tag": "latest",
                              "digest": "sha256:e1"}]


def test_dataset_version_and_events() -> None:
    s = src("dataset", "webhook", name="lake")
    got = parse(s, {"X-Delivery-Id": "v7"}, {"dataset": "clicks", "version": "7",
                                             "uri": "s3://b/clicks/7"})
    [event] = webhooks.events(s, got, ids=["e1"], at=datetime(2025, 1, 1, tzinfo=UTC))
    assert (event.kind, event.ref, event.payload["dataset"], event.payload["version"]) == (
        "connection_dataset_version", "connections.lake", "clicks", "7")
    with pytest.raises(webhooks.PayloadRefused, match=r"^dataset:"):
        parse(s, {}, {"version": "1"})


@pytest.mark.parametrize(("conf", "message"), [
    ({"kind": "git"}, "needs provider, one of github, gitlab, gitea, bitbucket"),
    ({"kind": "git", "provider": "github"}, "needs secret_env"),
    ({"kind": "ftp"}, "kind must be one of"),
    ({"kind": "git", "provider": "github", "secret_env": "X", "token": "y"},
     "unknown key 'token'"),
])
def test_bad_connections_are_refused_naming_them(conf, message) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(connections={"repo": conf})


def test_connections_beside_the_taskq_table(tmp_path, monkeypatch) -> None:
    path = tmp_path / "taskq.toml"
    path.write_text('[taskq]\nnamespace = "default"\n\n[connections.git-repo]\nkind = "git"\n'
                    'provider = "gitea"\nsecret_env = "GITEA_SECRET"\n')
    monkeypatch.setenv("TASKQ_CONFIG", str(path))
    monkeypatch.delenv("TASKQ_CONNECTIONS", raising=False)
    assert Settings().connections == {"git-repo": {"kind": "git", "provider": "gitea",
                                                   "secret_env": "GITEA_SECRET"}}
