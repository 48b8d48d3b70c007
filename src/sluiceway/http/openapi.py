"""The OpenAPI document for the HTTP API, and a self-contained HTML page rendering it
(no CDN: the gateway often runs where the internet is not reachable)."""

from __future__ import annotations

import html
from typing import Any

from sluiceway import __version__

ERROR = {"$ref": "#/components/schemas/Error"}
NAME_RULE = "[a-z0-9][a-z0-9_-]{0,63}"  # record.valid_name: stream names, tenant ids, source names
NAME = {"type": "string", "pattern": f"^{NAME_RULE}$"}
TIME = {"type": "string", "format": "date-time"}
UUID = {"type": "string", "format": "uuid"}


def error_response(desc: str) -> dict[str, Any]:
    """An OpenAPI response of the JSON error shape ``{"error", "detail"}``."""
    return {"description": desc, "content": {"application/json": {"schema": ERROR}}}


def ok_response(desc: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def query_param(name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False) -> dict[str, Any]:
    """A query parameter. A typed one given empty (``?since=``) is a 400 like any other bad
    value; only plain strings (``{"type": "string"}``, the default) may be empty."""
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def link(path: str, method: str, parameters: dict[str, str], description: str) -> dict[str, Any]:
    """An OpenAPI Link to the operation at ``path`` + ``method`` of the same document, its
    parameters taken from the response (e.g. ``{"ldo_id": "$response.body#/id"}``)."""
    pointer = path.replace("~", "~0").replace("/", "~1").replace("{", "%7B").replace("}", "%7D")
    return {"operationRef": f"#/paths/{pointer}/{method}", "parameters": parameters, "description": description}


def text_query(description: str) -> dict[str, Any]:
    """``q``: a text filter (``params.text_param``); empty means none."""
    return query_param("q", description, {"type": "string", "maxLength": 256})


LIMIT = query_param("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
READY = {"type": "object", "required": ["status", "checks"], "properties": {
    "status": {"type": "string", "enum": ["ready", "not_ready"]},
    "checks": {"type": "object", "additionalProperties": {"type": "string"}, "description": "\"ok\" or what failed"}}}
TENANT_Q = query_param("tenant", "Tenant to act for (default: the token's tenant; other tenants need an admin "
                                 "token). The X-Sluice-Tenant header does the same.", NAME)


UNAVAILABLE = error_response("The store, the disk or the network cannot serve now (`unavailable`, or the "
                             "operation's own reason); retry after the Retry-After header")


def openapi_spec(extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document; ``extra_paths`` (from configured sources) are added to, and override, the core paths.
    Every authenticated operation may answer 503 (``http.endpoint.run_endpoint``)."""
    spec = _core_spec()
    spec["paths"].update(extra_paths or {})
    spec["paths"] = {path: {method: _may_be_unavailable(op) for method, op in ops.items()}
                     for path, ops in spec["paths"].items()}
    return spec


def _may_be_unavailable(op: dict[str, Any]) -> dict[str, Any]:
    if op.get("security") == [] or "503" in op["responses"]:
        return op
    return {**op, "responses": {**op["responses"], "503": UNAVAILABLE}}


def _core_spec() -> dict[str, Any]:
    stream = path_param("stream", NAME)
    return {
        "openapi": "3.1.0",
        "info": {"title": "sluiceway", "version": __version__,
                 "description": "Self-hosted ingestion gateway. Every 2xx on an ingest route means the data is "
                                "fsynced in the journal. Errors are JSON: {\"error\", \"detail\"}."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A token from `sluice tokens create`."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "detail"],
                          "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}},
                "Accepted": {"type": "object", "required": ["request_id", "accepted"],
                             "properties": {"request_id": {"type": "string"}, "accepted": {"type": "integer"}}},
                "Event": {"type": "object", "properties": {
                    "id": {"type": "string", "description": "UUIDv7, time-ordered"},
                    "tenant": {"type": "string"}, "stream": {"type": "string"}, "source": {"type": "string"},
                    "received_at": {"type": "string", "format": "date-time"},
                    "event_time": {"type": ["string", "null"], "format": "date-time"},
                    "idempotency_key": {"type": ["string", "null"]},
                    "payload": {"type": "object"}, "attachments": {"type": "array", "items": {"type": "object"}}}},
                "EventPage": {"type": "object", "required": ["events", "next_cursor"], "properties": {
                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                    "next_cursor": {"type": ["string", "null"]}}},
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/streams/{stream}/events": {
                "post": {
                    "summary": "Ingest events",
                    "description": "Body: one JSON object, a JSON array of objects, or NDJSON "
                                   "(Content-Type application/x-ndjson). Content-Encoding gzip is accepted; the size "
                                   "limit applies after decompression too. Needs the `ingest` scope.",
                    "parameters": [stream, TENANT_Q,
                                   {"name": "Idempotency-Key", "in": "header", "required": False,
                                    "description": "A repeat within the idempotency window returns the first "
                                                   "response and stores nothing new. Empty: no key.",
                                    "schema": {"type": "string", "maxLength": 255}}],
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": {"oneOf": [
                            {"type": "object"}, {"type": "array", "items": {"type": "object"}, "minItems": 1}]}},
                        "application/x-ndjson": {"schema": {"type": "string"}}}},
                    "responses": {
                        "202": {"description": "Durably accepted",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
                        "400": error_response("Malformed JSON (names line/offset), a non-object event, an empty "
                                              "body or array, a bad stream name or tenant"),
                        "401": error_response("Missing or invalid token"),
                        "403": error_response("Token lacks the scope or belongs to another tenant"),
                        "404": error_response("Unknown stream when streams are restricted"),
                        "413": error_response("Body over the limit (also after decompression)"),
                        "415": error_response("Unsupported content type or encoding"),
                        "503": error_response("Journal full or its write failed (journal_full, journal_unavailable), "
                                              "or the store cannot serve (unavailable); retry after Retry-After"),
                    },
                },
                "get": {
                    "summary": "Query stored events (oldest first)",
                    "description": "Needs the `read` scope. Reads the SQL store, so events appear once the sql sink "
                                   "has delivered them (about a second).",
                    "parameters": [stream, TENANT_Q, query_param("since", "Inclusive, on received_at", TIME),
                                   query_param("until", "Exclusive, on received_at", TIME), LIMIT,
                                   query_param("cursor", "next_cursor of the previous page (an event id)", UUID)],
                    "responses": {
                        "200": {"description": "A page of events",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventPage"}}}},
                        "400": error_response("Bad parameter (named in detail)"),
                        "401": error_response("Missing or invalid token"),
                        "403": error_response("Token lacks the read scope or belongs to another tenant"),
                        "404": error_response("Unknown stream when streams are restricted"),
                    },
                },
            },
            "/health": {"get": {"summary": "Liveness", "security": [], "responses": {"200": ok_response(
                "The process is up", {"type": "object", "required": ["status"],
                                      "properties": {"status": {"type": "string", "enum": ["ok"]}}})}}},
            "/ready": {"get": {"summary": "Readiness: journal writable, store reachable", "security": [],
                               "responses": {"200": ok_response("Ready", READY), "503": ok_response("Not ready", READY)}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {"200": {
                "description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
    }


def render_docs(spec: dict[str, Any]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(spec['info']['title'])} API</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
             "code,pre{background:#f4f4f4;padding:.1rem .3rem}h2{border-top:1px solid #ddd;padding-top:1rem}"
             ".m{font-weight:bold;text-transform:uppercase;margin-right:.5rem}table{border-collapse:collapse}"
             "td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}</style></head><body>",
             f"<h1>{e(spec['info']['title'])} {e(spec['info']['version'])}</h1>",
             f"<p>{e(spec['info']['description'])}</p><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            parts.append(f"<h2><span class='m'>{e(method)}</span><code>{e(path)}</code></h2>")
            parts.append(f"<p><b>{e(op.get('summary', ''))}</b></p>")
            if op.get("description"):
                parts.append(f"<p>{e(op['description'])}</p>")
            if op.get("parameters"):
                parts.append("<table><tr><th>parameter</th><th>in</th><th>required</th><th>about</th></tr>")
                for p in op["parameters"]:
                    parts.append(f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
                                 f"<td>{'yes' if p.get('required') else 'no'}</td><td>{e(p.get('description', ''))}</td></tr>")
                parts.append("</table>")
            parts.append("<table><tr><th>status</th><th>meaning</th></tr>")
            for code, r in op.get("responses", {}).items():
                parts.append(f"<tr><td>{e(code)}</td><td>{e(r['description'])}</td></tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
