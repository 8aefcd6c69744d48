"""The evaluator's pure per-event cost, in microseconds: matching an event against 210 rules
(200 event triggers over three namespaces, 10 model triggers with a name pattern), planning
a firing whose params are templates, and a hook condition. No Redis, no database.

    python benchmarks/evaluation_cost.py [--json out.json] [--repeat 7]

Runs against older checkouts too (``compare.py --bench evaluation_cost``): the bounded
matching and the firing budget are used when the checkout has them, as the evaluator uses
them. Best of ``--repeat`` runs; never asserts anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
import timeit
from collections.abc import Callable, Iterator
from typing import Any

from taskq.core import matching
from taskq.core.conditions import evaluate_condition
from taskq.core.events import Event
from taskq.core.matching import EventTrigger, Rule, RuleIndex
from taskq.core.planning import Facts
from taskq.core.triggers import default_kinds

BOUNDED = hasattr(matching, "Skip")
KINDS = default_kinds()
RUN = "0f0e0d0c-0b0a-4908-8706-050403020100"


def rules() -> list[Rule]:
    out = [Rule(id=i, name=f"r{i}", namespace=("default", "team-a", "team-b")[i % 3],
                job="viz", params={"uuid": "{{ trigger.run.uuid }}",
                                   "name": "run-{{ trigger.run.job }}-{{ trigger.name }}"},
                event=EventTrigger(ref=f"jobs.job{i % 20}",
                                   kinds=("run_status_running", "run_status_succeeded")))
           for i in range(200)]
    for i in range(200, 210):
        out.append(KINDS.build_rule({
            "id": i, "name": f"m{i}", "namespace": "default", "kind": "model", "job": "viz",
            "params": {}, "queue": None, "version": 1,
            "spec": {"family": "models", "target": "job", "on_publish": True,
                     "name_pattern": "^resnet.*v[0-9]+$"}}))
    return out


def events() -> tuple[Event, Event]:
    run = Event(id="e1", kind="run_status_running", ref=f"runs.{RUN}", namespace="default",
                timestamp="2026-01-01T00:00:00Z", payload={"job": "job3", "uuid": RUN})
    entity = {"id": "m1", "name": "resnet50-v3", "project": None, "version": "3", "tags": [],
              "uri": None, "published": True, "published_at": "t", "archived": False}
    model = Event(id="e2", kind="model_published", ref="models.m1", namespace="default",
                  timestamp="2026-01-01T00:00:00Z",
                  payload={"entity": entity, "previous": {**entity, "published": False},
                           "actions": ["published"], "revision": 2})
    return run, model


def matcher(index: RuleIndex) -> Callable[[Event], list[Any]]:
    if not BOUNDED:
        return index.match
    from taskq.core.budget import RuleBudget

    def match(event: Event) -> list[Any]:
        with RuleBudget(0.05, time.monotonic) as budget:
            return index.match(event, budget=budget, skipped=[])

    return match


@contextlib.contextmanager
def evaluator_loop() -> Iterator[None]:
    """What the evaluator's loop holds for its whole slice, when the checkout has it."""
    if not BOUNDED:
        yield
        return
    from taskq.core.budget import rule_alarm

    with rule_alarm():
        yield


def best_us(fn: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    index = RuleIndex(rules())
    run_event, model_event = events()
    match = matcher(index)
    [first, *_] = match(run_event)
    kind = KINDS.for_rule(first.rule)
    template = {"task_name": "taskq.job.viz", "queue": "viz",
                "inputs": {"uuid": {"type": "str"}, "name": {"type": "str"}}}
    facts = Facts(default_queue="default")
    plan = kind.plan(first, template, "runs.x:run_status_running", facts)
    assert plan.error is None and plan.run is not None, plan
    scope = {"loss": 0.1, "some-io-param": "x"}
    with evaluator_loop():
        figures = {
            "match_run_event_us": best_us(lambda: match(run_event), 20_000, args.repeat),
            "match_model_event_us": best_us(lambda: match(model_event), 5_000, args.repeat),
            "plan_templated_firing_us": best_us(
                lambda: kind.plan(first, template, "runs.x:run_status_running", facts),
                5_000, args.repeat),
            "condition_us": best_us(lambda: evaluate_condition(
                '{{ loss < 0.2 and some-io-param == "x" }}', scope), 2_000, args.repeat),
        }
    for key, value in figures.items():
        print(f"{key:<28}{value:10.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
