"""One tenant cannot stall the evaluator every tenant shares: a catastrophic name pattern
runs in linear time (or is refused at registration), and a trigger whose params would
build huge values is refused per firing, before the work, while another namespace's
events keep firing. Real Redis, a real database, a real evaluator worker."""

from __future__ import annotations

from typing import Any

import pytest

import taskq
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

#: Forty a's and a "!": Python's backtracking engine needs about 2**40 steps on ^(a+)+$.
WORST_CASE = "a" * 40 + "!"
DOUBLING = ("{% set ns = namespace(s='x') %}{% for i in range(25) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}")
WIDE_FORMAT = "{{ ('{:65536}' * 40).format(*range(40)) | length }}"


def outcomes(name: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return taskq.Client(admin=True).firings(name, namespace)


def all_fired(name: str, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        firings = outcomes(name)
        return firings if len(firings) >= count else None

    firings = wait_for(check, 120, message=f"{count} firings of {name}")
    assert [f["outcome"] for f in firings] == ["fired"] * count
    return firings


def test_a_catastrophic_pattern_in_one_namespace_does_not_stop_another(stack, settings,
                                                                        r) -> None:
    stack.evaluator()
    scheduler = taskq.TriggerScheduler(namespace="team-a")
    with pytest.raises(taskq.ValidationError, match=r"^trigger_name: backreferences"):
        scheduler.add_model_trigger(schedule_task_id="noop", trigger_name=r"^(a)\1$",
                                    name="backreference", add_tag=False)
    scheduler.add_model_trigger(schedule_task_id="noop", trigger_name="^(a+)+$",
                                name="hostile", add_tag=False)
    taskq.add_event_trigger(name="pings", job="noop", events=["ping"])

    team_a = taskq.Client(namespace="team-a")  # each client is bound to one namespace
    team_a.models.register(WORST_CASE, namespace="team-a")  # evaluated first
    for _ in range(20):
        taskq.publish_event("ping")
    all_fired("pings", 20)  # every one, while the hostile rule is present

    # The pattern still means what it says: a name it matches fires it, once.
    team_a.models.register("a" * 40, namespace="team-a")
    hostile = wait_for(lambda: outcomes("hostile", "team-a"), 60,
                       message="the hostile trigger's firing")
    assert [f["outcome"] for f in hostile] == ["fired"]
    assert team_a.get_trigger("backreference", "team-a") is None


def test_heavy_params_in_one_namespace_are_refused_before_the_work(stack, settings,
                                                                   r) -> None:
    stack.evaluator()
    team_a = taskq.Client(namespace="team-a")  # each client is bound to one namespace
    team_a.add_event_trigger(name="doubling", job="train", events=["work"],
                            namespace="team-a",
                            params={"learning_rate": DOUBLING, "seconds": DOUBLING})
    team_a.add_event_trigger(name="wide", job="train", events=["work"], namespace="team-a",
                            params={"seconds": WIDE_FORMAT})
    taskq.add_event_trigger(name="pings", job="noop", events=["ping"])
    for _ in range(5):
        team_a.publish_event("work", namespace="team-a")
    for _ in range(20):
        taskq.publish_event("ping")
    all_fired("pings", 20)

    for name, reason in (
            ("doubling", "params.learning_rate: '~' concatenation could build 131072 "
                         "characters, which exceeds 65536 characters (the limit of one "
                         "value, TASKQ_TEMPLATE_MAX_VALUE_CHARS)"),
            ("wide", "params.seconds: str.format could build ")):
        firings = wait_for(lambda n=name: len(f := outcomes(n, "team-a")) == 5 and f, 120,
                           message=f"5 firings of {name}")
        assert {f["outcome"] for f in firings} == {"error"}
        assert all(f["reason"].startswith(reason) for f in firings), firings[0]["reason"]
    assert team_a.list_runs(namespace="team-a", job="train") == []
