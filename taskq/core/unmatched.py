"""Names a trigger waits for, and which of them match nothing yet. Pure: the store hands
in the names that exist (:class:`KnownNames`).

Matching is by name, so a trigger may name a project, job, event, model or dataset before
it exists and matches it once it appears: registration order never matters. A name that
matches nothing is therefore never refused (that would make order matter) nor widened to
"everything" (ClearML's unknown project); it is *shown*: a warning when the trigger is
registered, with the closest existing name, and a mark in ``taskq triggers list/show``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from taskq.core.names import WILDCARD
from taskq.core.regex import compile_user

#: Stored kinds whose spec watches models, datasets or runs by project and name.
ENTITY_KINDS = ("model", "dataset", "run")


@dataclass(frozen=True)
class KnownNames:
    """What exists in one namespace (shared job templates of ``default`` included)."""

    projects: frozenset[str] = frozenset()
    jobs: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    datasets: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    #: Model and dataset ids: ``models.<id>`` names one by id (names are for trigger_name).
    model_ids: frozenset[str] = frozenset()
    dataset_ids: frozenset[str] = frozenset()
    #: Of the run uuids a trigger names, those that exist (runs are probed, not listed).
    runs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Unmatched:
    """One watched name that matches nothing yet."""

    field: str
    what: str
    name: str
    namespace: str
    suggestion: str | None = None

    def message(self, trigger: str | None = None) -> str:
        whose = f" of trigger {trigger!r}" if trigger else ""
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        return (f"{self.field}{whose}: {self.what} {self.name!r} matches nothing in "
                f"namespace {self.namespace!r} yet; the trigger waits and matches it once it "
                f"appears{hint}")

    def short(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{self.what} {self.name!r}{hint}"


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest existing name, if one is close (difflib's ratio, at least 0.6)."""
    found = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return found[0] if found else None


def _ref(ref: str, namespace: str, fld: str, known: KnownNames) -> Unmatched | None:
    family, _, name = str(ref).partition(".")
    if not name or name == WILDCARD:
        return None
    pool: dict[str, tuple[str, frozenset[str]]] = {
        "jobs": ("job", known.jobs), "events": ("event", known.events),
        "runs": ("run", known.runs), "models": ("model", known.models | known.model_ids),
        "datasets": ("dataset", known.datasets | known.dataset_ids)}
    if family not in pool:
        return None
    what, names = pool[family]
    if name in names:
        return None
    return Unmatched(fld, what, name, namespace,
                     None if family == "runs" else suggest(name, names))


def _pattern(pattern: str, family: str, namespace: str, known: KnownNames
             ) -> Unmatched | None:
    """``trigger_name`` is searched in names (a run's job name); none matching yet is
    shown, with a close name when the pattern is a plain word."""
    names = {"model": known.models, "dataset": known.datasets, "run": known.jobs}[family]
    try:  # a user's pattern: RE2, linear in the name, as the evaluator runs it
        regex = compile_user(pattern)
    except ValueError:
        return None
    if any(regex.search(n) for n in names):
        return None
    what = "job name pattern" if family == "run" else f"{family} name pattern"
    return Unmatched("trigger_name", what, pattern, namespace,
                     suggest(pattern, names) if _plain_word(pattern) else None)


def unmatched(kind: str, spec: Mapping[str, Any], namespace: str, known: KnownNames
              ) -> list[Unmatched]:
    """Every name of a stored trigger (``kind``, ``spec``) that ``known`` does not have.
    ``known`` is per namespace; an input watching another namespace is judged by the
    caller with that namespace's names (see :func:`namespaces`)."""
    out: list[Unmatched | None] = []
    if kind in ENTITY_KINDS:
        project = spec.get("project")
        if project is not None and project not in known.projects:
            out.append(Unmatched("trigger_project", "project", project, namespace,
                                 suggest(project, known.projects)))
        if spec.get("name_pattern"):
            out.append(_pattern(spec["name_pattern"], kind, namespace, known))
    elif kind == "hook":
        # A run's own hooks (``runs.<uuid>``) are stored by submit just before the run.
        if not str(spec.get("ref", "")).startswith("runs."):
            out.append(_ref(spec.get("ref", ""), namespace, "job", known))
    elif "inputs" in spec:
        for i in spec["inputs"]:
            if i.get("namespace", namespace) != namespace:
                continue
            ref = str(i.get("ref", ""))
            fld = "trigger_on" if ref.startswith("events.") else "trigger_on_finish"
            out.append(_ref(ref, namespace, fld, known))
    elif "ref" in spec:
        out.append(_ref(spec["ref"], namespace, "event.ref", known))
    return [u for u in out if u is not None]


def namespaces(kind: str, spec: Mapping[str, Any], namespace: str) -> list[str]:
    """The namespaces whose names a trigger's inputs are judged by (its own first)."""
    others = [] if kind in ENTITY_KINDS or "inputs" not in spec else [
        i["namespace"] for i in spec["inputs"] if i.get("namespace", namespace) != namespace]
    return list(dict.fromkeys([namespace, *others]))


def unmatched_all(kind: str, spec: Mapping[str, Any], namespace: str,
                  known: Mapping[str, KnownNames]) -> list[Unmatched]:
    """:func:`unmatched` with each input judged in its own namespace."""
    found = unmatched(kind, spec, namespace, known[namespace])
    if "inputs" in spec and kind not in ENTITY_KINDS:
        for ns in namespaces(kind, spec, namespace)[1:]:
            own = {**spec, "inputs": [i for i in spec["inputs"] if i.get("namespace") == ns]}
            found += unmatched(kind, own, ns, known[ns])
    return found


def _plain_word(pattern: str) -> bool:
    """A pattern that is just a name (no regex syntax), which a close name may correct."""
    return bool(pattern) and all(c.isalnum() or c in "_.-" for c in pattern)
