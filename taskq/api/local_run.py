"""``taskq run JOB --trigger ...``: run a job here, in this process, as if triggered.

Each ``--trigger`` is ``JOB/RUN-UUID`` (a successful run of that job, as a finish trigger
would see it), an event name, or an event as JSON ``{"name": ..., "fields": {...}}``, so
finish and event triggers can both be tried locally. The run is recorded like any other
(tagged ``local`` and ``development``) and ``current.trigger`` inside it reads the same as
in a triggered run; triggers and hooks do not fire on its events, so trying a job never
starts production work.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from taskq import constants
from taskq.api.client import Client
from taskq.api.records import RunRecord
from taskq.core.events import Event, custom_event, new_event_id, now, run_status_event
from taskq.core.jobs import input_defaults, validate_params
from taskq.core.lineage import lineage
from taskq.core.matching import EventTrigger, Input, Rule
from taskq.core.planning import mapped_params
from taskq.core.statuses import Status
from taskq.errors import EventInputError, JobError, ValidationError
from taskq.services import catalog
from taskq.services import custom_events as external
from taskq.services.recording import append_quietly

LOCAL_TAGS = (constants.LOCAL_TAG, "development")


def parse_trigger(client: Client, text: str, namespace: str) -> tuple[str, Event]:
    """One ``--trigger`` value as (input key, event)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"--trigger: not valid JSON: {exc}") from None
        if not isinstance(data, dict) or set(data) - {"name", "fields"}:
            raise ValidationError('--trigger: expected {"name": ..., "fields": {...}}')
        try:
            fields = external.check(data.get("name"), data.get("fields"))
        except EventInputError as exc:
            raise ValidationError(f"--trigger: {exc}") from None
        return data["name"], custom_event(data["name"], fields, namespace=namespace,
                                          source="local")
    if "/" in text:
        job, _, run_uuid = text.partition("/")
        run = client.get_run(run_uuid)
        if run is None or run.job != job:
            raise ValidationError(f"--trigger: no run {run_uuid!r} of job {job!r}")
        if run.status != Status.SUCCEEDED:
            raise ValidationError(f"--trigger: run {run_uuid} is {run.status.value}; a finish "
                                  "trigger only ever sees successful runs")
        return job, _as_event(client, run)
    try:
        external.check(text, None)
    except EventInputError as exc:
        raise ValidationError(f"--trigger: {exc}") from None
    return text, custom_event(text, {}, namespace=namespace, source="local")


def _as_event(client: Client, run: RunRecord) -> Event:
    recorded = [e for e in client.rt.store.run_events(run.uuid) if e["status"] == run.status]
    summary = {k: v for k, v in run.model_dump(mode="json").items()
               if k in ("uuid", "job", "project", "namespace", "status", "reason", "queue",
                        "params", "outputs", "tags", "created_at", "started_at",
                        "finished_at")}
    # Stamped when the run finished, as its success event was: current.trigger orders
    # upstreams by that, not by the order the --trigger options were given in.
    finished = datetime.fromisoformat(run.finished_at) if run.finished_at else now()
    finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
    return run_status_event(event_id=recorded[-1]["event_id"] if recorded else new_event_id(),
                            run=summary, status=run.status, timestamp=finished)


#: Runs a job's task here, in this process: (task name, kwargs, run uuid). The worker edge
#: provides it (Celery's ``apply`` with taskq's signal handlers connected).
Execute = Callable[[str, dict[str, Any], str], None]


def run_locally(client: Client, job: str, *, params: dict[str, Any], triggers: list[str],
                namespace: str | None, execute: Execute) -> RunRecord:
    """Record the run with the lineage the triggers would give it, then execute it here
    and return it finished."""
    ns = client.scope.one(client.rt, namespace)
    template = catalog.template(client.rt, job, ns)
    jd = client.rt.jobs.get(job)
    if jd is None:
        raise ValidationError(f"job: {job!r} is not imported here (add its module to "
                              "TASKQ_IMPORTS)")
    events = dict(parse_trigger(client, t, ns) for t in triggers)
    context: dict[str, Any] | None = None
    run_params = input_defaults(template.inputs)
    if events:
        inputs = tuple(Input(key=k, namespace=ns, event=EventTrigger(
            ref=e.ref if not e.ref.startswith("runs.") else f"jobs.{k}", kinds=[e.kind]))
            for k, e in events.items())
        rule = Rule(id=0, name="local", namespace=ns, event=inputs[0].event, job=job,
                    kind="local", inputs=inputs, mode="all")
        context = {"trigger": "local", "kind": "local", **lineage(rule, events)}
        try:
            run_params.update(mapped_params(rule, events, template))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    run_params.update(params)
    try:
        run_params = validate_params(template.inputs, run_params, job=job)
    except JobError as exc:
        raise ValidationError(str(exc)) from None
    run_uuid = str(uuid.uuid4())
    queued = client.rt.store.create_run(
        uuid=run_uuid, job=job, namespace=ns, project=template.project, queue="local",
        agent="default", task_name=template.task_name, params=run_params,
        tags=list(LOCAL_TAGS), trigger_context=context, outbox=False)
    append_quietly(client.rt.bus, queued)
    execute(jd.task_name, run_params, run_uuid)
    run = client.get_run(run_uuid)
    assert run is not None
    return run
