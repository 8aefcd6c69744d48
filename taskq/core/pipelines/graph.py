"""The shape of a pipeline's graph: cycles and a stable topological order. Pure."""

from __future__ import annotations


def find_cycle(upstream: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of names (first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for u in sorted(upstream.get(n, ())):
            if state.get(u) == 1:
                return [*stack[stack.index(u):], u]
            if u not in state:
                found = visit(u)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(upstream):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def topological(names: list[str], upstream: dict[str, set[str]]) -> list[str]:
    """Upstreams before downstreams, ``names`` order otherwise (a stable display order)."""
    order: list[str] = []
    done: set[str] = set()

    def place(n: str) -> None:
        if n in done:
            return
        done.add(n)
        for u in sorted(upstream.get(n, ()), key=names.index):
            place(u)
        order.append(n)

    for name in names:
        place(name)
    return order
