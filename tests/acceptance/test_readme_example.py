"""The README's Python example, exactly as written there, against real workers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import taskq
from taskq.core.statuses import Status
from tests.conftest import ROOT, env_for, wait_for

pytestmark = pytest.mark.acceptance


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return next(b for b in blocks if "# my_jobs.py" in b)


def test_readme_example_runs_as_documented(stack, settings, tmp_path: Path) -> None:
    module = tmp_path / "my_jobs.py"
    module.write_text(readme_example())
    stack.evaluator(wait=False, TASKQ_IMPORTS="my_jobs", PYTHONPATH=f"{tmp_path}:{ROOT}")
    stack.worker("train", ["train"], wait=False, TASKQ_IMPORTS="my_jobs",
                 PYTHONPATH=f"{tmp_path}:{ROOT}")
    stack.worker("viz", ["viz"], wait=False, TASKQ_IMPORTS="my_jobs",
                 PYTHONPATH=f"{tmp_path}:{ROOT}")
    for p in stack.procs:
        p.wait_ready(90)
    # As a user would: `python my_jobs.py`, in its own process.
    out = subprocess.run([sys.executable, str(module)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, check=True,
                         env=env_for(settings, TASKQ_IMPORTS="my_jobs",
                                     PYTHONPATH=f"{tmp_path}:{ROOT}"))
    train_uuid = out.stdout.split()[0]
    board = wait_for(lambda: next(iter(taskq.list_runs(trigger="tensorboard-on-train-running")),
                                  None), 30)
    done = wait_for(lambda: (b := taskq.get_run(board.uuid)) and b.done and b, 30)
    assert done.status == Status.SUCCEEDED and done.params["uuid"] == train_uuid
    train = wait_for(lambda: (t := taskq.get_run(train_uuid)) and t.done and t, 30)
    assert train.outputs == {"loss": 0.1} and len(train.metrics) == 10
    assert train.params["learning_rate"] == 0.005
