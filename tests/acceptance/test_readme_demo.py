"""The README's demo command on the embedded default: no Redis URL, no database URL, a
fresh directory. It starts a bundled redis-server, SQLite, the evaluator, workers and beat,
and runs the seed scenario to a verdict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.acceptance


def test_taskq_dev_runs_the_seed_scenario(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQ_")}
    env["TASKQ_HOME"] = str(tmp_path / ".taskq")
    env["COLUMNS"] = "120"
    exe = str(Path(sys.executable).parent / "taskq")
    try:
        out = subprocess.run([exe, "dev", "--seconds", "0"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=240,
                             stdin=subprocess.DEVNULL)
    finally:
        from taskq.stream.embedded_redis import stop_redis

        stop_redis(tmp_path / ".taskq")
    text = " ".join((out.stdout + out.stderr).split())  # rich wraps long lines
    assert out.returncode == 0, text[-4000:]
    assert "embedded redis-server" in text
    assert "while train" in text and "was running" in text
    assert "started 0 tensorboard(s)" in text
    assert (tmp_path / ".taskq" / "taskq.db").exists()
