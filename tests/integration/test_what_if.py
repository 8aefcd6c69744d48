"""`taskq triggers what-if NAME -f draft.yaml --since T`: a draft of a trigger against the
events that happened, beside the trigger as it is, by the evaluator's own matcher and
planner; nothing is written. Real Redis and database; no evaluator needed (it reads the
stored events)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import taskq
from tests.conftest import env_for, run_cli

pytestmark = pytest.mark.integration

DRAFT = """\
triggers:
  - name: gate
    event: {ref: events.work, kinds: [custom_event]}
    job: train
    params: {seconds: "{{ 10 // fields.n }}"}
"""


def test_what_if_compares_a_draft_with_the_trigger_on_past_events(settings, tmp_path: Path
                                                                  ) -> None:
    client = taskq.Client()
    client.add_trigger(name="gate", job="train", params={"seconds": "{{ fields.n }}"},
                       event={"ref": "events.work", "kinds": ["custom_event"]})
    ids = [taskq.publish_event("work", {"n": n}) for n in (0, 1, 2)]
    taskq.publish_event("other", {"n": 5})
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT)
    runs_before = len(client.list_runs(limit=100))

    shown = run_cli("triggers", "what-if", "gate", "-f", str(draft), "--since", "1h",
                    "--json", env=env_for(settings))
    assert shown.returncode == 0, shown.stderr
    d = json.loads(shown.stdout)
    assert (d["events"], d["current"], d["draft"]) == (4, 3, 2)
    by_event = {row["event_id"]: row for row in d["differ"]}
    assert set(by_event) == set(ids)  # n=0 an error; n=1, n=2 other params
    assert (by_event[ids[0]]["current"], by_event[ids[0]]["draft"]) == ("fired", "error")
    assert by_event[ids[1]]["params"]["seconds"] == 10.0
    assert by_event[ids[1]]["current_params"]["seconds"] == 1.0
    assert len(client.list_runs(limit=100)) == runs_before  # nothing was written
    assert client.firings("gate") == []

    table = run_cli("triggers", "what-if", "gate", "-f", str(draft), "--since", "1h",
                    env=env_for(settings))
    assert "as it is, gate fired 3; the draft would have fired 2" in table.stdout
    missing = run_cli("triggers", "what-if", "nosuch", "-f", str(draft), "--since", "1h",
                      env=env_for(settings))
    assert missing.returncode != 0
    assert "has no trigger or hook named 'nosuch'" in missing.stderr
