"""Cron strings for reset windows: the pure parser against Celery's crontab, and the ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery.schedules import crontab
from hypothesis import given, settings
from hypothesis import strategies as st

from taskq.core.cron import (
    Cron,
    check_reset,
    drops_at,
    next_tick,
    parse_cron,
    previous_tick,
    reset_boundary,
)

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
# (celery keyword, low, high, names)
FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day_of_month", 1, 31, ()),
          ("month_of_year", 1, 12, MONTHS), ("day_of_week", 0, 6, DAYS))
COUNT = ("reset: {!r} is not a cron string (five fields: minute hour day-of-month month "
         "day-of-week)")


def _value(low: int, high: int, names: tuple[str, ...]) -> st.SearchStrategy[str]:
    number = st.integers(low, high).flatmap(lambda n: st.sampled_from([str(n), f"{n:02d}"]))
    if not names:
        return number
    name = st.tuples(st.sampled_from(names), st.integers(3, 9),
                     st.sampled_from([str.lower, str.upper, str.title]))
    return number | name.map(lambda t: t[2](t[0][:t[1]]))


def _field(low: int, high: int, names: tuple[str, ...]) -> st.SearchStrategy[str]:
    value = _value(low, high, names)
    step = st.integers(1, high + 3).map(lambda n: f"/{n}")
    rng = st.builds(lambda a, b, s: f"{a}-{b}{s}", value, value, st.just("") | step)
    item = st.just("*") | step.map(lambda s: f"*{s}") | value | rng
    return st.lists(item, min_size=1, max_size=4).map(",".join)


EXPRS = st.tuples(*(_field(lo, hi, names) for _, lo, hi, names in FIELDS))


def _celery(parts: tuple[str, ...]) -> Any:
    return crontab(**{name: p for (name, *_), p in zip(FIELDS, parts, strict=True)})


@settings(max_examples=500)
@given(EXPRS)
def test_parses_like_celery(parts: tuple[str, ...]) -> None:
    expr = " ".join(parts)
    try:
        want = _celery(parts)
    except ValueError:  # e.g. day 30 only in February: both refuse
        with pytest.raises(ValueError, match="is not a valid cron string"):
            parse_cron(expr)
        return
    got = parse_cron(expr)
    for name, *_ in FIELDS:
        assert getattr(got, name) == frozenset(getattr(want, name)), name


@pytest.mark.parametrize("expr", ["", "* * * *", "* * * * * *", "every day"])
def test_wrong_field_count(expr: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_cron(expr)
    assert str(exc.value) == COUNT.format(expr)


@pytest.mark.parametrize(("expr", "reason"), [
    ("60 * * * *", "minute: 60 is out of range 0-59"),
    ("* 24 * * *", "hour: 24 is out of range 0-23"),
    ("* * 0 * *", "day-of-month: 0 is out of range 1-31"),
    ("* * 32 * *", "day-of-month: 32 is out of range 1-31"),
    ("* * * 0 *", "month: 0 is out of range 1-12"),
    ("* * * 13 *", "month: 13 is out of range 1-12"),
    ("* * * * 7", "day-of-week: 7 is out of range 0-6"),  # Celery: Sunday is 0 only
    ("* * * * 0-7", "day-of-week: 7 is out of range 0-6"),
    ("* * * * funday", "day-of-week: 'funday' is not a number or a name"),
    ("x * * * *", "minute: 'x' is not a number"),
    ("*/0 * * * *", "minute: '*/0': a step of 0"),
    ("1-5/0 * * * *", "minute: '1-5/0': a step of 0"),
    ("5/2 * * * *", "minute: '5/2': a step needs a range or '*'"),
    ("-1 * * * *", "minute: '-1' is not '*', a number, a range or a step"),
    ("*/ * * * *", "minute: '*/' is not '*', a number, a range or a step"),
    ("1,,2 * * * *", "minute: an empty list item"),
    ("* * 30 2 *", "day-of-month '30' never occurs in month '2'"),
    ("* * 31 apr,jun,sep,nov *", "day-of-month '31' never occurs in month 'apr,jun,sep,nov'"),
])
def test_refused_like_celery(expr: str, reason: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_cron(expr)
    assert str(exc.value).startswith(f"reset: {expr!r} is not a valid cron string: {reason}")
    with pytest.raises(Exception):  # noqa: B017 - Celery raises ValueError or ParseException
        _celery(tuple(expr.split()))


@pytest.mark.parametrize("expr", [
    "1-5!! * * * *", "1-5-7 * * * *", "*/5/3 * * * *", "+5 * * * *", "1_0 * * * *",
    "jan * * * *", "* * * * jan", "* * * mon *", "* * * * monkey",
])
def test_refuses_what_celery_accepts_by_accident(expr: str) -> None:
    _celery(tuple(expr.split()))
    with pytest.raises(ValueError, match="is not a valid cron string"):
        parse_cron(expr)


def test_names_and_wrapping_ranges() -> None:
    cron = parse_cron("50-10/5 22-2 * SEPT-feb Fri-Mon")
    assert cron.minute == {50, 55, 0, 5, 10}
    assert cron.hour == {22, 23, 0, 1, 2}
    assert cron.month_of_year == {9, 10, 11, 12, 1, 2}
    assert cron.day_of_week == {5, 6, 0, 1}
    assert parse_cron("* * * * sunday,saturday").day_of_week == {0, 6}


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
        ) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(("expr", "at", "tick"), [
    ("0 * * * *", _at(2026, 11, 24, 10, 37), _at(2026, 11, 24, 10, 0)),
    ("0 * * * *", _at(2026, 11, 24, 0, 37), _at(2026, 11, 24, 0, 0)),
    # 2026-11-25 is a Wednesday.
    ("30 9 * * mon", _at(2026, 11, 25, 12, 0), _at(2026, 11, 23, 9, 30)),
    ("30 9 * * mon", _at(2026, 11, 23, 9, 29), _at(2026, 11, 16, 9, 30)),
    ("30 9 * * mon", _at(2026, 11, 23, 9, 30), _at(2026, 11, 23, 9, 30)),
    ("30 9 * * mon", _at(2026, 11, 23, 9, 30, 59), _at(2026, 11, 23, 9, 30)),
    ("45 23 * * *", _at(2026, 1, 1, 0, 5), _at(2025, 12, 31, 23, 45)),
    ("0 0 29 2 *", _at(2027, 3, 1), _at(2024, 2, 29)),
    # Both day fields must match (Celery), not either (plain cron): Friday the 13th.
    ("0 0 13 * fri", _at(2026, 11, 24), _at(2026, 11, 13)),
    ("0 0 13 * fri", _at(2026, 11, 12), _at(2026, 3, 13)),
    # Monday 29 February: 2016, then 2044; five years back finds none.
    ("0 0 29 2 mon", _at(2030, 1, 1), None),
])
def test_previous_tick(expr: str, at: datetime, tick: datetime | None) -> None:
    assert previous_tick(parse_cron(expr), at) == tick


def _matches(cron: Cron, t: datetime) -> bool:
    return (t.minute in cron.minute and t.hour in cron.hour and t.day in cron.day_of_month
            and t.month in cron.month_of_year and t.isoweekday() % 7 in cron.day_of_week)


WINDOW = 3 * 24 * 60


@settings(max_examples=100, deadline=None)
@given(EXPRS, st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1)))
def test_previous_tick_is_the_latest_match(parts: tuple[str, ...], at: datetime) -> None:
    try:
        cron = parse_cron(" ".join(parts))
    except ValueError:
        return
    at = at.replace(tzinfo=UTC)
    tick = previous_tick(cron, at)
    start = at.replace(second=0, microsecond=0)
    brute = next((start - timedelta(minutes=i) for i in range(WINDOW)
                  if _matches(cron, start - timedelta(minutes=i))), None)
    if brute is not None:
        assert tick == brute
    else:
        assert tick is None or (tick <= start - timedelta(minutes=WINDOW) and _matches(cron, tick))


@settings(max_examples=100, deadline=None)
@given(EXPRS, st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1)))
def test_next_tick_is_the_first_match_after_the_minute(parts: tuple[str, ...],
                                                       at: datetime) -> None:
    try:
        cron = parse_cron(" ".join(parts))
    except ValueError:
        return
    at = at.replace(tzinfo=UTC)
    tick = next_tick(cron, at)
    start = at.replace(second=0, microsecond=0)
    brute = next((start + timedelta(minutes=i) for i in range(1, WINDOW)
                  if _matches(cron, start + timedelta(minutes=i))), None)
    if brute is not None:
        assert tick == brute
    else:
        assert tick is None or (tick >= start + timedelta(minutes=WINDOW) and _matches(cron, tick))


def test_drops_at_is_when_the_window_stops_counting_an_input() -> None:
    at = _at(2026, 11, 24, 10, 30)
    assert drops_at(None, at) is None
    assert drops_at(90, at) == at + timedelta(seconds=90)
    assert drops_at("0 * * * *", at) == _at(2026, 11, 24, 11, 0)
    assert drops_at("0 * * * *", _at(2026, 11, 24, 11, 0)) == _at(2026, 11, 24, 12, 0)
    assert drops_at("0 6 * * 1", at) == _at(2026, 11, 30, 6, 0)
    # The instant the boundary the evaluator expires by passes the input's arming time.
    assert reset_boundary(90, at + timedelta(seconds=90)) == at  # still counted
    assert reset_boundary(90, at + timedelta(seconds=90, microseconds=1)) > at
    for reset in ("*/15 * * * *", "0 6 * * 1"):
        end = drops_at(reset, at)
        assert end is not None and reset_boundary(reset, end) > at
        assert reset_boundary(reset, end - timedelta(minutes=1)) <= at


def test_reset_boundary() -> None:
    at = _at(2026, 11, 24, 10, 30)
    assert reset_boundary(None, at) is None
    assert reset_boundary(90, at) == at - timedelta(seconds=90)
    assert reset_boundary(0.5, at) == at - timedelta(milliseconds=500)
    assert reset_boundary("*/15 * * * *", at) == at
    assert reset_boundary("0 6 * * 1", at) == _at(2026, 11, 23, 6, 0)


@pytest.mark.parametrize("ok", [None, 1, 0.5, "* * * * *", "0 6 * * mon-fri"])
def test_check_reset_accepts(ok: Any) -> None:
    check_reset(ok)


@pytest.mark.parametrize(("bad", "message"), [
    (True, "reset: seconds (a number) or a cron string"),
    (False, "reset: seconds (a number) or a cron string"),
    ([60], "reset: seconds (a number) or a cron string"),
    (b"* * * * *", "reset: seconds (a number) or a cron string"),
    (0, "reset: must be a positive number of seconds"),
    (-5, "reset: must be a positive number of seconds"),
    (-0.1, "reset: must be a positive number of seconds"),
    ("* * *", COUNT.format("* * *")),
    ("61 * * * *", "reset: '61 * * * *' is not a valid cron string: minute: 61 is out of range"),
])
def test_check_reset_refuses(bad: Any, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_reset(bad)
    assert str(exc.value).startswith(message)
