"""Built-in notifier jobs, ``webhook`` and ``slack``, on the ``services`` queue.

A hook names a connection (``connection: slack-connection``) and one of these jobs
(``hubRef: slack``). The connection is configured at deployment time only
(``TASKQ_CONNECTIONS``/TOML): its kind and the *names* of the environment variables that hold
the URL and the signing secret. The secrets are read here, in the worker, at send time; they
never enter a hook spec, run params, events or logs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from typing import Any

import httpx

from taskq import current
from taskq.celery.jobs import builtin
from taskq.errors import NotifyError
from taskq.runtime import get_runtime
from taskq.settings import get_settings

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO; a webhook URL is a credential (Slack's is).
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

SIGNATURE_HEADER = "X-Taskq-Signature"
TIMESTAMP_HEADER = "X-Taskq-Timestamp"
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
BACKOFF = (0.5, 1.0, 2.0)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)




def _hook_context() -> tuple[str, dict[str, Any]]:
    row = get_runtime().store.get_run(current.run.uuid)
    tc = (row.trigger_context if row else None) or {}
    name = (tc.get("hook") or {}).get("connection") or current.run.params.get("connection")
    if not name:
        raise NotifyError("no connection: name one in the hook (`connection: <name>`)")
    return str(name), tc.get("run") or {}


def _connection(name: str, kind: str) -> tuple[str, str | None]:
    conf = get_settings().connections.get(name)
    if conf is None:
        raise NotifyError(f"connection {name!r} is not configured on this worker")
    if conf.get("kind") != kind:
        raise NotifyError(f"connection {name!r} is of kind {conf.get('kind')!r}, not {kind!r}")
    url = os.environ.get(str(conf.get("url_env", "")))
    if not url:
        raise NotifyError(f"connection {name!r}: environment variable "
                          f"{conf.get('url_env')!r} with its URL is not set on this worker")
    secret_env = conf.get("secret_env")
    if not secret_env:
        return url, None
    secret = os.environ.get(str(secret_env))
    if not secret:  # configured to sign: never send unsigned instead
        raise NotifyError(f"connection {name!r}: environment variable {secret_env!r} with its "
                          "signing secret is not set on this worker")
    return url, secret


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``<timestamp>.<body>``: receivers can reject replays by timestamp."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def post(url: str, payload: dict[str, Any], *, secret: str | None, connection: str) -> int:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    last = ""
    for attempt, delay in enumerate((*BACKOFF, None), start=1):
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        try:
            resp = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT)
            if resp.status_code < 300:
                log.info("taskq: notified %s (attempt %d): HTTP %d", connection, attempt,
                         resp.status_code)
                return resp.status_code
            last = f"HTTP {resp.status_code}"
            if resp.status_code not in RETRY_STATUSES:
                break
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # the URL may hold a token
            last = type(exc).__name__
        if delay is not None:
            time.sleep(delay)
    raise NotifyError(f"notifying {connection!r} failed after {attempt} attempt(s): {last}")


def summary(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("uuid", "job", "namespace", "project", "status", "reason", "outputs",
            "started_at", "finished_at", "duration", "trigger")
    return {k: run.get(k) for k in keys}


@builtin("webhook")
def webhook(connection: str = "") -> int:
    """POST the main run's summary as JSON, signed with the connection's secret."""
    name, run = _hook_context()
    url, secret = _connection(name, "webhook")
    return post(url, {"event": "run_finished", "run": summary(run)}, secret=secret,
                connection=name)


@builtin("slack")
def slack(connection: str = "") -> int:
    """Post to a Slack incoming webhook: a one-line text plus a small block layout."""
    name, run = _hook_context()
    url, secret = _connection(name, "slack")
    icon = {"succeeded": ":white_check_mark:", "failed": ":x:"}.get(run.get("status", ""), "")
    text = (f"{icon} taskq run *{run.get('job')}* `{run.get('uuid')}` "
            f"{run.get('status')}" + (f": {run.get('reason')}" if run.get("reason") else ""))
    payload = {"text": text, "blocks": [{"type": "section",
                                         "text": {"type": "mrkdwn", "text": text}}]}
    return post(url, payload, secret=secret, connection=name)
