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
_TRIGGER_FIELDS = {"name", "event", "job", "params", "queue", "namespace", "enabled",
                   "approval"}


def load(path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ValidationError(f"file: {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"file: {path} is not valid YAML: {exc}") from None
    except RecursionError:
        raise ValidationError(f"file: {path} is nested too deeply to read") from None
    return shaped(data, "file", path)


def shaped(data: Any, label: str, shown: str) -> dict[str, Any]:
    """``data`` if it has the shape of a file ``taskq apply -f`` reads (a body sent over
    HTTP is held to the same), else the error, naming ``label``."""
    if not isinstance(data, dict) or not (set(data) & {"hooks", "triggers"}):
        raise ValidationError(f"{label}: {shown} needs a `hooks:` or `triggers:` list")
    unknown = sorted(set(data) - {"hooks", "triggers", "version", "kind"})
    if unknown:
        raise ValidationError(f"{label}: unknown top-level key(s) {', '.join(unknown)}")
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
    return done + _apply_triggers(client, data.get("triggers") or [])


def _apply_triggers(client: Client, entries: list[Any]) -> list[str]:
    """New triggers are stored together (:meth:`Client.add_triggers`: one transaction, one
    version bump), so a file of thousands applies in a moment and a bad entry stores none of
    the new ones; changed ones are updated in place, one revision each."""
    existing = {(t["namespace"], t["name"]): t for t in client.list_triggers()
                } if entries else {}
    done: list[str | None] = []
    new: list[tuple[int, dict[str, Any]]] = []
    for i, entry in enumerate(entries):
        where = f"triggers[{i}]"
        if not isinstance(entry, dict):
            raise ValidationError(f"{where}: must be a mapping")
        extra = sorted(set(entry) - _TRIGGER_FIELDS)
        if extra:
            raise ValidationError(f"{where}.{extra[0]}: unknown field")
        ns = client.scope.one(client.rt, entry.get("namespace"))
        old = existing.get((ns, entry.get("name", "")))
        if old is None:
            new.append((i, entry))
            done.append(None)  # said once the batch is stored
            continue
        if _same(old, entry):
            done.append(f"trigger {old['name']}: unchanged")
            continue
        try:
            # Check the new entry in full first: a typo never changes the old trigger.
            checked = client.add_trigger(**entry, dry_run=True)
            if old["kind"] == "event":
                version = _update(client, checked)
                done.append(f"trigger {old['name']}: updated (version {version})")
                continue
            client.delete_trigger(entry["name"], entry.get("namespace"))
            row = client.add_trigger(**entry)
        except (ValidationError, TypeError) as exc:
            raise ValidationError(f"{where}: {exc}") from None
        done.append(f"trigger {row['name']}: replaced")
    if new:
        try:
            client.add_triggers([entry for _, entry in new])
        except ValidationError as exc:
            raise ValidationError(_in_file(str(exc), [i for i, _ in new])) from None
        for i, entry in new:
            done[i] = f"trigger {entry['name']}: added"
    return [line for line in done if line is not None]


def _in_file(message: str, indexes: list[int]) -> str:
    """add_triggers names the index in its batch; the user wants the one in the file."""
    head, sep, rest = message.partition("]")
    if sep and head.startswith("triggers[") and head[9:].isdigit():
        return f"triggers[{indexes[int(head[9:])]}]: {rest.removeprefix('.').lstrip(': ')}"
    return message


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
    return draft_of(client, load(path), name, "file", path)


def draft_of(client: Client, data: dict[str, Any], name: str, label: str, shown: str
             ) -> StoredTrigger:
    """:func:`draft` of content already read (``shaped``): a file's, or an HTTP body's."""
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
    raise ValidationError(f"{label}: {shown} has no trigger or hook named {name!r}")


def _stored(client: Client, name: str, namespace: str, kind: str, spec: dict[str, Any],
            job: str, params: dict[str, Any], queue: str | None) -> StoredTrigger:
    """The draft as a row; it takes the stored trigger's id and next version, so the uuid
    it would give a clone is the one the trigger would."""
    current = client.rt.store.get_trigger(name, namespace)
    return StoredTrigger(id=current.id if current else 0, name=name, namespace=namespace,
                         kind=kind, spec=spec, job=job, params=params, queue=queue,
                         version=(current.version + 1) if current else 1)
