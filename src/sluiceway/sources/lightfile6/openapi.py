"""OpenAPI path items for the Lightfile6 routes (added to /openapi.json when configured)."""

from __future__ import annotations

from typing import Any

_USER = {"name": "USER_TOKEN", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "The user name (not checked, as in the original). `User-Token` is accepted too, for proxies "
                        "that drop headers with underscores. No '/', '\\\\', control characters, '.' or '..'."}
_MSG = {"type": "object", "properties": {"message": {"type": "string"}, "error": {"type": "string"},
                                         "detail": {"type": "string"}}}


def _err(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": _MSG}}}


def _report(kind: str) -> dict[str, Any]:
    return {"put": {
        "summary": f"Submit a {kind} report (Lightfile6 compatible)", "security": [],
        "description": f"Body: one JSON report. Journalled (fsynced) before the 204; uploaded to the {kind} bucket "
                       "as gzip JSON Lines, one line per report: {\"user\", \"received_at\", \"report\"} "
                       "(or the bare report with raw_lines).",
        "parameters": [_USER],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
        "responses": {"204": {"description": "Durably accepted"}, "400": _err("Invalid JSON (names the position) or bad USER_TOKEN"),
                      "401": _err("USER_TOKEN header is required"), "413": _err("Report over max_report_bytes"),
                      "503": _err("Journal full; retry after Retry-After")},
    }}


def lightfile6_paths(prefix: str, health: bool) -> dict[str, Any]:
    paths = {
        f"{prefix}/usage": _report("usage"),
        f"{prefix}/error": _report("error"),
        f"{prefix}/specimen": {"put": {
            "summary": "Upload a specimen file (Lightfile6 compatible)", "security": [],
            "description": "Body: any bytes, streamed to disk and fsynced before the 204. Uploaded to the specimen "
                           "bucket as <user>/YYYY/MM/DD/<base>.<ts><ext> with the uri as metadata; multipart above "
                           "8 MiB. Content type: the request's, else from the uri's extension.",
            "parameters": [_USER, {"name": "uri", "in": "query", "required": True, "schema": {"type": "string"},
                                   "description": "Where the specimen came from; its last path segment names the object."}],
            "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {}}}},
            "responses": {"204": {"description": "Durably accepted"}, "400": _err("uri parameter is required, or unsafe"),
                          "401": _err("USER_TOKEN header is required"), "413": _err("Over max_specimen_bytes"),
                          "503": _err("Journal or disk full; retry after Retry-After")},
        }},
    }
    if health:
        paths[f"{prefix}/health"] = {"get": {"summary": "Liveness, Lightfile6 style: {\"status\":\"healthy\"}",
                                             "security": [], "responses": {"200": {"description": "Up"}}}}
    return paths
