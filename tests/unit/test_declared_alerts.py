"""Alerts declared on a job (`@taskq.job(alerts=[taskq.Alert(...)])`): a bad declaration is
refused where it is written, naming the field; a logged value alerts on each crossing into
the region beyond the threshold, never again while it stays there."""

from __future__ import annotations

import pytest

import taskq
from taskq.core.alerts import Alert, crossings, message
from taskq.errors import JobError


def point(name: str, value: float, step: int | None = None) -> dict[str, object]:
    return {"name": name, "value": value, "step": step}


@pytest.mark.parametrize(("alerts", "error"), [
    ([{"metric": "loss"}], r"^job 'bad' alerts\[0\]: give exactly one of above / below$"),
    ([{"metric": "loss", "above": 1, "below": 0}],
     r"^job 'bad' alerts\[0\]: give exactly one of above / below$"),
    ([{"metric": "loss", "above": 1}, {"metric": "", "above": 1}],
     r"^job 'bad' alerts\[1\]\.metric: String should have at least 1 character$"),
    ([{"metric": "loss", "above": 1, "level": "fatal"}],
     r"^job 'bad' alerts\[0\]\.level: Input should be 'info', 'warning' or 'critical'$"),
    ([{"metric": "loss", "above": float("inf")}],
     r"^job 'bad' alerts\[0\]\.above: must be a finite number$"),
    ([{"metric": "loss", "abov": 1}], r"^job 'bad' alerts\[0\]\.abov: Extra inputs"),
    ([3], r"^job 'bad' alerts\[0\]: expected a taskq\.Alert, got int$"),
    (taskq.Alert(metric="loss", above=1), r"^job 'bad' alerts: expected a list of"),
])
def test_a_bad_alert_is_refused_at_decoration_naming_the_field(alerts: object,
                                                               error: str) -> None:
    with pytest.raises(JobError, match=error):
        @taskq.job(name="bad", alerts=alerts)  # type: ignore[arg-type]
        def bad() -> None:
            pass


def test_an_alert_object_or_its_dict_is_declared_on_the_job() -> None:
    @taskq.job(name="declares-alerts", alerts=[
        taskq.Alert(metric="loss", above=5, level="critical"),
        {"metric": "acc", "below": 0.5}])
    def declares() -> None:
        pass

    assert declares.taskq_job.alerts == (Alert(metric="loss", above=5.0, level="critical"),
                                         Alert(metric="acc", below=0.5, level="warning"))


def test_an_alert_fires_on_each_crossing_into_its_region_and_not_while_it_stays() -> None:
    alerts = (Alert(metric="loss", above=5.0, level="critical"),
              Alert(metric="acc", below=0.5))
    beyond: set[int] = set()
    fired = []
    for step, (name, value) in enumerate([("loss", 1.0), ("loss", 6.0), ("loss", 7.0),
                                          ("acc", 0.9), ("loss", 5.0), ("loss", 8.0),
                                          ("acc", 0.4), ("acc", 0.3), ("other", 99.0)]):
        fired += [(a.metric, f["value"], f["step"])
                  for _, a, f in crossings(alerts, beyond, point(name, value, step))]
    # 5.0 is not above 5: it re-arms the alert, so 8.0 is a second crossing.
    assert fired == [("loss", 6.0, 1), ("loss", 8.0, 5), ("acc", 0.4, 6)]


def test_the_first_value_logged_beyond_the_threshold_alerts_and_says_why() -> None:
    alert = Alert(metric="train/loss", above=5.0, level="critical")
    [(index, got, fields)] = crossings((alert,), set(), point("train/loss", 12.5, 3))
    assert index == 0 and got is alert
    assert fields == {"metric": "train/loss", "value": 12.5, "threshold": 5.0,
                      "direction": "above", "step": 3}
    assert message(alert, fields) == "train/loss = 12.5, above 5"
    assert message(Alert(metric="x", below=1, message="too low"), fields) == "too low"
