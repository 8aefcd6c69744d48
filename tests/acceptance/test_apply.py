"""`taskq apply -f` with the shipped example file, as a user runs it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, env_for, run_cli

pytestmark = pytest.mark.acceptance
EXAMPLE = str(ROOT / "config" / "examples" / "hooks.yaml")


CONNECTIONS = '{"slack-connection": {"kind": "slack", "url_env": "SLACK_WEBHOOK_URL"}}'


def test_apply_registers_and_is_idempotent(settings) -> None:
    env = env_for(settings, TASKQ_CONNECTIONS=CONNECTIONS)
    first = run_cli("apply", "-f", EXAMPLE, env=env)
    assert first.returncode == 0, first.stderr
    assert "hook train.hook.slack.failed: on train failed -> slack" in first.stdout
    assert "hook train.hook.evaluate.succeeded: on train succeeded -> evaluate" in first.stdout
    assert "trigger tensorboard-on-train-running: added" in first.stdout
    again = run_cli("apply", "-f", EXAMPLE, env=env)
    assert "trigger tensorboard-on-train-running: unchanged" in again.stdout
    shown = json.loads(run_cli("triggers", "show", "train.hook.evaluate.succeeded",
                               env=env).stdout)
    assert shown["kind"] == "hook" and shown["version"] == 1
    assert shown["spec"]["hook"]["conditions"] == "{{ loss < 0.2 }}"


def test_apply_refuses_an_undefined_connection(settings) -> None:
    out = run_cli("apply", "-f", EXAMPLE, env=env_for(settings))
    assert out.returncode == 1
    assert out.stderr.startswith(
        "error: hooks[0]: hook.connection: undefined connection 'slack-connection'"), out.stderr


def test_apply_refuses_a_bad_file_naming_the_entry(settings, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("hooks:\n  - job: train\n    hubRef: evaluate\n    trigger: running\n")
    out = run_cli("apply", "-f", str(bad), env=env_for(settings))
    assert out.returncode == 1
    assert out.stderr.startswith("error: hooks[0]: hook.trigger:"), out.stderr
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("hooks: [unclosed\n")
    out = run_cli("apply", "-f", str(garbage), env=env_for(settings))
    assert out.returncode == 1 and "is not valid YAML" in out.stderr
