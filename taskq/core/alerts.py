"""Alerts declared on a job: a threshold on a metric the job logs. Pure.

``@taskq.job(alerts=[taskq.Alert(metric="loss", above=5.0, level="critical")])`` makes the
running job raise ``alert_critical`` itself when a logged ``loss`` crosses above 5, as if it
had called ``current.alert``: the job's code stays about training, the alarm is declared
beside it. An alert fires on each crossing into its region (a value beyond the threshold
after one that was not, or the first value logged), never again while the metric stays
there: a loss that hovers above 5 for a thousand steps is one alert, not a thousand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticError

from taskq.errors import first_error


class Alert(BaseModel):
    """One threshold: exactly one of ``above`` / ``below`` (strictly beyond it alerts).

    ``metric`` is the name ``current.log_metric`` logs, or ``title/series`` for
    ``current.log_scalar``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = Field(min_length=1, max_length=256)
    above: float | None = None
    below: float | None = None
    level: Literal["info", "warning", "critical"] = "warning"
    #: The alert's message; by default it says the metric, its value and the threshold.
    message: str | None = Field(default=None, min_length=1, max_length=2000)

    @field_validator("above", "below")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _one_side(self) -> Alert:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above / below")
        return self

    @property
    def threshold(self) -> float:
        return self.above if self.above is not None else float(self.below or 0.0)

    def beyond(self, value: float) -> bool:
        return value > self.threshold if self.above is not None else value < self.threshold


def check_alerts(values: Any) -> tuple[Alert, ...]:
    """``alerts=`` as declared: Alert objects or their dicts. Raises ValueError naming
    ``alerts[i].<field>`` and the reason."""
    if values is None:
        return ()
    if isinstance(values, Alert | Mapping | str) or not isinstance(values, Sequence):
        raise ValueError("alerts: expected a list of taskq.Alert")
    out = []
    for i, value in enumerate(values):
        if isinstance(value, Alert):
            out.append(value)
            continue
        if not isinstance(value, Mapping):
            raise ValueError(f"alerts[{i}]: expected a taskq.Alert, got "
                             f"{type(value).__name__}")
        try:
            out.append(Alert.model_validate(dict(value)))
        except PydanticError as exc:
            raise ValueError(first_error(exc, f"alerts[{i}]")) from None
    return tuple(out)


def crossings(alerts: Sequence[Alert], beyond: set[int], point: Mapping[str, Any]
              ) -> list[tuple[int, Alert, dict[str, Any]]]:
    """The alerts one logged point raises, with their fields; ``beyond`` (the indexes of
    alerts whose metric is in their region) is updated: an alert fires only on entering."""
    out = []
    for i, alert in enumerate(alerts):
        if alert.metric != point.get("name"):
            continue
        value = float(point["value"])
        if not alert.beyond(value):
            beyond.discard(i)
            continue
        if i in beyond:
            continue
        beyond.add(i)
        side = "above" if alert.above is not None else "below"
        out.append((i, alert, {"metric": alert.metric, "value": value,
                            "threshold": alert.threshold, "direction": side,
                            "step": point.get("step")}))
    return out


def message(alert: Alert, fields: Mapping[str, Any]) -> str:
    return alert.message or (f"{fields['metric']} = {fields['value']:g}, "
                             f"{fields['direction']} {fields['threshold']:g}")
