"""What a provider's webhook says, as taskq events: a git push, an image push, a dataset
version. Pure, so each provider's real payload shape is tested without a server.

A push is one event per pushed head (the commit the ref now points to), not one per entry
of its commit list. A delivery's id is the provider's (``X-GitHub-Delivery``, ...), else a
digest of what identifies the push; the event ids derive from it, so a re-sent delivery is
the same events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from taskq.core import kinds
from taskq.core.connections import Source
from taskq.core.events import Event
from taskq.errors import TaskqError

_ZERO_SHA = "0" * 40


class PayloadRefused(TaskqError):
    """A body that is not what the provider sends for the event: a 400 naming the field."""


@dataclass(frozen=True)
class Delivery:
    id: str
    #: One payload per event; empty when the delivery is valid but carries no push (a
    #: GitHub ``ping``, a branch deletion): answered 202 with ``ignored``.
    payloads: list[dict[str, Any]] = field(default_factory=list)
    ignored: str | None = None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _digest(*parts: Any) -> str:
    return "sha256:" + hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:40]


def _ref_names(ref: str) -> dict[str, str | None]:
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None
    return {"ref": ref, "branch": branch, "tag": tag}


def _event_header(provider: str, headers: Mapping[str, str]) -> str:
    name = {"github": "X-GitHub-Event", "ghcr": "X-GitHub-Event", "gitea": "X-Gitea-Event",
            "gitlab": "X-Gitlab-Event", "bitbucket": "X-Event-Key"}.get(provider)
    return (headers.get(name) or "").strip() if name else ""


def parse(src: Source, headers: Mapping[str, str], body: dict[str, Any], raw: bytes
          ) -> Delivery:
    what = _event_header(src.provider, headers)
    if src.kind == "git":
        return _git(src.provider, what, headers, body)
    if src.kind == "registry":
        return _registry(src.provider, what, headers, body, raw)
    delivery = (headers.get("X-Delivery-Id") or headers.get("Idempotency-Key")
                or _digest(raw.decode("utf-8", "replace")))
    name = body.get("dataset") or body.get("name")
    if not isinstance(name, str) or not name:
        raise PayloadRefused("dataset: the dataset's name (or name) is required")
    return Delivery(delivery, [{"dataset": name, "version": body.get("version"),
                                "uri": body.get("uri"), "fields": body}])


def _git(provider: str, what: str, headers: Mapping[str, str], body: dict[str, Any]
         ) -> Delivery:
    if provider == "bitbucket":
        return _bitbucket(what, headers, body)
    push = {"github": "push", "gitea": "push", "gitlab": "Push Hook"}[provider]
    if provider == "github":
        delivery = headers.get("X-GitHub-Delivery")
    elif provider == "gitea":
        delivery = headers.get("X-Gitea-Delivery")
    else:
        delivery = headers.get("X-Gitlab-Event-UUID") or _digest(
            body.get("checkout_sha"), body.get("ref"))
    delivery = delivery or _digest(body.get("after"), body.get("ref"))
    if what != push:
        return Delivery(delivery, ignored=f"not a push ({what or 'no event header'})")
    ref = body.get("ref")
    sha = body.get("checkout_sha") if provider == "gitlab" else body.get("after")
    if not isinstance(ref, str) or not ref:
        raise PayloadRefused("ref: the pushed ref is required")
    if not isinstance(sha, str) or not sha or sha == _ZERO_SHA:
        return Delivery(delivery, ignored=f"{ref} was deleted: no head to build")
    listed = body.get("commits")
    commits: list[Any] = listed if isinstance(listed, list) else []
    head = body.get("head_commit") or next(
        (c for c in commits if isinstance(c, dict) and c.get("id") == sha),
        commits[-1] if commits else {})
    repo = body.get("repository") if provider != "gitlab" else body.get("project")
    author = _get(head, "author", "name") or _get(head, "author", "username") or (
        body.get("user_name") or _get(body, "pusher", "name")
        or _get(body, "pusher", "login"))
    return Delivery(delivery, [{
        "repo": _get(repo, "full_name") or _get(repo, "path_with_namespace"),
        **_ref_names(ref), "commit": sha, "author": author,
        "author_email": _get(head, "author", "email") or body.get("user_email"),
        "message": _get(head, "message"),
        "url": _get(head, "url") or _get(repo, "html_url") or _get(repo, "web_url"),
    }])


def _bitbucket(what: str, headers: Mapping[str, str], body: dict[str, Any]) -> Delivery:
    delivery = headers.get("X-Request-UUID") or headers.get("X-Hook-UUID") or _digest(
        [(_get(c, "new", "name"), _get(c, "new", "target", "hash"))
         for c in _get(body, "push", "changes") or []])
    if what != "repo:push":
        return Delivery(delivery, ignored=f"not a push ({what or 'no X-Event-Key'})")
    out = []
    changes = _get(body, "push", "changes")
    for change in changes if isinstance(changes, list) else []:
        new = _get(change, "new")
        if not isinstance(new, dict) or not _get(new, "target", "hash"):
            continue  # a deleted branch or tag
        ref = ("refs/heads/" if new.get("type") == "branch" else "refs/tags/") + str(
            new.get("name"))
        out.append({"repo": _get(body, "repository", "full_name"), **_ref_names(ref),
                    "commit": _get(new, "target", "hash"),
                    "author": _get(new, "target", "author", "user", "display_name")
                    or _get(new, "target", "author", "raw"),
                    "author_email": None, "message": _get(new, "target", "message"),
                    "url": _get(new, "target", "links", "html", "href")})
    return Delivery(delivery, out, None if out else "no pushed head (deleted refs only)")


def _registry(provider: str, what: str, headers: Mapping[str, str], body: dict[str, Any],
              raw: bytes) -> Delivery:
    if provider == "ghcr":
        delivery = headers.get("X-GitHub-Delivery") or _digest(raw)
        if what != "package":
            return Delivery(delivery, ignored=f"not a package event ({what or 'none'})")
        pkg = body.get("package") or {}
        version = pkg.get("package_version") or {}
        owner = _get(pkg, "owner", "login") or _get(pkg, "namespace")
        tag = _get(version, "container_metadata", "tag", "name")
        return Delivery(delivery, [{"image": f"ghcr.io/{owner}/{pkg.get('name')}".lower(),
                                    "tag": tag or None,
                                    "digest": _get(version, "container_metadata", "tag",
                                                   "digest") or version.get("version")}])
    if provider == "harbor":
        if body.get("type") not in ("PUSH_ARTIFACT", "pushImage"):
            return Delivery(_digest(raw), ignored=f"not a push ({body.get('type')})")
        data = body.get("event_data") or {}
        repo = _get(data, "repository", "repo_full_name")
        out = [{"image": _image(str(r.get("resource_url") or repo), r.get("tag")),
                "tag": r.get("tag"), "digest": r.get("digest")}
               for r in data.get("resources") or [] if isinstance(r, dict)]
        return Delivery(_digest(raw), out, None if out else "no pushed artifact")
    repo = _get(body, "repository", "repo_name")
    if not isinstance(repo, str) or not repo:
        raise PayloadRefused("repository.repo_name: required in a Docker Hub webhook")
    tag = _get(body, "push_data", "tag")
    return Delivery(_digest(raw), [{"image": repo, "tag": tag, "digest": None}])


def _image(url: str, tag: Any) -> str:
    """``harbor.example.com/library/app:v1`` (or ``...@sha256:...``) -> the image alone."""
    image = url.split("@", 1)[0]
    return image[: -len(tag) - 1] if tag and image.endswith(f":{tag}") else image


def events(src: Source, delivery: Delivery, *, ids: list[str], at: datetime) -> list[Event]:
    """The delivery's events on ``connections.<name>``; ``ids`` are their stored ids."""
    kind = kinds.BY_CONNECTION[src.kind]
    return [Event(id=event_id, kind=kind, ref=f"connections.{src.name}",
                  namespace=src.namespace, timestamp=at,
                  payload={"connection": src.name, "provider": src.provider,
                           "delivery": delivery.id, **payload})
            for event_id, payload in zip(ids, delivery.payloads, strict=True)]
