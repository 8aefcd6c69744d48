"""Many triggers in one call: `Client.add_triggers([...])` checks each as `add_trigger`
does, then stores all in one transaction with one version bump, or none if one is bad or
taken. Real Redis, a real database and a real evaluator."""

from __future__ import annotations

from typing import Any

import pytest

import taskq
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def ping(i: int, **extra: Any) -> dict[str, Any]:
    return {"name": f"p{i}", "event": {"ref": f"events.e{i}", "kinds": ["custom_event"]},
            "job": "noop", **extra}


def test_add_triggers_stores_all_or_none_and_they_fire(stack, settings, r) -> None:
    stack.evaluator()
    client = taskq.Client()
    with pytest.raises(taskq.ValidationError,
                       match=r"^triggers\[1\]\.event\.kinds: .*'nope' is not an event kind"):
        client.add_triggers([ping(0), ping(1, event={"ref": "events.x", "kinds": ["nope"]})])
    with pytest.raises(taskq.ValidationError, match=r"^triggers\[2\]\.name: 'p0' is given twice"):
        client.add_triggers([ping(0), ping(1), ping(0)])
    with pytest.raises(taskq.ValidationError, match=r"^triggers\[0\]: .*unexpected keyword"):
        client.add_triggers([{"nmae": "typo", "event": {}, "job": "noop"}])
    assert client.list_triggers() == []  # nothing of a refused call is stored

    rows = client.add_triggers([ping(i) for i in range(200)])
    assert [t["name"] for t in rows] == [f"p{i}" for i in range(200)]
    assert {t["version"] for t in rows} == {1}
    with pytest.raises(taskq.ValidationError, match=r"name: a trigger named 'p7' already"):
        client.add_triggers([ping(500), ping(7)])
    assert client.get_trigger("p500") is None  # all or none

    taskq.publish_event("e7")
    taskq.publish_event("e199")
    for name in ("p7", "p199"):
        wait_for(lambda n=name: [f["outcome"] for f in client.firings(n)] == ["fired"], 60,
                 message=f"the firing of {name}")
    assert client.firings("p8") == []


def test_apply_of_a_file_of_thousands_stores_them_in_one_go(stack, settings, r, tmp_path) -> None:
    """``taskq apply -f`` with 2,000 new triggers: one version bump (evaluators reload once),
    all or none of the new ones, a bad entry named by its place in the file; applying the
    file again changes nothing, and an edited entry is updated in place."""
    import yaml

    from taskq.api.compat.polyaxon_files import apply_file

    stack.evaluator()
    client = taskq.Client()
    entries = [ping(i) for i in range(2000)]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"triggers": [
        *entries[:1500], ping(1500, event={"ref": "events.x", "kinds": ["nope"]})]}))
    with pytest.raises(taskq.ValidationError,
                       match=r"^triggers\[1500\]: event\.kinds: .*'nope' is not an event kind"):
        apply_file(client, str(bad))
    assert client.list_triggers() == []  # none of the new ones stored

    good = tmp_path / "many.yaml"
    good.write_text(yaml.safe_dump({"triggers": entries}))
    before = int(client.rt.coord.trigger_version() or 0)
    lines = apply_file(client, str(good))
    assert lines == [f"trigger p{i}: added" for i in range(2000)]
    assert int(client.rt.coord.trigger_version()) == before + 1
    assert len(client.list_triggers()) == 2000
    assert set(apply_file(client, str(good))) == {f"trigger p{i}: unchanged" for i in range(2000)}

    entries[7] = ping(7, params={"edited": "yes"})
    good.write_text(yaml.safe_dump({"triggers": [*entries, ping(2000)]}))
    lines = apply_file(client, str(good))
    assert lines[7] == "trigger p7: updated (version 2)" and lines[2000] == "trigger p2000: added"
    taskq.publish_event("e2000")
    wait_for(lambda: [f["outcome"] for f in client.firings("p2000")] == ["fired"], 60,
             message="the firing of the trigger added by the second apply")
