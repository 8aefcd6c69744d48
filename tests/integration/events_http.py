"""Helpers shared by the tests of ``taskq events serve``: a real server process, signing in
each scheme it accepts, and the events it stored."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

import taskq
from tests.conftest import ROOT, env_for, wait_for

TOKEN = "t0ken-" + "x" * 30
SECRET = "s3cret-" + "y" * 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def events_server(settings: Any, log_path: Path, **env: str) -> Iterator[str]:
    """``taskq events serve`` as its own process, with ``env`` on top of the test's."""
    port = free_port()
    exe = shutil.which("taskq") or str(Path(sys.executable).parent / "taskq")
    full = env_for(settings, **{"TASKQ_EVENTS_TOKEN": TOKEN,
                                "TASKQ_EVENTS_HMAC_SECRET": SECRET, **env})
    log = log_path.open("wb")
    proc = subprocess.Popen([exe, "events", "serve", "--port", str(port)], env=full,
                            cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"events serve exited: {log_path.read_text()}")
        try:
            return httpx.get(f"{url}/healthz", headers=bearer(), timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, message="the events endpoint")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """A Git host's signature: ``X-Hub-Signature-256``, an HMAC of the body alone."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def taskq_signed(body: bytes, delivery: str, secret: str = SECRET,
                 timestamp: int | None = None) -> dict[str, str]:
    """taskq's own scheme: the HMAC covers ``<timestamp>.<delivery id>.<body>``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), f"{ts}.{delivery}.".encode() + body, hashlib.sha256)
    return {"X-Taskq-Timestamp": ts, "X-Taskq-Delivery": delivery,
            "X-Taskq-Signature": f"sha256={mac.hexdigest()}",
            "Content-Type": "application/json"}


def stored(name: str, namespace: str | None = None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from taskq.store.models import RunEvent

    store = taskq.Client().rt.store
    with store.read() as conn:
        rows = conn.execute(select(RunEvent.body).where(RunEvent.kind == "custom_event"))
        return [b for (b,) in rows if b["payload"]["name"] == name
                and (namespace is None or b["namespace"] == namespace)]
