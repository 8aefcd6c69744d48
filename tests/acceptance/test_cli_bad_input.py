"""Bad input to the real ``taskq`` CLI is one line plus a hint and a non-zero exit, never a
traceback: values nested past what the parsers walk, numbers past what the database holds,
an unknown migration, an unsupported database, a missing config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import env_for, run_cli

pytestmark = pytest.mark.acceptance

DEEP = "[" * 100_000


def _one_line_and_a_hint(out, starts: str) -> None:
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2, out.stderr[-2000:]
    assert lines[0].startswith(f"error: {starts}"), lines[0]
    assert lines[1].startswith("hint: "), lines[1]


@pytest.fixture
def cli_env(settings):
    return env_for(settings)


@pytest.mark.parametrize(("args", "starts"), [
    (["submit", "train", "-p", f"x={DEEP}"], "param: x: the JSON value is nested too deeply"),
    (["triggers", "add", "t", "--ref", "jobs.train", "--kind", "run_status_running",
      "--job", "tensorboard", "-p", f"x={DEEP}"], "param: x:"),
    (["events", "publish", "ping", "-f", f"x={DEEP}"],
     "field: x: the JSON value is nested too deeply"),
    (["runs", "list", "--limit", "1" + "0" * 20], "is not in the range 1<=x<=10000"),
    (["runs", "list", "--limit", "1e20"], "'1e20' is not a valid integer"),
    (["db", "upgrade", "--revision", "nosuch"], "revision: "),
])
def test_bad_arguments_are_one_line_and_a_hint(cli_env, args, starts) -> None:
    out = run_cli(*args, env=cli_env)
    if args[:2] == ["runs", "list"]:  # refused by click itself: its usage, then the reason
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
        assert out.stderr.strip().splitlines()[-1].startswith("Error: Invalid value")
        assert starts in out.stderr
        return
    _one_line_and_a_hint(out, starts)


@pytest.mark.parametrize("command", [["apply", "-f"], ["run", "-f"]])
def test_a_file_nested_too_deeply_is_one_line_and_a_hint(cli_env, tmp_path: Path,
                                                         command) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("triggers:\n- name: x\n  event: " + DEEP + "\n")
    _one_line_and_a_hint(run_cli(*command, str(path), env=cli_env), "file: ")


@pytest.mark.parametrize(("env", "starts"), [
    ({"TASKQ_DATABASE_URL": "mysql://u:p@127.0.0.1/taskq"}, "database: mysql:// is not "
                                                            "supported"),
    ({"TASKQ_CONFIG": "/nonexistent/taskq.toml"}, "TASKQ_CONFIG points to "
                                                  "/nonexistent/taskq.toml"),
])
@pytest.mark.parametrize("args", [["runs", "list"], ["db", "upgrade"]])
def test_bad_configuration_is_one_line_and_a_hint(cli_env, env, starts, args) -> None:
    _one_line_and_a_hint(run_cli(*args, env={**cli_env, **env}), starts)
