"""Pure logic of entity triggers: change detection, edges, metric crossings, statuses,
substitution, dedup keys, and the rules the index matches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from taskq.core import watched as entities
from taskq.core.matching import RuleIndex
from taskq.core.statuses import status_kind
from taskq.core.triggers import default_kinds
from taskq.core.triggers.entity_params import check_refs, split_overrides, substitute
from taskq.core.triggers.entity_spec import EntitySpec, map_statuses, metric_crossed, registry_fires
from taskq.core.watched import Family
from tests.unit.factories import stored_trigger

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def state(**kw: Any) -> dict[str, Any]:
    base = {"name": "m", "project": "p", "version": "1", "tags": [], "uri": None,
            "published": False, "published_at": None, "archived": False}
    return {**base, **kw}


def spec(**kw: Any) -> EntitySpec:
    return EntitySpec(family=kw.pop("family", Family.MODELS), target="job", **kw)


def test_actions_between_snapshots() -> None:
    assert entities.registry_actions(None, state()) == ["created"]
    published = state(published=True, published_at="t1")
    assert entities.registry_actions(state(), published) == ["published"]
    assert entities.registry_actions(published, state(published=True, published_at="t2")) == [
        "published"]  # publishing again is a publish
    assert entities.registry_actions(state(tags=["a"]), state(tags=["b"])) == [
        "tagged", "untagged"]
    assert entities.registry_actions(state(), state(uri="s3://x")) == ["updated"]
    assert entities.registry_actions(state(), state()) == []


def test_each_change_that_makes_the_condition_true_fires() -> None:
    on_tags = spec(on_tags=("a", "b"), required_tags=("candidate",))
    with_a = state(tags=["a", "candidate"])
    both = state(tags=["a", "b", "candidate"])
    assert not registry_fires(on_tags, state(tags=["candidate"]), with_a, ["tagged"])
    assert registry_fires(on_tags, with_a, both, ["tagged"])  # all of them: fires
    assert not registry_fires(on_tags, both, state(tags=["a", "b", "candidate", "c"]),
                              ["tagged"])  # still true: not a new edge
    assert registry_fires(on_tags, with_a, both, ["tagged"])  # re-tagged later: again
    assert not registry_fires(on_tags, None, state(tags=["a", "b"]), ["created"])  # required
    publish = spec(on_publish=True)
    pub1, pub2 = state(published=True, published_at="1"), state(published=True, published_at="2")
    assert registry_fires(publish, pub1, pub2, ["published"])  # re-publish fires
    assert not registry_fires(publish, pub1, state(published=True, published_at="1",
                                                   tags=["x"]), ["tagged"])
    assert not registry_fires(publish, pub1, {**pub2, "archived": True}, ["published"])
    assert registry_fires(spec(on_archive=True), pub1, {**pub1, "archived": True},
                          ["archived"])
    assert registry_fires(spec(), None, state(), ["created"])  # no on_*: any change
    assert not registry_fires(spec(project="other"), None, state(), ["created"])
    assert registry_fires(spec(name_pattern="^m$"), None, state(), ["created"])


def summary(last: float, lo: float, hi: float) -> dict[str, Any]:
    return {"title": "loss", "series": "val", "last": last, "min": lo, "max": hi}


def test_metric_edges_last_or_extreme_and_threshold_zero() -> None:
    below = spec(family=Family.RUNS, metric="loss", threshold=0.0, sign="min")
    extreme = spec(family=Family.RUNS, metric="loss", threshold=0.0, judge="extreme")
    crossing = {"k": {**summary(-0.1, -0.2, 0.5), "previous": summary(0.3, -0.2, 0.5)}}
    assert metric_crossed(below, crossing)  # the last value crossed below 0 again
    assert not metric_crossed(extreme, crossing)  # the minimum was already below
    assert not metric_crossed(below, {"k": {**summary(0.1, 0.1, 0.1), "previous": None}})
    assert metric_crossed(below, {"k": {**summary(0.0, 0.0, 0.0), "previous": None}})
    other = {"k": {**summary(-1, -1, -1), "series": "train", "previous": None}}
    assert not metric_crossed(spec(family=Family.RUNS, metric="loss", variant="val",
                                   threshold=0.0), other)
    with pytest.raises(ValueError, match="go together"):
        spec(family=Family.RUNS, metric="loss")


def test_statuses_map_from_clearml() -> None:
    assert map_statuses(["completed", "in_progress", "failed", "stopped", "closed"]) == (
        "succeeded", "running", "failed", "stopped")
    assert map_statuses("created") == ("queued",)
    assert map_statuses(["retrying"]) == ("retrying",)
    with pytest.raises(ValueError, match="not published"):
        map_statuses(["published"])
    with pytest.raises(ValueError, match="not a run status"):
        map_statuses(["aborted"])


def test_substitution_in_parameters_and_overrides() -> None:
    values = {"id": "abc", "name": "resnet", "project": "vision", "version": "3"}
    assert substitute({"Args/m": "${model.id}", "tags": ["v${model.version}"],
                       "n": 1}, values) == {"Args/m": "abc", "tags": ["v3"], "n": 1}
    assert substitute("${model.version}", {**values, "version": None}) is None
    params, fields = split_overrides({"Args/x": 1, "params.y": 2, "project": "p"})
    assert params == {"x": 1, "y": 2} and fields == {"project": "p"}
    check_refs({"a": "${dataset.name}"}, Family.DATASETS, "task_parameters")
    with pytest.raises(ValueError, match=r"task_overrides.a: \$\{model.id\}"):
        check_refs({"a": "${model.id}"}, Family.RUNS, "task_overrides")
    with pytest.raises(ValueError, match="runs have no version"):
        check_refs("${task.version}", Family.RUNS, "task_parameters")


def test_summaries_changes_and_keys() -> None:
    points = [entities.metric_point("loss", "val", v, i, 0.0)
              for i, v in enumerate([0.5, -0.2])]
    assert points[0]["name"] == "loss/val"
    s = entities.summarize(points)["loss\tval"]
    assert (s["last"], s["min"], s["max"], s["n"]) == (-0.2, -0.2, 0.5, 2)
    uid = "3f6d2a8e-1b7c-4e5f-9a0b-2c4d6e8f0a1b"
    run = {"uuid": uid, "namespace": "default", "project": None, "job": "j"}
    prev = entities.run_state(["a"], points[:1])
    new = entities.run_state(["a"], points)
    event = entities.run_change_event(run, prev, new, revision=2, source="api", at=NOW)
    assert event is not None and event.kind == "run_metric"
    assert event.payload["metrics"]["loss\tval"]["previous"]["last"] == 0.5
    assert entities.change_key(event) == f"runs.{uid}:r2"
    assert entities.run_change_event(run, new, new, revision=3, source="api", at=NOW) is None
    with pytest.raises(ValueError, match="finite"):
        entities.metric_point("loss", "val", float("nan"), None, 0.0)


def test_rules_index_on_the_family_and_filter() -> None:
    row = {"id": 1, "name": "t", "namespace": "default", "kind": "model", "job": "evaluate",
           "params": {}, "queue": None, "version": 1,
           "spec": spec(on_publish=True).model_dump(mode="json")}
    index = RuleIndex([default_kinds().build_rule(stored_trigger(row))])
    entity = {"id": "e1", "namespace": "default", **state(published=True, published_at="1"),
              "metadata": {}}
    event = entities.registry_event(Family.MODELS, entity, state(), entities.snapshot(entity),
                                    revision=2, source="api", at=NOW)
    assert event is not None and [r.name for r in index.rules_for(event)] == ["t"]
    assert entities.change_key(event) == "models.e1:r2"
    runs = {**row, "id": 2, "kind": "run", "spec": spec(
        family=Family.RUNS, on_status=("failed",)).model_dump(mode="json")}
    rule = default_kinds().build_rule(stored_trigger(runs))
    assert rule.event.ref == "jobs.*" and rule.event.kinds == (status_kind("failed"),)
