"""The event envelope: validation, matching keys and the stream wire format."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from taskq.core.events import Event
from taskq.core.names import validate_kind, validate_namespace, validate_ref
from taskq.core.statuses import FINAL, RUN_STATUS_KINDS, Status, status_kind
from taskq.errors import EventError
from tests.unit.factories import FIXED_TS, make_event, run_uuid


def _fields(**overrides: Any) -> dict[str, str]:
    body: dict[str, Any] = {"id": "ev-1", "kind": "run_status_running",
                            "ref": f"runs.{run_uuid()}", "timestamp": FIXED_TS.isoformat()}
    body.update(overrides)
    return {"event": json.dumps(body)}


# -- validators ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["run_status_running", "run_status_done", "custom.thing",
                                  "model_registered", "a", "x-y_z.1"])
def test_validate_kind_accepts_well_formed(kind: str) -> None:
    assert validate_kind(kind) == kind


@pytest.mark.parametrize("kind", ["", "Run", "1abc", "has space", "a" * 129, "_x"])
def test_validate_kind_refuses_malformed(kind: str) -> None:
    with pytest.raises(EventError, match="is malformed"):
        validate_kind(kind)


def test_validate_kind_refuses_unknown_run_status() -> None:
    """A typo in a run-status kind would make a trigger that can never fire."""
    with pytest.raises(EventError, match=r"run_status_bogus.*not a run status event"):
        validate_kind("run_status_bogus")


def test_run_status_kinds_cover_every_status_and_done() -> None:
    assert {status_kind(s) for s in Status} | {"run_status_done"} == RUN_STATUS_KINDS
    assert status_kind(Status.FAILED) == "run_status_failed"
    assert status_kind("done") == "run_status_done"


@pytest.mark.parametrize("ref", [f"runs.{run_uuid()}", "jobs.train", "jobs.my-job.v2",
                                 "models.m1", "datasets.d", "events.e"])
def test_validate_ref_accepts_known_families(ref: str) -> None:
    assert validate_ref(ref) == ref


@pytest.mark.parametrize(("ref", "why"), [
    ("nope", "expected 'runs.<uuid>'"),
    ("jobs.", "expected"),
    ("things.x", "expected"),
    ("jobs.has space", "expected"),
    ("runs.not-a-uuid", "not a run uuid"),
    ("runs.123", "not a run uuid"),
])
def test_validate_ref_refuses_malformed(ref: str, why: str) -> None:
    with pytest.raises(EventError, match="is malformed") as info:
        validate_ref(ref)
    assert why in str(info.value)
    assert repr(ref) in str(info.value)


@pytest.mark.parametrize("namespace", ["default", "team-a", "t_1", "0"])
def test_validate_namespace_accepts(namespace: str) -> None:
    assert validate_namespace(namespace) == namespace


@pytest.mark.parametrize("namespace", ["", "Team", "-a", "a b", "a.b", "a" * 64])
def test_validate_namespace_refuses(namespace: str) -> None:
    with pytest.raises(EventError, match=r"namespace .* is malformed"):
        validate_namespace(namespace)


def test_event_validates_its_fields() -> None:
    """Constructing an Event runs the same validators as the wire format."""
    with pytest.raises(ValidationError, match="not a run uuid"):
        make_event(ref="runs.nope")
    with pytest.raises(ValidationError, match="namespace"):
        make_event(namespace="Bad")
    with pytest.raises(ValidationError, match="Extra inputs"):
        Event(id="x", kind="k", ref="jobs.a", timestamp=FIXED_TS, surprise=1)  # type: ignore[call-arg]


def test_event_defaults_to_default_namespace() -> None:
    event = Event(id="x", kind="k", ref="jobs.a", timestamp=FIXED_TS)
    assert event.namespace == "default"
    assert event.payload == {}


# -- frozen -------------------------------------------------------------------------------


def test_event_is_frozen() -> None:
    """An event is a fact: once written, nothing may edit it in place."""
    event = make_event()
    with pytest.raises(ValidationError):
        event.kind = "run_status_failed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        event.namespace = "team-a"  # type: ignore[misc]
    assert event.kind == "run_status_running"


# -- matching keys ------------------------------------------------------------------------


@pytest.mark.parametrize("final", sorted(FINAL), ids=lambda s: s.value)
def test_final_status_also_matches_done(final: Status) -> None:
    event = make_event(kind=status_kind(final))
    assert event.match_kinds() == (status_kind(final), "run_status_done")


@pytest.mark.parametrize("status", sorted(set(Status) - FINAL), ids=lambda s: s.value)
def test_non_final_status_does_not_match_done(status: Status) -> None:
    event = make_event(kind=status_kind(status))
    assert event.match_kinds() == (status_kind(status),)


def test_custom_kind_matches_only_itself() -> None:
    event = make_event(kind="succeeded_elsewhere", ref="events.x", job=None)
    assert event.match_kinds() == ("succeeded_elsewhere",)


def test_run_event_also_matches_its_job() -> None:
    """``jobs.train`` triggers fire on any run of train, via the payload's job."""
    event = make_event(job="train")
    assert event.match_refs() == (f"runs.{run_uuid()}", "jobs.train")


