"""Job templates and triggers: what the evaluator loads and what the API registers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from taskq.core.stored import JobTemplate as Template
from taskq.core.stored import StoredTrigger
from taskq.core.times import iso as _iso
from taskq.core.times import utcnow
from taskq.errors import AlreadyExists, NotFound
from taskq.store.base import stored_trigger
from taskq.store.models import Firing, JobTemplate, Run, Trigger
from taskq.store.revisions import RevisionsMixin


class TriggersMixin(RevisionsMixin):
    """Every change to a trigger writes its revision in the same transaction."""

    # -- job templates --------------------------------------------------------------------

    def upsert_job_template(self, *, name: str, namespace: str, queue: str, task_name: str,
                            inputs: dict[str, Any], outputs: dict[str, Any],
                            project: str | None, description: str | None,
                            presets: Sequence[str] = (), approval: bool = False) -> None:
        now = utcnow()
        values = dict(queue=queue, task_name=task_name, inputs=inputs, outputs=outputs,
                      project=project, description=description, presets=list(presets),
                      approval=approval, updated_at=now)
        stmt = self._insert_ignore(JobTemplate).values(
            name=name, namespace=namespace, created_at=now, **values
        ).on_conflict_do_update(index_elements=["namespace", "name"], set_=values)
        with self.tx() as conn:
            conn.execute(stmt)

    def get_job_template(self, name: str, namespace: str) -> Template | None:
        with self.read() as conn:
            row = conn.execute(select(JobTemplate).where(
                JobTemplate.name == name, JobTemplate.namespace == namespace)).first()
        return _template(row) if row else None

    def find_job_template(self, name: str, namespace: str) -> Template | None:
        """A namespace's own template, else the shared one in the default namespace."""
        found = self.get_job_template(name, namespace)
        if found is None and namespace != "default":
            found = self.get_job_template(name, "default")
        return found

    def list_job_templates(self, namespace: str | None = None) -> list[Template]:
        stmt = select(JobTemplate).order_by(JobTemplate.namespace, JobTemplate.name)
        if namespace:
            stmt = stmt.where(JobTemplate.namespace == namespace)
        with self.read() as conn:
            return [_template(t) for t in conn.execute(stmt)]

    # -- triggers -------------------------------------------------------------------------

    def add_trigger(self, *, name: str, namespace: str, kind: str, spec: dict[str, Any],
                    job: str, params: dict[str, Any], queue: str | None,
                    enabled: bool = True) -> StoredTrigger:
        now = utcnow()
        try:
            with self.tx() as conn:
                tid = conn.execute(insert(Trigger).values(
                    name=name, namespace=namespace, kind=kind, spec=spec, job=job,
                    params=params, queue=queue, enabled=enabled, version=1,
                    created_at=now, updated_at=now).returning(Trigger.id)).scalar_one()
                self._revise(conn, tid, "created")
        except IntegrityError:
            raise AlreadyExists(
                f"name: a trigger named {name!r} already exists in namespace {namespace!r}"
            ) from None
        found = self.get_trigger(name, namespace)
        if found is None:  # deleted between the commit and the read
            raise NotFound(f"trigger {name!r} (id {tid}) was deleted as it was added")
        return found

    def add_triggers(self, rows: Sequence[dict[str, Any]]) -> list[StoredTrigger]:
        """Many triggers in one transaction, one statement per table (each with its
        ``created`` revision): all are stored or, if a name is taken, none (AlreadyExists
        names the first taken)."""
        if not rows:
            return []
        now = utcnow()
        keys = [(r["namespace"], r["name"]) for r in rows]
        try:
            with self.tx() as conn:
                names = sorted({n for _, n in keys})
                taken = {(t.namespace, t.name) for i in range(0, len(names), 500)
                         for t in conn.execute(select(Trigger.namespace, Trigger.name)
                                               .where(Trigger.name.in_(names[i:i + 500])))}
                clash = next((k for k in keys if k in taken), None)
                if clash is not None:
                    raise AlreadyExists(f"name: a trigger named {clash[1]!r} already exists "
                                        f"in namespace {clash[0]!r}")
                conn.execute(insert(Trigger), [
                    {**r, "version": 1, "created_at": now, "updated_at": now} for r in rows])
                stored = [stored_trigger(t) for i in range(0, len(names), 500)
                          for t in conn.execute(select(Trigger).where(
                              Trigger.name.in_(names[i:i + 500])))]
                by_key = {(t.namespace, t.name): t for t in stored}
                found = [by_key[k] for k in keys]
                self._revise_created(conn, found)
        except IntegrityError:  # added concurrently under one of these names
            raise AlreadyExists("name: a trigger of this call was added meanwhile by another "
                                "client; none was stored") from None
        return found

    def get_trigger(self, name: str, namespace: str) -> StoredTrigger | None:
        with self.read() as conn:
            row = conn.execute(select(Trigger).where(
                Trigger.name == name, Trigger.namespace == namespace)).first()
        return stored_trigger(row) if row else None

    def list_triggers(self, namespace: str | None = None,
                      enabled_only: bool = False) -> list[StoredTrigger]:
        stmt = select(Trigger).order_by(Trigger.id)
        if namespace:
            stmt = stmt.where(Trigger.namespace == namespace)
        if enabled_only:  # what the evaluator runs: enabled and not quarantined
            stmt = stmt.where(Trigger.enabled.is_(True), Trigger.quarantined.is_(None))
        with self.read() as conn:
            return [stored_trigger(t) for t in conn.execute(stmt)]

    def set_trigger_enabled(self, name: str, namespace: str, enabled: bool) -> None:
        """Enabling also releases a quarantined trigger (its failures start again at 0)."""
        release = {"failures": 0, "quarantined": None, "quarantined_at": None}
        with self.tx() as conn:
            was = conn.execute(select(Trigger.id, Trigger.quarantined).where(
                Trigger.name == name, Trigger.namespace == namespace)).first()
            if was is None:
                raise NotFound(f"no trigger named {name!r} in namespace {namespace!r}")
            conn.execute(update(Trigger).where(Trigger.id == was.id).values(
                enabled=enabled, version=Trigger.version + 1, updated_at=utcnow(),
                **(release if enabled else {})))
            self._revise(conn, was.id, "disabled" if not enabled else
                         "released" if was.quarantined is not None else "enabled")

    def note_trigger_failure(self, trigger_id: int, reason: str, *, quarantine_after: int
                             ) -> bool:
        """One more failed evaluation in a row; True when it quarantines the trigger (its
        version moves, so every evaluator reloads without it)."""
        with self.tx() as conn:
            failures = conn.execute(update(Trigger).where(Trigger.id == trigger_id).values(
                failures=Trigger.failures + 1).returning(Trigger.failures)).scalar()
            if failures is None or quarantine_after <= 0 or failures < quarantine_after:
                return False
            res = conn.execute(update(Trigger).where(
                Trigger.id == trigger_id, Trigger.quarantined.is_(None)).values(
                quarantined=f"{failures} evaluations in a row failed; last: {reason}"[:2000],
                quarantined_at=utcnow(), version=Trigger.version + 1, updated_at=utcnow()))
            if res.rowcount:
                self._revise(conn, trigger_id, "quarantined", source="evaluator")
            return bool(res.rowcount)

    def clear_trigger_failures(self, trigger_id: int) -> None:
        with self.tx() as conn:
            conn.execute(update(Trigger).where(Trigger.id == trigger_id,
                                               Trigger.failures > 0).values(failures=0))

    def delete_trigger(self, name: str, namespace: str) -> None:
        with self.tx() as conn:
            tid = conn.execute(select(Trigger.id).where(
                Trigger.name == name, Trigger.namespace == namespace)).scalar()
            if tid is None:
                raise NotFound(f"no trigger named {name!r} in namespace {namespace!r}")
            self._revise(conn, tid, "deleted")
            conn.execute(delete(Trigger).where(Trigger.id == tid))

    def triggers_fingerprint(self) -> tuple[int, int, int]:
        """Changes whenever a trigger is added, edited, toggled or deleted."""
        with self.read() as conn:
            row = conn.execute(select(func.count(Trigger.id),
                                      func.coalesce(func.max(Trigger.id), 0),
                                      func.coalesce(func.sum(Trigger.version), 0))).one()
        return int(row[0]), int(row[1]), int(row[2])

    def upsert_trigger(self, *, name: str, namespace: str, kind: str, spec: dict[str, Any],
                       job: str, params: dict[str, Any], queue: str | None) -> bool:
        """Create, or update if the spec changed (version + 1). True when anything changed."""
        existing = self.get_trigger(name, namespace)
        if existing is None:
            try:
                self.add_trigger(name=name, namespace=namespace, kind=kind, spec=spec, job=job,
                                 params=params, queue=queue)
            except AlreadyExists:
                return False  # created concurrently by another process: same spec
            return True
        if existing.kind != kind:
            raise AlreadyExists(f"name: {name!r} is already a trigger of kind "
                                f"{existing.kind!r} in namespace {namespace!r}")
        if (existing.spec, existing.job, existing.params, existing.queue) == (
                spec, job, params, queue):
            return False
        with self.tx() as conn:
            conn.execute(update(Trigger).where(Trigger.id == existing.id).values(
                spec=spec, job=job, params=params, queue=queue, kind=kind,
                version=Trigger.version + 1, updated_at=utcnow()))
            self._revise(conn, existing.id, "updated")
        return True

    def prune_run_hooks(self, *, finished_before: datetime) -> int:
        """Delete hooks attached to single runs once those runs ended long enough ago, so
        per-run hooks do not grow the rule set forever. Their firing rows go with them; the
        hook runs they created stay, with their lineage."""
        hooks = [t for t in self.list_triggers() if t.kind == "hook"
                 and str(t.spec.get("ref", "")).startswith("runs.")]
        if not hooks:
            return 0
        uuids = {t.spec["ref"][len("runs."):] for t in hooks}
        with self.read() as conn:
            done = {r.uuid for r in conn.execute(select(Run.uuid).where(
                Run.uuid.in_(uuids), Run.finished_at.is_not(None),
                Run.finished_at < finished_before))}
        stale = [t.id for t in hooks if t.spec["ref"][len("runs."):] in done]
        if stale:
            with self.tx() as conn:
                for tid in stale:
                    self._revise(conn, tid, "deleted", source="beat")
                conn.execute(delete(Trigger).where(Trigger.id.in_(stale)))
        return len(stale)

    def firings(self, trigger_id: int, limit: int = 50) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = conn.execute(select(Firing).where(Firing.trigger_id == trigger_id)
                                .order_by(Firing.id.desc()).limit(limit))
            return [{"id": f.id, "event_id": f.event_id, "event_kind": f.event_kind,
                     "run_uuid": f.run_uuid, "outcome": f.outcome, "reason": f.reason,
                     "version": f.trigger_version, "at": _iso(f.created_at)} for f in rows]

    def firings_for_run(self, run_uuid: str) -> list[dict[str, Any]]:
        """What each trigger and hook did about this run's events: fired, skipped, error."""
        stmt = (select(Firing, Trigger.name.label("trigger_name"), Trigger.kind)
                .join(Trigger, Trigger.id == Firing.trigger_id)
                .where(Firing.dedup_key.startswith(f"runs.{run_uuid}:", autoescape=True))
                .order_by(Firing.id))
        with self.read() as conn:
            return [{"trigger": f.trigger_name, "kind": f.kind, "event_kind": f.event_kind,
                     "outcome": f.outcome, "reason": f.reason, "run_uuid": f.run_uuid,
                     "at": _iso(f.created_at)} for f in conn.execute(stmt)]


def _template(t: Any) -> Template:
    return Template(name=t.name, namespace=t.namespace, queue=t.queue, task_name=t.task_name,
                    inputs=t.inputs or {}, outputs=t.outputs or {}, project=t.project,
                    presets=tuple(t.presets or ()), description=t.description,
                    approval=bool(t.approval))
