"""The names that exist in a namespace, for telling a trigger's watched names that match
nothing yet (:mod:`taskq.core.unmatched`). Read when a trigger is registered or shown,
never on the evaluator's path."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, select

from taskq.core.unmatched import KnownNames
from taskq.store.base import StoreBase
from taskq.store.entity_models import EventName, RegisteredDataset, RegisteredModel
from taskq.store.models import JobTemplate, Run

_MODELS = cast(Table, RegisteredModel.__table__)
_DATASETS = cast(Table, RegisteredDataset.__table__)
_TEMPLATES = cast(Table, JobTemplate.__table__)
_RUNS = cast(Table, Run.__table__)
_NAMES = cast(Table, EventName.__table__)


class NamesMixin(StoreBase):
    def known_names(self, namespace: str, runs: Iterable[str] = ()) -> KnownNames:
        """Projects (of models, datasets, job templates, runs), job names (shared ones of
        ``default`` too), model and dataset names, published event names; and which of
        ``runs`` (uuids) exist."""
        spaces = [namespace, "default"]
        with self.read() as conn:
            def distinct(column: Any, table: Table, *where: Any) -> set[str]:
                stmt = select(column).distinct().select_from(table).where(*where)
                return {v for v in conn.execute(stmt).scalars() if v}

            jobs = distinct(_TEMPLATES.c.name, _TEMPLATES, _TEMPLATES.c.namespace.in_(spaces))
            projects = (distinct(_MODELS.c.project, _MODELS, _MODELS.c.namespace == namespace)
                        | distinct(_DATASETS.c.project, _DATASETS,
                                   _DATASETS.c.namespace == namespace)
                        | distinct(_TEMPLATES.c.project, _TEMPLATES,
                                   _TEMPLATES.c.namespace.in_(spaces))
                        | distinct(_RUNS.c.project, _RUNS, _RUNS.c.namespace == namespace))
            models = distinct(_MODELS.c.name, _MODELS, _MODELS.c.namespace == namespace)
            datasets = distinct(_DATASETS.c.name, _DATASETS,
                                _DATASETS.c.namespace == namespace)
            model_ids = distinct(_MODELS.c.id, _MODELS, _MODELS.c.namespace == namespace)
            dataset_ids = distinct(_DATASETS.c.id, _DATASETS, _DATASETS.c.namespace == namespace)
            events = distinct(_NAMES.c.name, _NAMES, _NAMES.c.namespace == namespace)
            wanted = sorted(set(runs))
            found = distinct(_RUNS.c.uuid, _RUNS, _RUNS.c.uuid.in_(wanted)) if wanted else set()
        return KnownNames(
            projects=frozenset(projects), jobs=frozenset(jobs), models=frozenset(models),
            datasets=frozenset(datasets), runs=frozenset(found),
            model_ids=frozenset(model_ids), dataset_ids=frozenset(dataset_ids),
            events=frozenset(events))