@pytest.mark.parametrize("job", [None, "", 42])
def test_run_event_without_usable_job_matches_only_the_run(job: Any) -> None:
    event = make_event(payload={"job": job}, job=None)
    assert event.match_refs() == (f"runs.{run_uuid()}",)


def test_non_run_event_ignores_payload_job() -> None:
    """Only run events are re-addressed as their job; a custom event's payload is data."""
    event = make_event(kind="custom", ref="jobs.other", job="train")
    assert event.match_refs() == ("jobs.other",)


# -- wire format --------------------------------------------------------------------------


def test_to_fields_from_fields_round_trip() -> None:
    event = make_event(kind="run_status_succeeded", namespace="team-a", project="p",
                       payload={"nested": {"a": [1, 2.5, None, True]}, "job": "train"})
    fields = event.to_fields()
    assert list(fields) == ["event"]
    assert Event.from_fields(fields) == event


def test_from_fields_accepts_bytes_keys_and_values() -> None:
    """redis-py returns bytes unless decode_responses is set."""
    event = make_event()
    raw = {b"event": event.to_fields()["event"].encode()}
    assert Event.from_fields(raw) == event


def test_from_fields_missing_event_field() -> None:
    with pytest.raises(EventError, match="no 'event' field"):
        Event.from_fields({"other": "x"})


@pytest.mark.parametrize("raw", ["not json", "{", b"\xff\xfe"])
def test_from_fields_invalid_json(raw: str | bytes) -> None:
    with pytest.raises(EventError, match="not valid JSON"):
        Event.from_fields({"event": raw})


@pytest.mark.parametrize(("overrides", "field", "reason"), [
    ({"kind": "run_status_bogus"}, "kind", "not a run status event"),
    ({"kind": "Bad Kind"}, "kind", "malformed"),
    ({"ref": "runs.not-a-uuid"}, "ref", "not a run uuid"),
    ({"ref": "nope"}, "ref", "malformed"),
    ({"namespace": "Bad NS"}, "namespace", "malformed"),
    ({"timestamp": "yesterday"}, "timestamp", "datetime"),
    ({"payload": [1]}, "payload", "dictionary"),
    ({"surprise": 1}, "surprise", "Extra inputs"),
    ({"id": ""}, "id", "at least 1"),
])
def test_from_fields_names_the_bad_field(overrides: dict[str, Any], field: str,
                                         reason: str) -> None:
    """Dead-lettered entries carry this message; it must say which field is wrong."""
    with pytest.raises(EventError) as info:
        Event.from_fields(_fields(**overrides))
    message = str(info.value)
    assert f"event field {field!r}" in message
    assert reason in message


def test_from_fields_missing_required_field() -> None:
    body = json.loads(_fields()["event"])
    del body["id"]
    with pytest.raises(EventError, match="event field 'id': Field required"):
        Event.from_fields({"event": json.dumps(body)})


@pytest.mark.parametrize("raw", ["[1, 2]", '"a string"', "null", "3"])
def test_from_fields_non_object_json(raw: str) -> None:
    with pytest.raises(EventError, match="event field 'event'"):
        Event.from_fields({"event": raw})


def test_an_event_cannot_claim_the_done_pseudo_status() -> None:
    """Only triggers say run_status_done; an event carries the real final status."""
    with pytest.raises(ValidationError, match="only for triggers"):
        Event(id="e", kind="run_status_done", ref="jobs.train", timestamp=FIXED_TS)
