"""Queue specs and namespace routing: where a cloned run is published."""

from __future__ import annotations

import pytest

from taskq.core.routing import Route, namespaced_queue, parse_queue, resolve
from taskq.errors import RoutingError


@pytest.mark.parametrize(("spec", "expected"), [
    ("train", ("default", "train")),
    ("default/train", ("default", "train")),
    ("default.train", ("default", "train")),
    ("Train_1", ("default", "Train_1")),
    ("gpu-a100", ("default", "gpu-a100")),
])
def test_parse_queue_accepts(spec: str, expected: tuple[str, str]) -> None:
    assert parse_queue(spec) == expected


@pytest.mark.parametrize("spec", ["a/b/c", "default/train/x", "default.train.x", "a.b/c"])
def test_parse_queue_refuses_three_parts_naming_the_field(spec: str) -> None:
    with pytest.raises(RoutingError) as info:
        parse_queue(spec, field="trigger.queue")
    assert str(info.value).startswith("trigger.queue: ")
    assert "more than two parts" in str(info.value)


def test_parse_queue_refuses_unknown_agent() -> None:
    with pytest.raises(RoutingError, match=r"^queue: unknown agent 'gpu'"):
        parse_queue("gpu/train")


@pytest.mark.parametrize(("spec", "label"), [
    ("tr ain", "queue"),
    ("-train", "queue"),
    ("default/", "queue"),
    ("/train", "agent"),
    ("x" * 101, "queue"),
    ("tr@in", "queue"),
])
def test_parse_queue_refuses_malformed_names(spec: str, label: str) -> None:
    with pytest.raises(RoutingError) as info:
        parse_queue(spec, field="job 'x' queue")
    message = str(info.value)
    assert message.startswith("job 'x' queue: ")
    assert f"{label} " in message
    assert "is malformed" in message


@pytest.mark.parametrize("spec", ["", None, 3])
def test_parse_queue_refuses_non_strings_and_empty(spec: object) -> None:
    with pytest.raises(RoutingError, match=r"^queue: must be a non-empty string"):
        parse_queue(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["team--a", "default/a--b"])
def test_parse_queue_refuses_namespace_separator(spec: str) -> None:
    """A queue spelled like a namespaced one could consume another tenant's runs."""
    with pytest.raises(RoutingError, match="may not contain '--'"):
        parse_queue(spec)


def test_namespaced_queue() -> None:
    assert namespaced_queue("default", "train") == "train"
    assert namespaced_queue("team-a", "train") == "team-a--train"


def test_resolve_precedence_trigger_then_template_then_default() -> None:
    def queue(trigger: str | None, template: str | None) -> str:
        return resolve(namespace="default", trigger_queue=trigger, template_queue=template,
                       default_queue="fallback").queue

    assert queue("fromtrigger", "fromtemplate") == "fromtrigger"
    assert queue(None, "fromtemplate") == "fromtemplate"
    assert queue(None, None) == "fallback"


def test_resolve_applies_namespace_to_whichever_queue_wins() -> None:
    assert resolve(namespace="team-a", trigger_queue="default/gpu", template_queue="train",
                   default_queue="default") == Route(agent="default", queue="team-a--gpu")
    assert resolve(namespace="team-b", trigger_queue=None, template_queue=None,
                   default_queue="default") == Route(agent="default", queue="team-b--default")


def test_resolve_validates_the_chosen_spec() -> None:
    with pytest.raises(RoutingError, match="unknown agent"):
        resolve(namespace="default", trigger_queue="gpu/train", template_queue="ok",
                default_queue="default")


def _strings(first: str, rest: str, max_len: int) -> list[str]:
    out = list(first)
    frontier = list(first)
    for _ in range(max_len - 1):
        frontier = [f + c for f in frontier for c in rest]
        out += frontier
    return out


def test_namespaced_queue_names_never_collide() -> None:
    """Different (namespace, queue) pairs must map to different Celery queues, or one
    tenant's workers would consume another's runs. Exhaustive over a small alphabet that
    includes the separator's own character."""
    namespaces = ["default", *_strings("a", "a-_", 4)]
    queues = [q for q in _strings("a_", "a-_", 4) if "--" not in q]
    seen: dict[str, tuple[str, str]] = {}
    for queue in queues:
        parse_queue(queue)  # only queues taskq accepts
        for ns in namespaces:
            name = namespaced_queue(ns, queue)
            assert name not in seen, f"{(ns, queue)} and {seen[name]} both route to {name!r}"
            seen[name] = (ns, queue)
    assert len(seen) == len(namespaces) * len(queues)
