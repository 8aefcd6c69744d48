"""The namespace a Client is bound to: the one place that decides what it may read and change.

A client bound to ``team-a`` lists only team-a's runs and triggers, answers another
namespace's run or trigger as not found, and refuses an explicit ``namespace=`` naming
another one. An admin client (``Client(admin=True)``, ``TASKQ_ADMIN=1``, ``taskq --admin``)
sees every namespace. This guards API and CLI callers from reading or stopping another
tenant's work by mistake; it is not a wall against someone holding the database or Redis
credentials (those are admin), which is why the HTTP server scopes its own credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskq.errors import OutOfNamespace
from taskq.ports import Context
from taskq.services import catalog

HINT = ("use a client of that namespace (Client(namespace=...), TASKQ_NAMESPACE), or an admin "
        "client (Client(admin=True); the CLI's --admin or TASKQ_ADMIN=1)")


@dataclass(frozen=True)
class Scope:
    namespace: str
    admin: bool = False

    @classmethod
    def of(cls, rt: Context, namespace: str | None = None, admin: bool | None = None
           ) -> Scope:
        """The given binding, else the settings' (TASKQ_NAMESPACE, TASKQ_ADMIN)."""
        bound = catalog.check_namespace(rt, namespace or rt.settings.namespace)
        return cls(bound, rt.settings.admin if admin is None else bool(admin))

    def one(self, rt: Context, namespace: str | None) -> str:
        """The namespace a write (or a look-up by name) acts in: the one asked for, else the
        bound one; another than the bound one only for an admin."""
        ns = catalog.check_namespace(rt, namespace or self.namespace)
        if ns != self.namespace and not self.admin:
            raise OutOfNamespace(f"namespace: this client is bound to {self.namespace!r}; "
                                 f"{ns!r} is another namespace", HINT)
        return ns

    def many(self, rt: Context, namespace: str | None) -> str | None:
        """The namespace a list filters to: None (every one) only for an admin asking none."""
        if namespace is None and self.admin:
            return None
        return self.one(rt, namespace)

    def sees(self, namespace: str) -> bool:
        return self.admin or namespace == self.namespace
