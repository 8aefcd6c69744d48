"""`taskq run -f pipeline.yaml`, as the docs show it, against real workers."""

from __future__ import annotations

import pytest

import taskq
from tests.conftest import env_for, run_cli

pytestmark = pytest.mark.acceptance


def test_run_the_seed_pipeline_file(stack, settings) -> None:
    stack.standard()
    out = run_cli("run", "-f", "config/examples/pipeline.yaml", env=env_for(settings,
                                                                            COLUMNS="200"))
    assert out.returncode == 0, out.stderr
    assert "pipeline" in out.stdout and "started" in out.stdout
    pipeline_uuid = out.stdout.split()[1]
    pipeline = taskq.get_run(pipeline_uuid)
    assert pipeline is not None and pipeline.status == taskq.Status.SUCCEEDED
    rows = [[c.strip() for c in line.split("│") if c.strip()]
            for line in out.stdout.splitlines() if "│" in line]
    assert ["experiment", "train", "succeeded", "train"] in rows
    assert ["tensorboard", "tensorboard", "succeeded", "viz"] in rows
    import json

    shown = run_cli("runs", "show", pipeline_uuid, env=env_for(settings))
    ops = {o["op"]: o for o in json.loads(shown.stdout)["operations"]}
    assert ops["tensorboard"]["status"] == "succeeded" and ops["experiment"]["job"] == "train"
