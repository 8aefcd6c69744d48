"""`current.alert` and `current.log_artifact`: a bad argument is refused in the job, naming
it, and nothing is emitted; a good one is one committed run event with the run's summary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskq.core.kinds import refusal
from taskq.services import job_events
from taskq.testing import TestContext, make_context
from tests.unit.test_services import start_run


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path)
    yield context
    context.close()


@pytest.mark.parametrize(("level", "message", "fields", "error"), [
    ("fatal", "x", {}, r"^alert: level 'fatal' is not one of info, warning, critical$"),
    ("info", "", {}, r"^alert: message: must be a non-empty string$"),
    ("info", "x" * 2001, {}, r"^alert: message: 2001 characters, more than 2000$"),
    ("info", "x", {"bad key": 1}, r"^alert: fields\.bad key: not a field name"),
    ("info", "x", {"v": object()}, r"^alert: fields: must be JSON"),
])
def test_a_bad_alert_names_what_is_wrong_and_emits_nothing(
        ctx: TestContext, level: str, message: str, fields: dict[str, object],
        error: str) -> None:
    run = start_run(ctx)
    before = ctx.bus.counts()
    with pytest.raises(ValueError, match=error):
        job_events.alert(ctx, run, level, message, fields)
    assert ctx.bus.counts() == before


def test_an_alert_and_an_artifact_are_run_events_its_job_triggers_can_hear(
        ctx: TestContext) -> None:
    run = start_run(ctx)
    alert = job_events.alert(ctx, run, "warning", "slow epoch", {"seconds": 91})
    assert (alert.kind, alert.ref) == ("alert_warning", f"runs.{run}")
    assert alert.match_refs() == (f"runs.{run}", "jobs.train")
    assert alert.payload["status"] == "running" and alert.payload["fields"] == {"seconds": 91}
    saved = job_events.artifact(ctx, run, "ckpt", "s3://b/ckpt.pt", "model")
    assert saved.payload["artifacts"] == [{"name": "ckpt", "uri": "s3://b/ckpt.pt",
                                           "kind": "model"}]
    with pytest.raises(ValueError, match=r"^log_artifact: uri: must be a non-empty string$"):
        job_events.artifact(ctx, run, "ckpt", " ", "model")
    assert refusal("alert_critical", "jobs.train") is None
    assert "never sends 'alert_info'" in (refusal("alert_info", "events.x") or "")
