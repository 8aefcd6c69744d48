"""The pieces of ``taskq events serve`` that need no server: the depth scan, the signature
schemes and credential scopes, and publishing a signed delivery once (in-memory ports)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskq import constants
from taskq.errors import UserError
from taskq.http.auth import Credential, Credentials
from taskq.http.limits import Refusal, nested_deeper_than, parse_json
from taskq.services import custom_events as external
from taskq.testing import TestContext, isolated_settings, make_context

NOW = 1_763_712_000
SECRET = b"s" * 32


@pytest.mark.parametrize(("body", "depth"), [
    (b"1", 0), (b"{}", 1), (b'{"a": [1, {"b": []}]}', 4),
    (b'{"a": "[[[[{{{{"}', 1),  # brackets inside a string do not nest
    (b'{"a": "\\"[[[[", "b": [[]]}', 3),  # nor after an escaped quote
    (b'["\\\\", [[]]]', 3),  # an escaped backslash ends before the quote
    (b'[["abc [[[[', 2),  # an unterminated string hides the rest, as for the parser
    (b'"' + b'\\"' * 5000, 0),  # escaped quotes only: one unterminated string
])
def test_the_depth_scan_counts_only_structure(body: bytes, depth: int) -> None:
    assert not nested_deeper_than(body, depth)
    assert nested_deeper_than(body, depth - 1) == (depth > 0)


def test_too_deep_is_a_400_before_the_parser_runs() -> None:
    with pytest.raises(Refusal) as caught:
        parse_json(b"[" * 30_000 + b"]" * 30_000, "application/json", 32)
    assert caught.value.status == 400 and "deeper than 32" in caught.value.reason


def _credentials() -> Credentials:
    return Credentials([(b"tok", Credential("ci", ("team-a",)))],
                       [(SECRET, Credential("git", ("team-b",)))],
                       window_seconds=300, clock=lambda: NOW)


def _taskq(body: bytes, delivery: str, stamp: int) -> dict[str, str]:
    mac = hmac.new(SECRET, f"{stamp}.{delivery}.".encode() + body, hashlib.sha256)
    return {"X-Taskq-Timestamp": str(stamp), "X-Taskq-Delivery": delivery,
            "X-Taskq-Signature": f"sha256={mac.hexdigest()}"}


def test_signatures_cover_timestamp_delivery_and_body() -> None:
    auth = _credentials()
    who = auth.authenticate(_taskq(b"{}", "d-1", NOW), b"{}")
    assert (who.credential.name, who.delivery, who.ttl_seconds) == ("git", "d-1", 301)
    # Signed 100 s ahead of the server's clock: remembered until it stops being accepted.
    assert auth.authenticate(_taskq(b"{}", "d-2", NOW + 100), b"{}").ttl_seconds == 401
    for headers, body, reason in [
        ({**_taskq(b"{}", "d-1", NOW), "X-Taskq-Delivery": "d-9"}, b"{}", "does not match"),
        (_taskq(b"{}", "d-1", NOW), b'{"x": 1}', "does not match"),
        (_taskq(b"{}", "d-1", NOW - 301), b"{}", "more than 300 s"),
        ({"X-Taskq-Signature": "sha256=00"}, b"{}", "X-Taskq-Timestamp"),
        ({**_taskq(b"{}", "d-1", NOW), "X-Taskq-Timestamp": "-5"}, b"{}", "Unix seconds"),
    ]:
        with pytest.raises(Refusal, match=reason):
            auth.authenticate(headers, body)
    hub = "sha256=" + hmac.new(SECRET, b"{}", hashlib.sha256).hexdigest()
    who = auth.authenticate({"X-Hub-Signature-256": hub, "X-GitHub-Delivery": "x"}, b"{}")
    assert who.delivery == "sha256:" + hashlib.sha256(b"{}").hexdigest()


def test_bearer_scheme_in_any_case_and_scopes() -> None:
    auth = _credentials()
    for scheme in ("Bearer", "bearer", "BEARER"):
        cred = auth.authenticate({"Authorization": f"{scheme}  tok "}, b"").credential
        assert cred.home == "team-a" and cred.allows("team-a") and not cred.allows("default")
    with pytest.raises(Refusal, match="invalid bearer token"):
        auth.authenticate({"Authorization": "bearer tok2"}, b"")
    admin = Credential("ops", ("*",))
    assert admin.home == constants.DEFAULT_NAMESPACE and admin.allows("team-b")


def test_credentials_from_settings_read_the_environment_and_check_scopes() -> None:
    settings = isolated_settings(
        namespaces=["default", "team-a"], events_token="legacy",
        events_tokens={"ci": {"token_env": "CI_TOKEN", "namespaces": ["team-a"]}})
    auth = Credentials.from_settings(settings, {"CI_TOKEN": "ci-secret"})
    assert [(c.name, c.namespaces) for _, c in auth.tokens] == [
        ("TASKQ_EVENTS_TOKEN", ("default",)), ("ci", ("team-a",))]
    with pytest.raises(UserError, match="'CI_TOKEN' is not set"):
        Credentials.from_settings(settings, {})
    with pytest.raises(UserError, match="same secret"):
        Credentials.from_settings(settings, {"CI_TOKEN": "legacy"})
    with pytest.raises(ValueError, match="namespaces must be a non-empty list"):
        isolated_settings(events_tokens={"ci": {"token_env": "X", "namespaces": []}})


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path)
    yield context
    context.close()


def test_a_signed_delivery_is_published_once(ctx: TestContext) -> None:
    first = external.ingest(ctx, "push", {"a": 1}, namespace="default", event_id="d-1",
                            delivery="d-1", ttl_seconds=300)
    again = external.ingest(ctx, "push", {"a": 1}, namespace="default", event_id="d-1",
                            delivery="d-1", ttl_seconds=300)
    assert first == (again[0], False) and again[1] is True
    key = f"{constants.INGEST_SEEN_PREFIX}:default:d-1"
    assert ctx.coord.expiries[key] == 300
    # Forgotten by Redis (expired, flushed): the store still keeps one event per id.
    ctx.coord.values.pop(key)
    assert external.ingest(ctx, "push", {"a": 1}, namespace="default", event_id="d-1",
                           delivery="d-1", ttl_seconds=300) == (first[0], True)
    assert ctx.store.count("run_events") == 1
    assert ctx.bus.undelivered() == 1


def test_a_failed_publish_is_not_remembered(ctx: TestContext) -> None:
    with pytest.raises(Exception, match="fields"):
        external.ingest(ctx, "push", {"s": "\ud800"}, namespace="default", event_id="d-2",
                        delivery="d-2", ttl_seconds=300)
    assert f"{constants.INGEST_SEEN_PREFIX}:default:d-2" not in ctx.coord.values
