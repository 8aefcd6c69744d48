"""Every event kind taskq knows, and which refs can send it: one table, read by the trigger
and pipeline validators (a kind a ref can never send is refused naming both) and mirrored
by docs/events.md (a unit test keeps the two equal).

A kind that nothing emits yet is listed with ``emitted=False``: refused at registration with
that reason, rather than accepted as a trigger that can never fire.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskq.core.statuses import RUN_STATUS_KINDS

#: Ref families: ``runs.<uuid>``, ``jobs.<name>`` (and a pipeline's ``ops.<name>``),
#: ``models.<id>``, ``datasets.<id>``, ``events.<name>``, ``connections.<name>``,
#: ``projects.<name>``, and ``org`` (no name: the whole organisation).
RUNS, JOBS, MODELS, DATASETS, EVENTS = "runs", "jobs", "models", "datasets", "events"
CONNECTIONS, PROJECTS, ORG = "connections", "projects", "org"
FAMILIES = (RUNS, JOBS, MODELS, DATASETS, EVENTS, CONNECTIONS, PROJECTS, ORG)
_RUN = (RUNS, JOBS)

CONNECTION_GIT_COMMIT = "connection_git_commit"
CONNECTION_REGISTRY_IMAGE = "connection_registry_image"
CONNECTION_DATASET_VERSION = "connection_dataset_version"
#: The kind each connection kind sends (notifier connections send nothing).
BY_CONNECTION = {"git": CONNECTION_GIT_COMMIT, "registry": CONNECTION_REGISTRY_IMAGE,
                 "dataset": CONNECTION_DATASET_VERSION}


@dataclass(frozen=True)
class KindInfo:
    families: tuple[str, ...]
    emitted: bool = True


def _registry(entity: str) -> dict[str, KindInfo]:
    family = MODELS if entity == "model" else DATASETS
    return {f"{entity}_{a}": KindInfo((family,)) for a in (
        "created", "published", "archived", "unarchived", "tagged", "untagged", "updated")}


KINDS: dict[str, KindInfo] = {
    **{k: KindInfo(_RUN) for k in sorted(RUN_STATUS_KINDS)},
    **{f"run_{a}": KindInfo(_RUN) for a in ("metric", "tagged", "untagged")},
    **_registry("model"), **_registry("dataset"),
    "custom_event": KindInfo((EVENTS,)),
    CONNECTION_GIT_COMMIT: KindInfo((CONNECTIONS,)),
    CONNECTION_REGISTRY_IMAGE: KindInfo((CONNECTIONS,)),
    CONNECTION_DATASET_VERSION: KindInfo((CONNECTIONS,)),
    # ``current.alert(level, ...)`` and ``current.log_artifact(...)`` in a running job.
    **{k: KindInfo(_RUN) for k in (
        "alert_info", "alert_warning", "alert_critical", "run_new_artifacts")},
    # ``taskq.models.log_metric(id, name, value)``.
    "model_version_new_metric": KindInfo((MODELS,)),
    # ``taskq runs approve|invalidate`` of a run waiting for approval.
    **{k: KindInfo(_RUN) for k in ("run_approved_actor", "run_invalidated_actor")},
    "project_custom_event": KindInfo((PROJECTS,)),
    "org_custom_event": KindInfo((ORG,)),
}


def sent_by(family: str) -> list[str]:
    """The kinds a ref of ``family`` can send (``ops`` is a pipeline's ``jobs``)."""
    family = JOBS if family == "ops" else family
    return [k for k, info in KINDS.items() if family in info.families and info.emitted]


def refusal(kind: str, ref: str) -> str | None:
    """Why a trigger on ``ref`` for ``kind`` can never fire, or None if it can."""
    family = ref.partition(".")[0]
    info = KINDS.get(kind)
    if info is None:
        return f"{kind!r} is not an event kind taskq knows (docs/events.md lists them)"
    if not info.emitted:
        return f"{kind!r} is not emitted yet by anything in taskq (docs/events.md)"
    if (JOBS if family == "ops" else family) not in info.families:
        can = ", ".join(f"'{f}.<name>'" if f != ORG else "'org'" for f in info.families)
        return (f"ref {ref!r} never sends {kind!r} (sent by {can}); {ref!r} sends "
                f"{_short(sent_by(family))}")
    return None


def _short(kinds: list[str]) -> str:
    statuses = [k for k in kinds if k in RUN_STATUS_KINDS]
    rest = [k for k in kinds if k not in RUN_STATUS_KINDS]
    shown = (["run_status_*"] if statuses else []) + rest
    return ", ".join(shown) or "nothing yet"
