"""What every authenticated route of ``taskq events serve`` shares: who is asking (a
credential, from a bearer token or a signature), refused before the handler runs if no one,
and errors answered as ``{"error": reason}``."""

from __future__ import annotations

from typing import Any

import tornado.web

from taskq.api.client import Client
from taskq.http.auth import Credentials
from taskq.http.limits import Refusal


class Base(tornado.web.RequestHandler):
    def initialize(self, client: Client, auth: Credentials) -> None:
        self.client = client
        self.auth = auth

    def prepare(self) -> None:
        try:
            self.principal = self.auth.authenticate(self.request.headers,
                                                    self.request.body or b"")
        except Refusal as exc:
            if exc.status == 401:
                self.set_header("WWW-Authenticate", 'Bearer realm="taskq"')
            self.fail(exc.status, exc.reason)

    def fail(self, status: int, reason: str) -> None:
        self.set_status(status)
        self.finish({"error": reason})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason or "error"})
