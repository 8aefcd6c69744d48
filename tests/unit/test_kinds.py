"""Every kind with the refs that can send it: accepted there, refused elsewhere naming both;
the docs table lists exactly the catalogue; pipeline operations wait on outside events."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from pydantic import ValidationError

from taskq.core import kinds as catalogue
from taskq.core import watched
from taskq.core.matching import EventTrigger
from taskq.core.pipelines import scheduler as dag
from taskq.core.statuses import Status
from taskq.errors import SpecError
from tests.conftest import ROOT
from tests.unit.test_pipelines import decide, op, spec, states

RUN = "runs.6f1d2c1e-8a4b-4c3e-9b1a-5d7e2f0a9c41"
EXAMPLE_REF = {"runs": RUN, "jobs": "jobs.train", "models": "models.m1",
               "datasets": "datasets.d1", "events": "events.ping",
               "connections": "{{ connections.git-repo }}", "projects": "projects.p",
               "org": "org"}


@pytest.mark.parametrize("kind", sorted(k for k, i in catalogue.KINDS.items() if i.emitted))
def test_every_emitted_kind_is_accepted_on_its_refs_and_refused_on_the_others(kind) -> None:
    info = catalogue.KINDS[kind]
    for family, ref in EXAMPLE_REF.items():
        if family in info.families:
            assert EventTrigger(ref=ref, kinds=[kind]).kinds == (kind,)
            continue
        with pytest.raises(ValidationError) as err:
            EventTrigger(ref=ref, kinds=[kind])
        assert err.value.errors()[0]["loc"] == ("kinds",)
        bare = ref.strip("{} ")
        assert f"ref {bare!r} never sends {kind!r}" in str(err.value)


#: Polyaxon's V1EventKind list (seed 000), all 32: every one has an emitter in taskq.
POLYAXON_KINDS = {
    *(f"run_status_{s}" for s in (
        "created", "resuming", "compiled", "queued", "scheduled", "starting",
        "initializing", "running", "processing", "stopping", "failed", "stopped",
        "succeeded", "skipped", "warning", "unschedulable", "upstream_failed", "retrying",
        "unknown", "done")),
    "run_approved_actor", "run_invalidated_actor", "run_new_artifacts",
    "connection_git_commit", "connection_dataset_version", "connection_registry_image",
    "alert_info", "alert_warning", "alert_critical", "model_version_new_metric",
    "project_custom_event", "org_custom_event"}


def test_every_kind_of_polyaxons_list_is_emitted() -> None:
    assert len(POLYAXON_KINDS) == 32
    assert POLYAXON_KINDS - set(catalogue.KINDS) == set()
    assert {k for k in POLYAXON_KINDS if not catalogue.KINDS[k].emitted} == set()


def test_a_kind_nothing_emits_yet_is_refused_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalogue may list a kind before its emitter exists: a trigger on it is refused,
    not stored to wait for an event that cannot come."""
    monkeypatch.setitem(catalogue.KINDS, "run_status_someday",
                        catalogue.KindInfo((catalogue.RUNS, catalogue.JOBS), emitted=False))
    assert catalogue.refusal("run_status_someday", "jobs.train") == (
        "'run_status_someday' is not emitted yet by anything in taskq (docs/events.md)")


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="'git_push' is not an event kind taskq knows"):
        EventTrigger(ref="connections.repo", kinds=["git_push"])


def test_polyaxon_spelling_of_a_connection_ref() -> None:
    trig = EventTrigger(ref="{{ connections.git-repo }}", kinds=["connection_git_commit"])
    assert trig.ref == "connections.git-repo"
    assert EventTrigger(ref="connections.*", kinds=["connection_registry_image"])


def test_the_catalogue_holds_what_the_registries_emit() -> None:
    for family in watched.Family:
        assert set(watched.kinds(family)) <= set(catalogue.KINDS)


def test_docs_table_lists_every_kind_once() -> None:
    text = (ROOT / "docs" / "events.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M)
    listed = [r for r in rows if r in catalogue.KINDS or r.startswith(("run_", "model",
                                                                          "dataset", "alert",
                                                                          "connection",
                                                                          "project", "org",
                                                                          "custom"))]
    statuses = {k for k in catalogue.KINDS if k.startswith("run_status_")}
    assert sorted(set(listed) | statuses) == sorted(catalogue.KINDS)
    assert len(listed) == len(set(listed))
    for kind, info in catalogue.KINDS.items():
        if not info.emitted:
            assert re.search(rf"^\| `{kind}` \|.*not yet emitted", text, flags=re.M), kind


# -- pipelines ---------------------------------------------------------------------------


def commit_wait(name: str = "train", **kw: object) -> dict[str, object]:
    return op(name, events=[{"ref": "{{ connections.git-repo }}",
                             "kinds": ["connection_git_commit"]}], **kw)


def test_an_operation_may_wait_on_a_connection() -> None:
    sp = spec(op("prep"), commit_wait())
    wait = sp.op("train").events[0]
    assert wait.ref == "connections.git-repo" and wait.external and wait.op == ""
    assert sp.op("train").upstream() == set()


@pytest.mark.parametrize(("event", "message"), [
    ({"ref": "connections.git-repo", "kinds": ["run_status_running"]},
     "ref 'connections.git-repo' never sends 'run_status_running'"),
    ({"ref": "ops.prep", "kinds": ["connection_git_commit"]},
     "ref 'ops.prep' never sends 'connection_git_commit'"),
    ({"ref": "models.m1", "kinds": ["model_published"]},
     "is not 'ops.<operation>', 'connections.<name>' or 'events.<name>'"),
])
def test_bad_waits_are_refused_naming_ref_and_kind(event, message) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        spec(op("prep"), op("train", events=[event]))


def test_waiting_operation_starts_once_the_event_came() -> None:
    sp = spec(op("prep"), commit_wait())
    st = states(prep=Status.RUNNING, train=Status.CREATED)
    assert decide(sp, st).actions == []
    st["train"] = replace(st["train"], received=frozenset(
        {("connections.git-repo", "connection_git_commit")}))
    assert [(a.kind, a.op) for a in decide(sp, st).actions] == [("start", "train")]


def test_waiting_operation_is_skipped_once_the_rest_is_done() -> None:
    sp = spec(op("prep"), commit_wait(), op("report", dependencies=["train"]))
    d = decide(sp, states(prep=Status.SUCCEEDED, train=Status.CREATED, report=Status.CREATED))
    assert [(a.kind, a.op) for a in d.actions] == [("skip", "train")]
    assert d.actions[0].reason == ("connections.git-repo sent no connection_git_commit "
                                   "before the rest of the pipeline was done")
    # The next pass decides its downstream as for any skipped upstream.
    later = decide(sp, states(prep=Status.SUCCEEDED, train=Status.SKIPPED,
                              report=Status.CREATED))
    assert [(a.kind, a.op) for a in later.actions] == [("upstream_failed", "report")]


def test_a_stopping_pipeline_stops_a_waiting_operation() -> None:
    sp = spec(op("prep"), commit_wait())
    d = decide(sp, states(prep=Status.SUCCEEDED, train=Status.CREATED), stopping=True)
    assert [(a.kind, a.op) for a in d.actions] == [("stop", "train")]


def test_state_has_no_received_events_by_default() -> None:
    assert dag.OpState(status=Status.CREATED).received == frozenset()
