"""A namespace is a boundary: a Client (and the CLI) bound to one reads and changes only
it; another namespace's runs and triggers are not found, an explicit other namespace is
refused in one line, and only an admin client sees them all. A trigger may not watch
another namespace's run."""

from __future__ import annotations

import json
import uuid

import pytest

import taskq
from taskq import ValidationError, errors
from taskq.core.triggers.hook import Hook
from taskq.services import trigger_admin
from tests.conftest import env_for, run_cli

pytestmark = pytest.mark.integration

SECRET = "team-a-api-key-0123456789"
BOUND = "namespace: this client is bound to 'default'; 'team-a' is another namespace"


def _team_a_run_and_trigger() -> taskq.RunRecord:
    """Team-a's trigger and queued run, written with the store's own credentials (which are
    admin), carrying a secret another tenant must never read."""
    from taskq.runtime import get_runtime
    from taskq.services.recording import append_quietly

    rt = get_runtime()
    rt.store.add_trigger(name="a-board", namespace="team-a", kind="event",
                         spec={"ref": "jobs.train", "kinds": ["run_status_running"]},
                         job="tensorboard", params={"api_key": SECRET}, queue=None,
                         enabled=True)
    rt.coord.bump_triggers()
    run_uuid = str(uuid.uuid4())
    append_quietly(rt.bus, rt.store.create_run(
        uuid=run_uuid, job="train", namespace="team-a", project=None, queue="team-a--train",
        agent="default", task_name="taskq.job.train", params={"api_key": SECRET},
        tags=[SECRET]))
    run = rt.store.get_run(run_uuid)
    assert run is not None
    return run  # type: ignore[return-value]


def test_a_client_sees_only_its_namespace(settings) -> None:
    theirs = _team_a_run_and_trigger()
    mine = taskq.submit("train")
    default = taskq.Client()
    assert default.get_run(theirs.uuid) is None and taskq.get_run(theirs.uuid) is None
    assert [r.uuid for r in default.list_runs()] == [mine.uuid]
    assert [r.uuid for r in taskq.list_runs()] == [mine.uuid]
    assert default.list_triggers() == [] and taskq.list_triggers() == []
    assert default.get_trigger("a-board") is None
    assert default.unmatched_names() == {}
    assert default.namespace == "default" and not default.admin
    admin = taskq.Client(admin=True)
    # Its own namespace's client, and an admin, see it.
    team_a = taskq.Client(namespace="team-a")
    assert team_a.get_run(theirs.uuid).namespace == "team-a"
    assert [r.uuid for r in team_a.list_runs()] == [theirs.uuid]
    assert [t["name"] for t in team_a.list_triggers()] == ["a-board"]
    assert {r.uuid for r in admin.list_runs()} == {mine.uuid, theirs.uuid}
    assert admin.get_run(theirs.uuid) is not None
    assert admin.get_trigger("a-board", namespace="team-a")["params"] == {"api_key": SECRET}


@pytest.mark.parametrize("call", [
    lambda c: c.list_runs(namespace="team-a"),
    lambda c: c.list_triggers("team-a"),
    lambda c: c.get_trigger("a-board", namespace="team-a"),
    lambda c: c.firings("a-board", namespace="team-a"),
    lambda c: c.disable_trigger("a-board", namespace="team-a"),
    lambda c: c.delete_trigger("a-board", namespace="team-a"),
    lambda c: c.submit("train", namespace="team-a"),
    lambda c: c.add_trigger(name="x", event={"ref": "jobs.train", "kinds": ["run_status_running"]},
                            job="tensorboard", namespace="team-a"),
    lambda c: c.add_hook(job="train", hook={"hubRef": "evaluate"}, namespace="team-a"),
    lambda c: c.add_finish_trigger(name="x", job="evaluate", upstream="train",
                                   namespace="team-a"),
    lambda c: c.publish_event("ping", namespace="team-a"),
    lambda c: c.job("train", namespace="team-a"),
    lambda c: c.models.register("m", namespace="team-a"),
    lambda c: c.datasets.list(namespace="team-a"),
    lambda c: taskq.submit("train", namespace="team-a"),
    lambda c: taskq.list_runs(namespace="team-a"),
    lambda c: taskq.models.list(namespace="team-a"),
    lambda c: taskq.TriggerScheduler(client=c, namespace="team-a"),
])
def test_another_namespace_named_outright_is_refused(settings, call) -> None:
    _team_a_run_and_trigger()
    with pytest.raises(errors.OutOfNamespace) as info:
        call(taskq.Client())
    assert str(info.value).startswith(BOUND), str(info.value)
    assert "admin" in (info.value.hint or "")
    admin = taskq.Client(admin=True)
    trig = admin.get_trigger("a-board", namespace="team-a")
    assert trig is not None and trig["enabled"]  # nothing was changed
    assert admin.list_runs(job="train", namespace="team-a").__len__() == 1


