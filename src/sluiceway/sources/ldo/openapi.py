"""OpenAPI path items for the LDO routes (added to /openapi.json when configured)."""

from __future__ import annotations

from typing import Any

from sluiceway.http.openapi import LIMIT, error_response, link, path_param, query_param
from sluiceway.sources.ldo.receiver import MAX_CLIENT_ID, MAX_SKIP

_ID = [path_param("ldo_id", {"type": "string"})]
AUTH = {"401": error_response("Missing or invalid token"), "403": error_response("Token lacks the scope")}


def _obj(**props: str | list[str]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"type": "object", "properties": {
        k: {"type": v} for k, v in props.items()}}}}}


UPLOAD = {"post": {
    "summary": "Upload an LDO: JSON metadata and an optional file (e.g. a video clip)",
    "description": "multipart/form-data: part `metadata` (form field or file part, a JSON object; its `ldo_id` "
                   "makes the upload idempotent per tenant) and optionally one file part `video` or `file` (any "
                   "content type). The file is streamed to disk, one record (stream `ldo`) is journalled and the "
                   "LDO is registered before the 200. Token scope: ingest.",
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["metadata"],
        "properties": {"metadata": {"type": "object", "properties": {"ldo_id": {
                           "type": "string", "minLength": 1, "maxLength": MAX_CLIENT_ID}}},
                       "video": {"type": "string", "format": "binary"}}}}}},
    "responses": {
        "200": {"description": "Ingested (or, with a known ldo_id, the existing entry: Idempotent-Replayed: true)",
                **_obj(id="string", status="string", message="string", size_bytes=["integer", "null"])},
        "400": error_response("metadata is not JSON or not an object; bad ldo_id; malformed multipart"), **AUTH,
        "413": error_response("File over max_file_bytes"), "415": error_response("Not multipart/form-data"),
        "422": error_response("No metadata part"), "503": error_response("Journal full; retry after Retry-After"),
    },
}}
LIST = {"get": {
    "summary": "The token's tenant's LDOs, oldest first",
    "parameters": [query_param("skip", "How many to skip",
                               {"type": "integer", "minimum": 0, "maximum": MAX_SKIP, "default": 0}), LIMIT],
    "responses": {"200": {"description": "{total, ldos: [{id, status, filename, created_at, size_bytes, metadata}]}"},
                  "400": error_response("Bad skip or limit"), **AUTH},
}}
STATUS = {"get": {"summary": "One LDO", "parameters": _ID,
                  "responses": {"200": {"description": "The LDO"}, "404": error_response("Unknown (or another tenant's)"),
                                **AUTH}}}
FILE = {"get": {
    "summary": "The LDO's file, streamed; one Range (bytes=a-b, a-, -n) → 206",
    "parameters": [*_ID, {"name": "Range", "in": "header", "schema": {"type": "string"}}],
    "responses": {"200": {"description": "The file (ETag = sha256)"}, "206": {"description": "A byte range"},
                  "304": {"description": "If-None-Match matched"},
                  "404": error_response("Unknown LDO, no file, or the file is not available"),
                  "416": error_response("Range outside the file"), "503": error_response("Object store unavailable"),
                  **AUTH},
}}
DELETE = {"delete": {
    "summary": "Delete an LDO and its object (token scope: ingest or admin)", "parameters": _ID,
    "responses": {"200": {"description": "{id, message}"}, "404": error_response("Unknown (or another tenant's)"),
                  "409": error_response("The file is not delivered to the object store yet; retry later"), **AUTH},
}}


def _upload(p: str) -> dict[str, Any]:
    """UPLOAD, its 200 linked to the operations on the new LDO (``ldo_id`` = the answer's ``id``)."""
    by_id = {"ldo_id": "$response.body#/id"}
    links = {"GetLdo": link(f"{p}/ingest/ldo/{{ldo_id}}", "get", by_id, "The LDO just stored"),
             "GetLdoFile": link(f"{p}/ingest/ldo/{{ldo_id}}/file", "get", by_id, "Its file"),
             "DeleteLdo": link(f"{p}/ingest/{{ldo_id}}", "delete", by_id, "Delete it")}
    post = UPLOAD["post"]
    return {"post": {**post, "responses": {**post["responses"], "200": {**post["responses"]["200"], "links": links}}}}


def ldo_paths(prefixes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in prefixes:
        out[f"{p}/ingest/ldo"] = _upload(p)
        out[f"{p}/ingest/list"] = LIST
        out[f"{p}/ingest/ldo/{{ldo_id}}"] = STATUS
        out[f"{p}/ingest/status/{{ldo_id}}"] = STATUS
        out[f"{p}/ingest/ldo/{{ldo_id}}/file"] = FILE
        out[f"{p}/ingest/{{ldo_id}}"] = DELETE
    return out
