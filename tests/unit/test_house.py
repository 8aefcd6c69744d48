"""The house's rules, checked: one direction of imports, a core without I/O, pinned exports.

import-linter (run by ``scripts/test``) enforces the layers; these tests add what it does
not say in one line: no import cycle even counting imports inside functions, the core
importable alone without SQLAlchemy, Redis, Celery or kombu, and ``taskq.__all__`` as
documented.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import taskq

PACKAGE = Path(taskq.__file__).resolve().parent
FORBIDDEN_IN_CORE = {"sqlalchemy", "redis", "celery", "kombu", "httpx", "tornado", "click",
                     "rich", "alembic"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Every taskq module -> the taskq modules it imports, anywhere in its body."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                if node.level:
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    mod = node.module or ""
                targets = [mod, *(f"{mod}.{a.name}" for a in node.names)]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def test_no_import_cycle_counting_imports_inside_functions() -> None:
    graph = _graph()
    # A package importing its own submodules is no cycle; everything else must be acyclic.
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(f"{name}.")}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        assert node not in visiting, "import cycle: " + " -> ".join(
            [*visiting[visiting.index(node):], node])
        visiting.append(node)
        for target in sorted(graph[node]):
            visit(target)
        visiting.pop()
        done.add(node)

    for name in sorted(graph):
        visit(name)


def test_the_core_imports_no_io_library() -> None:
    code = ("import sys, taskq.core, taskq.core.triggers, taskq.core.planning, taskq.ports; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {FORBIDDEN_IN_CORE!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_import_taskq_is_cheap() -> None:
    code = "import sys, taskq; print(sorted(m for m in sys.modules if m.startswith('taskq')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "['taskq']"


def test_public_api_is_pinned() -> None:
    assert sorted(taskq.__all__) == sorted([
        "Alert", "Client", "Event", "EventTrigger", "Hook", "RunRecord", "Settings", "Status",
        "TaskqError", "TriggerScheduler", "ValidationError", "add_event_trigger",
        "add_finish_trigger", "add_hook", "add_trigger", "current", "datasets", "get_run",
        "job", "list_runs", "list_triggers", "models", "publish_event", "publish_events",
        "run_pipeline", "submit", "tag_run"])
    for name in taskq.__all__:
        assert getattr(taskq, name) is not None, name


def test_every_error_taskq_raises_shares_one_base() -> None:
    from taskq import errors

    raised = [v for v in vars(errors).values() if isinstance(v, type)
              and issubclass(v, Exception) and v.__module__ == errors.__name__]
    assert len(raised) > 10
    assert all(issubclass(cls, taskq.TaskqError) for cls in raised)
    assert issubclass(taskq.ValidationError, ValueError)


def test_no_module_outgrows_a_page() -> None:
    big = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
           if "migrations" not in p.parts and (n := len(p.read_text().splitlines())) > 310}
    assert big == {}