def test_stop_and_tag_another_namespaces_run_are_not_found(settings) -> None:
    theirs = _team_a_run_and_trigger()
    for call in (lambda: taskq.Client().stop_run(theirs.uuid),
                 lambda: taskq.tag_run(theirs.uuid, add=["mine"])):
        with pytest.raises(ValidationError, match=f"uuid: no run '{theirs.uuid}'"):
            call()
    team_a = taskq.Client(namespace="team-a")
    after = team_a.get_run(theirs.uuid)
    assert after.status == theirs.status and not after.done and after.tags == [SECRET]
    assert team_a.stop_run(theirs.uuid) is True
    assert team_a.get_run(theirs.uuid).status.value == "stopped"


def test_a_trigger_may_not_watch_another_namespaces_run(settings) -> None:
    theirs = _team_a_run_and_trigger()
    on_their_run = {"ref": f"runs.{theirs.uuid}", "kinds": ["run_status_succeeded"]}
    refused = f"event.ref: 'runs.{theirs.uuid}' is a run of another namespace"
    with pytest.raises(ValidationError) as info:
        taskq.add_trigger(name="peek", event=on_their_run, job="tensorboard")
    assert str(info.value).startswith(refused), str(info.value)
    from taskq.runtime import get_runtime

    rt = get_runtime()
    with pytest.raises(ValidationError, match=r"^ref: 'runs\.[0-9a-f-]+' is a run of another"):
        trigger_admin.register_hook(rt, f"runs.{theirs.uuid}", "team-b",
                                    Hook.model_validate({"hubRef": "evaluate"}), name="peek")
    team_b = taskq.Client(namespace="team-b")
    with pytest.raises(ValidationError) as info:
        team_b.add_trigger(name="peek", event=on_their_run, job="tensorboard")
    assert str(info.value).startswith(refused), str(info.value)
    admin = taskq.Client(admin=True)
    assert admin.list_triggers("team-b") == [] and admin.list_triggers("default") == []
    # Its own namespace may, and a run not stored yet is not refused (submit's hooks).
    mine = taskq.Client(namespace="team-a").add_trigger(name="own", event=on_their_run,
                                                        job="tensorboard")
    assert mine["namespace"] == "team-a"
    hooked = team_b.submit("train", hooks=[{"hubRef": "evaluate"}])
    assert [t["spec"]["ref"] for t in team_b.list_triggers()] == [f"runs.{hooked.uuid}"]


def test_the_cli_is_bound_too(settings) -> None:
    theirs = _team_a_run_and_trigger()
    env = env_for(settings, COLUMNS="250")
    listed = run_cli("runs", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert theirs.uuid not in listed.stdout
    shown = run_cli("runs", "show", theirs.uuid, env=env)
    assert shown.returncode == 1 and SECRET not in shown.stdout + shown.stderr
    assert shown.stderr.startswith(f"error: no run '{theirs.uuid}'"), shown.stderr
    stopped = run_cli("runs", "stop", theirs.uuid, env=env)
    assert stopped.returncode == 1 and "uuid: no run" in stopped.stderr, stopped.stderr
    trigs = run_cli("triggers", "list", env=env)
    assert trigs.returncode == 0 and "a-board" not in trigs.stdout, trigs.stdout
    refused = run_cli("triggers", "show", "a-board", "--namespace", "team-a", env=env)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 2, refused.stderr
    assert lines[0] == f"error: {BOUND}" and lines[1].startswith("hint: ")
    peek = run_cli("triggers", "add", "peek", "--ref", f"runs.{theirs.uuid}", "--kind",
                   "run_status_succeeded", "--job", "tensorboard",
                   env={**env, "TASKQ_NAMESPACE": "team-b"})
    assert peek.returncode == 1 and peek.stderr.startswith("error: event.ref: "), peek.stderr
    # Bound to team-a, or admin (the flag or TASKQ_ADMIN=1): it is there.
    for args, extra in ((["runs", "show", theirs.uuid], {"TASKQ_NAMESPACE": "team-a"}),
                        (["--admin", "runs", "show", theirs.uuid], {}),
                        (["runs", "show", theirs.uuid], {"TASKQ_ADMIN": "1"})):
        out = run_cli(*args, env={**env, **extra})
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["namespace"] == "team-a"
    taskq.Client(namespace="team-a").publish_event("team-a-secret")
    taskq.publish_event("ping")
    tail = run_cli("events", "tail", "--from-start", "--count", "1", env=env)
    assert tail.returncode == 0 and "team-a-secret" not in tail.stdout, tail.stdout
    assert "ping" in tail.stdout
    # The stream from its start: team-a's run compiled and queued, then team-a-secret.
    assert "team-a-secret" in run_cli("--admin", "events", "tail", "--from-start", "--count",
                                      "3", env=env).stdout
    dead = run_cli("events", "dead", env=env)
    assert dead.returncode == 1 and dead.stderr.startswith("error: events dead: ")
    assert run_cli("--admin", "events", "dead", env=env).returncode == 0
    everything = run_cli("--admin", "triggers", "list", env=env)
    assert "a-board" in everything.stdout and SECRET not in everything.stdout
    assert run_cli("--admin", "runs", "stop", theirs.uuid, env=env).returncode == 0
    assert taskq.Client(admin=True).get_run(theirs.uuid).status.value == "stopped"
