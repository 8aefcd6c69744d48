"""Bounded matching: a user's regular expression runs in linear time or is refused at
registration; a rule whose check fails or overruns its budget is skipped for that event,
with the reason recorded, and the others are checked; namespaces take turns in a batch."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from taskq.core.budget import RuleBudget
from taskq.core.conditions import check_condition, evaluate_condition
from taskq.core.events import Event, custom_event
from taskq.core.matching import Rule, RuleIndex, Skip
from taskq.core.triggers.base import KindRegistry, TriggerRow
from taskq.core.triggers.chaining import ChainingKind
from taskq.core.triggers.entity import EntityKind
from taskq.core.triggers.entity_spec import EntitySpec, RegistryFilter
from taskq.core.triggers.event import EventKind
from taskq.core.triggers.hook import HookKind
from taskq.core.watched import Family
from taskq.errors import ValidationError
from taskq.services.entity_admin import add_entity_trigger
from taskq.testing import TestContext, make_context
from tests.unit.factories import make_event, make_rule

HOSTILE = "^(a+)+$"


def model_event(name: str) -> Event:
    entity = {"id": "m1", "name": name, "project": None, "version": None, "tags": [],
              "uri": None, "published": False, "published_at": None, "archived": False}
    return Event(id="e1", kind="model_created", ref="models.m1", namespace="team-a",
                 timestamp="2026-01-01T00:00:00Z",
                 payload={"entity": entity, "previous": None, "actions": ["created"],
                          "revision": 1})


@pytest.mark.timeout(60)  # Python's backtracking engine needs about 2**40 steps here
def test_a_catastrophic_name_pattern_runs_in_linear_time() -> None:
    """ClearML-style trigger_name ``^(a+)+$`` against forty a's and a "!" pinned the
    evaluator for every tenant; on RE2 it answers at once, and still matches."""
    flt = RegistryFilter(EntitySpec(family=Family.MODELS, target="job",
                                    name_pattern=HOSTILE))
    assert flt.accepts(model_event("a" * 40 + "!")) is False
    assert flt.accepts(model_event("a" * 40)) is True


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    context = make_context(tmp_path, namespaces=["default", "team-a"])
    context.store.upsert_job_template(
        name="noop", namespace="default", queue="default", task_name="taskq.job.noop",
        inputs={}, outputs={}, project=None, description=None)
    yield context
    context.close()


@pytest.mark.parametrize(("pattern", "why"), [
    (r"^(a)\1$", "backreferences"),
    (r"(?P<x>a)(?P=x)", "backreferences"),
    (r"^(?=a)", "lookahead and lookbehind"),
    (r"(?<!x)model", "lookahead and lookbehind"),
    (r"(?>a+)b", "atomic groups"),
    (r"a++", "possessive quantifiers"),
    ("x" * 1001, "exceeds the limit of 1000"),
])
def test_patterns_re2_cannot_run_are_refused_at_registration(ctx: TestContext, pattern: str,
                                                             why: str) -> None:
    with pytest.raises(ValidationError, match=rf"^trigger_name: .*{why}"):
        add_entity_trigger(ctx, "model", name="t", namespace="team-a", schedule_task_id="noop",
                           schedule_function=None, schedule_queue=None, trigger_project=None,
                           add_tag=False, task_parameters=None, task_overrides=None,
                           reuse_task=False, single_instance=False, target_project=None,
                           name_pattern=pattern)
    assert ctx.store.list_triggers("team-a") == []


@pytest.mark.timeout(60)
def test_conditions_are_parsed_in_linear_time() -> None:
    """The string-literal splitter a condition goes through was quadratic on ``'\\'\\'...``
    (20,000 pairs took 6 s, at registration and at every evaluation)."""
    hostile = "x == 1 or '" + "\\'" * 100_000
    with pytest.raises(Exception):  # noqa: B017 - unterminated string: refused, quickly
        check_condition(hostile)
    # The rewrite keeps the aliasing it did: hyphenated names, reserved words, literals.
    scope = {"some-io-param": "x", "self": 2, "a": 1}
    assert evaluate_condition('{{ some-io-param == "x" and self == 2 }}', scope)
    assert evaluate_condition("'some-io-param' == 'some-io-param' and a - 1 == 0", scope)


class Spinning:
    """A filter that never finishes on its own (a stand-in for any costly check)."""

    def accepts(self, event: Event) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pass
        return True


class Broken:
    def accepts(self, event: Event) -> bool:
        raise KeyError("entity")


def with_filter(rule: Rule, flt: Any) -> Rule:
    return dataclasses.replace(rule, filter=flt, inputs=())


@pytest.mark.timeout(60)
def test_a_rule_whose_check_overruns_is_skipped_and_the_others_match() -> None:
    slow = with_filter(make_rule(1, kinds="run_status_running"), Spinning())
    ok = make_rule(2, kinds="run_status_running")
    broken = with_filter(make_rule(3, kinds="run_status_running"), Broken())
    index = RuleIndex([slow, ok, broken])
    skipped: list[Skip] = []
    with RuleBudget(0.05, time.monotonic) as budget:
        found = index.match(make_event(), budget=budget, skipped=skipped)
    assert [m.rule.id for m in found] == [2]
    reasons = {s.rule.id: s.reason for s in skipped}
    assert set(reasons) == {1, 3}
    assert "matching took longer than 0.05s (TASKQ_RULE_CHECK_SECONDS)" in reasons[1]
    assert "matching failed (KeyError: 'entity')" in reasons[3]
    # The alarm is gone once the checks are done.
    assert budget._armed is False


# -- the evaluator: skipped rules recorded, namespaces in turn ---------------------------------


class HostileEvents(EventKind):
    """Event triggers whose name says how their check or their planning misbehaves."""

    def build_rule(self, row: TriggerRow) -> Rule:
        rule = super().build_rule(row)
        flt = {"spinning": Spinning(), "broken": Broken()}.get(rule.name)
        return with_filter(rule, flt) if flt else rule

    def plan(self, match: Any, template: Any, key: str, facts: Any,
             events: Any = None) -> Any:
        if match.rule.name == "unplannable":
            raise KeyError("fields")
        return super().plan(match, template, key, facts, events)


def add_ping_trigger(ctx: TestContext, name: str, namespace: str = "default") -> dict[str, Any]:
    return ctx.store.add_trigger(name=name, namespace=namespace, kind="event",
                                 spec={"ref": "events.ping", "kinds": ["custom_event"]},
                                 job="noop", params={}, queue=None)


@pytest.mark.timeout(60)
def test_the_evaluator_records_skipped_rules_and_fires_the_others(ctx: TestContext) -> None:
    ctx.kinds = KindRegistry((HostileEvents(), HookKind(), ChainingKind(), EntityKind()))
    spinning = add_ping_trigger(ctx, "spinning")
    broken = add_ping_trigger(ctx, "broken")
    unplannable = add_ping_trigger(ctx, "unplannable")
    fine = add_ping_trigger(ctx, "fine")
    ev = ctx.evaluator()
    ev.refresh(force=True)
    sid = ctx.bus.append(custom_event("ping"))
    assert ev.run_once(block_ms=1) == 1
    assert ctx.bus.pending_entries() == {}  # evaluated and acknowledged, not retried
    assert [f["outcome"] for f in ctx.store.firings(fine.id)] == ["fired"]
    [slow] = ctx.store.firings(spinning.id)
    [bad] = ctx.store.firings(broken.id)
    assert slow["outcome"] == bad["outcome"] == "error"
    assert "longer than 0.05s" in slow["reason"] and "KeyError" in bad["reason"]
    # Planning is pure: its exception is the firing's error, not a retry of the entry.
    [failed] = ctx.store.firings(unplannable.id)
    assert failed["outcome"] == "error"
    assert failed["reason"] == "planning failed: KeyError: 'fields'"
    assert (ev.stats.processed, ev.stats.rules_skipped, ev.stats.errors) == (1, 2, 0)
    assert sid


def test_namespaces_take_turns_within_a_batch(ctx: TestContext) -> None:
    """A batch holding a tenant's backlog and then one event of another: that event is
    evaluated second, not after the backlog."""
    seen: list[str] = []

    class Order:
        def begin_batch(self, rt: Any) -> None:
            pass

        def observe(self, rt: Any, event: Event) -> None:
            seen.append(event.namespace)

    ctx.observers = (Order(),)
    for _ in range(5):
        ctx.bus.append(custom_event("ping", namespace="team-a"))
    ctx.bus.append(custom_event("ping"))
    ev = ctx.evaluator()
    ev.refresh(force=True)
    assert ev.run_once(block_ms=1) == 6
    assert seen[:2] == ["team-a", "default"]
    assert sorted(seen) == ["default"] + ["team-a"] * 5


def test_python_regular_expressions_are_only_the_vetted_ones() -> None:
    """Users' patterns and taskq's patterns over user text run on RE2. Python's engine is
    left only for fixed patterns that match any text in at most one way (anchored names,
    tags, queues, pipeline refs, cron fields), so they cannot backtrack; a new
    ``import re`` must be vetted and added here."""
    import ast

    import taskq

    root = Path(taskq.__file__).parent
    users = set()
    for path in root.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) else [])
            if "re" in names:
                users.add(str(path.relative_to(root)))
    # Vetted: fixed, anchored patterns over names, tags, queues, cron fields and pipeline
    # refs; the escaping of text a database refuses (character classes); the HTTP body's
    # linear JSON-string scanner (every character matches one way).
    assert users == {"core/names.py", "core/cron.py", "core/routing.py", "core/watched.py",
                     "core/pipelines/params.py", "core/storable.py", "http/limits.py"}
