"""The OpenAPI 3.1 description ``GET /openapi.json`` serves, kept next to the routes."""

from __future__ import annotations

from typing import Any

from taskq.http.auth import DELIVERY, HUB_SIGNATURE, SIGNATURE, TIMESTAMP


def openapi() -> dict[str, Any]:
    error = {"type": "object", "properties": {"error": {"type": "string"}},
             "required": ["error"]}
    accepted = {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "namespace": {"type": "string"},
        "duplicate": {"type": "boolean",
                      "description": "A repeat of an event already stored: nothing new"}}}
    fields = {"type": "object", "description": "Payload fields; jobs map them to params.",
              "additionalProperties": True}
    responses = {
        "202": {"description": "Stored and queued for evaluation",
                "content": {"application/json": {"schema": accepted}}},
        **{code: {"description": text, "content": {"application/json": {"schema": error}}}
           for code, text in (("400", "Invalid input; the error names the field or limit"),
                              ("401", "Not authenticated"),
                              ("403", "The credential may not publish into that namespace"),
                              ("413", "Body too large"),
                              ("415", "Not JSON"), ("503", "Storage unavailable; retry"))}}
    security: list[dict[str, list[str]]] = [
        {"bearer": []}, {"signature": [], "timestamp": [], "delivery": []}, {"hub": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "taskq events", "version": "1"},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "signature": {"type": "apiKey", "in": "header", "name": SIGNATURE,
                          "description": f"sha256=<hex HMAC-SHA256 of '<{TIMESTAMP}>."
                                         f"<{DELIVERY}>.<body>'>"},
            "timestamp": {"type": "apiKey", "in": "header", "name": TIMESTAMP,
                          "description": "Unix seconds; within the server's window"},
            "delivery": {"type": "apiKey", "in": "header", "name": DELIVERY,
                         "description": "Your id of this delivery; a replay is a duplicate"},
            "hub": {"type": "apiKey", "in": "header", "name": HUB_SIGNATURE,
                    "description": "A Git host's sha256=<hex HMAC-SHA256 of the body>; the "
                                   "body is the delivery"}}},
        "security": security,
        "paths": {
            "/events": {"post": {
                "summary": "Publish an event, or many: {\"events\": [{name, fields, id}, "
                           "...]} in one transaction",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["name"],
                               "additionalProperties": False, "properties": {
                                   "name": {"type": "string", "maxLength": 128},
                                   "fields": fields,
                                   "id": {"type": "string", "maxLength": 128,
                                          "description": "Repeats are one event"},
                                   "namespace": {"type": "string"}}}}}},
                "responses": responses}},
            "/events/{name}": {"post": {
                "summary": "Publish an event whose fields are the whole body (webhooks), "
                           "into the credential's namespace",
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"type": "string"}},
                               {"name": "namespace", "in": "query",
                                "description": "Checked, never chosen: it must be the "
                                               "credential's namespace (else 403)",
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": fields}}},
                "responses": responses}},
            "/connections/{name}/webhook": {"post": {
                "summary": "A git host's, registry's or dataset system's own webhook, "
                           "verified by that provider's scheme (docs/events.md); emits "
                           "connection_* events into the connection's namespace",
                "security": [],
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": fields}}},
                "responses": {k: v for k, v in responses.items() if k != "403"}}},
            "/triggers/{name}/explain": {"get": {
                "summary": "Why the trigger fired or did not, per stored event "
                           "(docs/explain.md)",
                "parameters": [_path("name"), _query("since", "e.g. 1h, 7d"),
                               _query("event", "one stored event's id"),
                               _query("run", "a run's uuid: its status events"),
                               _query("limit", "at most 10000"),
                               _query("before", "the `next` cursor of the newer page"),
                               _query("namespace", "")],
                "responses": responses}},
            "/triggers/{name}/history": {"get": {
                "summary": "The trigger's revisions: what changed, when, by whom",
                "parameters": [_path("name"), _query("namespace", "")],
                "responses": responses}},
            "/triggers/{name}/test": {"post": {
                "summary": "A dry run against one event (a stored id, or one written by "
                           "hand); nothing is written",
                "parameters": [_path("name")],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["event"], "properties": {
                        "event": {}, "namespace": {"type": "string"}}}}}},
                "responses": responses}},
            "/triggers/{name}/what-if": {"post": {
                "summary": "What a draft of the trigger would have done with the stored "
                           "events of a range, beside the trigger as it is; nothing is "
                           "written",
                "parameters": [_path("name")],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["draft", "since"],
                               "additionalProperties": False, "properties": {
                                   "draft": {"type": "object", "description":
                                             "What a `taskq apply -f` file holds "
                                             "(triggers: or hooks:); the entry named "
                                             "as the path is the draft"},
                                   "since": {"type": "string"}, "until": {"type": "string"},
                                   "namespace": {"type": "string"}}}}}},
                "responses": responses}},
            "/events/replay": {"post": {
                "summary": "Evaluate stored events again through the current triggers; "
                           "what fired fires nothing again",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["since"],
                               "additionalProperties": False, "properties": {
                                   "since": {"type": "string"}, "until": {"type": "string"},
                                   "trigger": {"type": "string"},
                                   "dry_run": {"type": "boolean"},
                                   "namespace": {"type": "string"}}}}}},
                "responses": responses}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI"}}}},
            "/healthz": {"get": {"summary": "Liveness",
                                 "responses": {"200": {"description": "ok"}}}},
        },
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description,
            "schema": {"type": "string"}}
