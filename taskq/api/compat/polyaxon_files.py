"""``taskq apply -f``: hooks and triggers from YAML, with Polyaxon's spelling.

    hooks:
      - job: train                 # attach to every run of `train`
        trigger: succeeded
        conditions: '{{ loss < 0.2 }}'
        hubRef: evaluate
    triggers:
      - name: tensorboard-on-running
        event: {ref: jobs.train, kinds: [run_status_running]}
        job: tensorboard
        params: {uuid: '{{ trigger.run.uuid }}'}
        approval: true             # each run it fires waits for `taskq runs approve`

Applying the same file twice changes nothing; a changed entry is updated in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from taskq.api.client import Client
from taskq.api.triggers import spec_with_approval
from taskq.core.matching import EventTrigger
from taskq.core.revisions import changes_by
from taskq.core.stored import StoredTrigger
from taskq.errors import ValidationError

_HOOK_PLACEMENT = ("job", "name")


def load(path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ValidationError(f"file: {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"file: {path} is not valid YAML: {exc}") from None
    except RecursionError:
        raise ValidationError(f"file: {path} is nested too deeply to read") from None
    if not isinstance(data, dict) or not (set(data) & {"hooks", "triggers"}):
        raise ValidationError(f"file: {path} needs a `hooks:` or `triggers:` list")
    unknown = sorted(set(data) - {"hooks", "triggers", "version", "kind"})
    if unknown:
        raise ValidationError(f"file: unknown top-level key(s) {', '.join(unknown)}")
    return data


def apply_file(client: Client, path: str) -> list[str]:
    """Every change it makes is a trigger revision made by "yaml"."""
    with changes_by("yaml"):
        return _apply(client, load(path))


def _apply(client: Client, data: dict[str, Any]) -> list[str]:
    done: list[str] = []
    for i, entry in enumerate(data.get("hooks") or []):
        where = f"hooks[{i}]"
        if not isinstance(entry, dict) or "job" not in entry:
            raise ValidationError(f"{where}.job: each hook names the job it attaches to")
        spec = {k: v for k, v in entry.items() if k not in _HOOK_PLACEMENT}
        namespace = spec.pop("namespace", None)
        try:
            row = client.add_hook(job=entry["job"], hook=spec, name=entry.get("name"),
                                  namespace=namespace)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc}") from None
        done.append(f"hook {row['name']}: on {entry['job']} {row['spec']['hook']['trigger']} "
                    f"-> {row['job']}")
    for i, entry in enumerate(data.get("triggers") or []):
        where = f"triggers[{i}]"
        if not isinstance(entry, dict):
            raise ValidationError(f"{where}: must be a mapping")
        known = {"name", "event", "job", "params", "queue", "namespace", "enabled",
                 "approval"}
        extra = sorted(set(entry) - known)
        if extra:
            raise ValidationError(f"{where}.{extra[0]}: unknown field")
        existing = client.get_trigger(entry.get("name", ""), entry.get("namespace"))
        if existing is not None and _same(existing, entry):
            done.append(f"trigger {existing['name']}: unchanged")
            continue
        try:
            if existing is not None:
                # Check the new entry in full first: a typo never changes the old trigger.
                checked = client.add_trigger(**entry, dry_run=True)
                if existing["kind"] == "event":
                    version = _update(client, checked)
                    done.append(f"trigger {existing['name']}: updated (version {version})")
                    continue
                client.delete_trigger(entry["name"], entry.get("namespace"))
            row = client.add_trigger(**entry)
        except (ValidationError, TypeError) as exc:
            raise ValidationError(f"{where}: {exc}") from None
        done.append(f"trigger {row['name']}: {'replaced' if existing else 'added'}")
    return done


def _update(client: Client, checked: dict[str, Any]) -> int:
    """A changed entry updates its trigger in place: one new revision, the same id, so its
    firings and history stay with it (`taskq triggers explain`)."""
    store, name, ns = client.rt.store, checked["name"], checked["namespace"]
    store.upsert_trigger(name=name, namespace=ns, kind="event", spec=checked["spec"],
                         job=checked["job"], params=checked["params"], queue=checked["queue"])
    now = store.get_trigger(name, ns)
    if now is not None and now.enabled != checked["enabled"]:
        store.set_trigger_enabled(name, ns, bool(checked["enabled"]))
    client.rt.coord.bump_triggers()
    now = store.get_trigger(name, ns)
    return now.version if now is not None else 0


def _same(row: dict[str, Any], entry: dict[str, Any]) -> bool:
    try:
        spec = spec_with_approval(EventTrigger.model_validate(entry.get("event")),
                                  entry.get("approval") is True)
    except Exception:
        return False
    return (row["spec"], row["job"], row["params"], row["queue"], row["enabled"]) == (
        spec, entry.get("job"), entry.get("params") or {}, entry.get("queue"),
        entry.get("enabled", True))


def draft(client: Client, path: str, name: str) -> StoredTrigger:
    """The trigger or hook named ``name`` in a file ``taskq apply -f`` reads, checked as
    apply would check it and stored nowhere: what ``taskq triggers test -f`` tries."""
    data = load(path)
    for i, entry in enumerate(data.get("triggers") or []):
        if isinstance(entry, dict) and entry.get("name") == name:
            try:
                row = client.add_trigger(**entry, dry_run=True)
            except (ValidationError, TypeError) as exc:
                raise ValidationError(f"triggers[{i}]: {exc}") from None
            return _stored(client, row["name"], row["namespace"], "event", row["spec"],
                           row["job"], row["params"], row["queue"])
    for i, entry in enumerate(data.get("hooks") or []):
        if isinstance(entry, dict) and entry.get("name") == name and "job" in entry:
            spec = {k: v for k, v in entry.items() if k not in _HOOK_PLACEMENT}
            ns = client.scope.one(client.rt, spec.pop("namespace", None))
            try:
                hook = client._check_hook(spec, ns, attached_job=entry["job"])
            except ValidationError as exc:
                raise ValidationError(f"hooks[{i}]: {exc}") from None
            return _stored(client, name, ns, "hook",
                           {"ref": f"jobs.{entry['job']}", "hook": hook.spec()},
                           hook.hub_ref, hook.params, hook.queue)
    raise ValidationError(f"file: {path} has no trigger or hook named {name!r}")


def _stored(client: Client, name: str, namespace: str, kind: str, spec: dict[str, Any],
            job: str, params: dict[str, Any], queue: str | None) -> StoredTrigger:
    """The draft as a row; it takes the stored trigger's id and next version, so the uuid
    it would give a clone is the one the trigger would."""
    current = client.rt.store.get_trigger(name, namespace)
    return StoredTrigger(id=current.id if current else 0, name=name, namespace=namespace,
                         kind=kind, spec=spec, job=job, params=params, queue=queue,
                         version=(current.version + 1) if current else 1)
