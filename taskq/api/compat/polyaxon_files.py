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

Applying the same file twice changes nothing; a changed entry is updated in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from taskq.api.client import Client
from taskq.core.matching import EventTrigger
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
    data = load(path)
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
        known = {"name", "event", "job", "params", "queue", "namespace", "enabled"}
        extra = sorted(set(entry) - known)
        if extra:
            raise ValidationError(f"{where}.{extra[0]}: unknown field")
        existing = client.get_trigger(entry.get("name", ""), entry.get("namespace"))
        if existing is not None and _same(existing, entry):
            done.append(f"trigger {existing['name']}: unchanged")
            continue
        try:
            if existing is not None:
                # Check the new entry in full first: a typo never deletes the old trigger.
                client.add_trigger(**entry, dry_run=True)
                client.delete_trigger(entry["name"], entry.get("namespace"))
            row = client.add_trigger(**entry)
        except (ValidationError, TypeError) as exc:
            raise ValidationError(f"{where}: {exc}") from None
        done.append(f"trigger {row['name']}: {'replaced' if existing else 'added'}")
    return done


def _same(row: dict[str, Any], entry: dict[str, Any]) -> bool:
    try:
        spec = EventTrigger.model_validate(entry.get("event")).model_dump(mode="json")
    except Exception:
        return False
    return (row["spec"], row["job"], row["params"], row["queue"], row["enabled"]) == (
        spec, entry.get("job"), entry.get("params") or {}, entry.get("queue"),
        entry.get("enabled", True))
