"""The CLI as a user drives it: real subprocesses, real Redis and database."""

from __future__ import annotations

import json

import pytest

from tests.conftest import env_for, run_cli, wait_for

pytestmark = pytest.mark.acceptance


@pytest.fixture
def cli_env(settings):
    return env_for(settings)


def test_db_upgrade_is_idempotent(cli_env) -> None:
    out = run_cli("db", "upgrade", env=cli_env)
    assert out.returncode == 0, out.stderr
    from alembic.script import ScriptDirectory

    from taskq.store.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert f"revision {head}" in out.stdout
    assert run_cli("db", "current", env=cli_env).stdout.strip() == head


@pytest.mark.parametrize(("args", "message"), [
    (["--ref", "nope", "--kind", "run_status_running", "--job", "tensorboard"],
     "error: event.ref: ref 'nope' is malformed"),
    (["--ref", "jobs.train", "--kind", "run_status_nope", "--job", "tensorboard"],
     "error: event.kinds: kind 'run_status_nope' is not a run status event"),
    (["--ref", "jobs.train", "--kind", "run_status_running", "--job", "ghost"],
     "error: job: unknown job 'ghost'"),
    (["--ref", "jobs.train", "--kind", "run_status_running", "--job", "tensorboard",
      "--queue", "a/b/c"], "error: queue: 'a/b/c' has more than two parts"),
    (["--ref", "jobs.train", "--kind", "run_status_running", "--job", "tensorboard",
      "-p", "broken"], "error: param: 'broken' is not KEY=VALUE"),
])
def test_bad_trigger_is_one_line_and_a_hint(cli_env, args, message) -> None:
    out = run_cli("triggers", "add", "t", *args, env=cli_env)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith(message), out.stderr
    assert len(lines) == 2 and lines[1].startswith("hint: ")
    assert "Traceback" not in out.stderr


def test_triggers_lifecycle_and_runs_from_the_cli(cli_env, stack) -> None:
    add = run_cli("triggers", "add", "tb", "--ref", "jobs.train", "--kind",
                  "run_status_running", "--job", "tensorboard", "-p",
                  "uuid={{ trigger.run.uuid }}", env=cli_env)
    assert add.returncode == 0, add.stderr
    listed = run_cli("triggers", "list", env=cli_env)
    assert "tb" in listed.stdout and "jobs.train" in listed.stdout
    assert run_cli("triggers", "disable", "tb", env=cli_env).returncode == 0
    shown = json.loads(run_cli("triggers", "show", "tb", env=cli_env).stdout)
    assert shown["enabled"] is False and shown["version"] == 2
    assert run_cli("triggers", "enable", "tb", env=cli_env).returncode == 0

    stack.standard()
    sub = run_cli("submit", "train", "-p", "seconds=0.3", "-p", "epochs=1", env=cli_env)
    assert sub.returncode == 0, sub.stderr
    train_uuid = sub.stdout.split()[1]

    def board() -> str | None:
        out = run_cli("runs", "list", "--trigger", "tb", env=cli_env).stdout
        return out if "succeeded" in out else None

    wait_for(board, 40, interval=0.5)
    show = json.loads(run_cli("runs", "show", train_uuid, env=cli_env).stdout)
    assert [t["status"] for t in show["transitions"]] == [
        "compiled", "queued", "starting", "initializing", "running", "succeeded"]
    firings = json.loads(run_cli("triggers", "show", "tb", env=cli_env).stdout)["firings"]
    assert len(firings) == 1 and firings[0]["outcome"] == "fired"
    tail = run_cli("events", "tail", "--from-start", "--count", "3", env=cli_env)
    assert tail.stdout.count("run_status_") == 3
    missing = run_cli("runs", "show", "no-such-run", env=cli_env)
    assert missing.returncode == 1 and missing.stderr.startswith("error: no run")
    assert run_cli("triggers", "delete", "tb", env=cli_env).returncode == 0
    gone = run_cli("triggers", "delete", "tb", env=cli_env)
    assert gone.returncode == 1 and "no trigger named 'tb'" in gone.stderr


@pytest.mark.parametrize(("env", "message"), [
    ({"TASKQ_EVALUATORS": "abc"}, "error: configuration: evaluators:"),
    ({"TASKQ_EMBEDDED": "false", "TASKQ_REDIS_URL": "", "TASKQ_DATABASE_URL": ""},
     "error: TASKQ_DATABASE_URL is not set and TASKQ_EMBEDDED=false"),
    ({"TASKQ_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}, "error: database:"),
])
def test_bad_configuration_is_one_line_and_a_hint(cli_env, env, message) -> None:
    merged = {**cli_env, **env}
    for key in [k for k, v in env.items() if v == ""]:
        merged.pop(key)
    out = run_cli("runs", "list", env=merged)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith(message), out.stderr
    assert len(lines) == 2 and lines[1].startswith("hint: ")
