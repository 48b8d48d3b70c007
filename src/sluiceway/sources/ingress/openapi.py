"""OpenAPI path items for the ingress routes (added to /openapi.json when configured)."""

from __future__ import annotations

from typing import Any

from sluiceway.http.openapi import error_response, link


def ingress_paths(mounts: list[str]) -> dict[str, Any]:
    upload = {"post": {
        "summary": "Upload an archive (Red Hat insights-ingress compatible)",
        "description": "multipart/form-data with one part `file` (or `upload`) whose Content-Type is "
                       "application/vnd.redhat.<service>.<category>[+tgz|+tar]. Identity: a sluiceway token "
                       "(Authorization: Bearer; the User-Agent's `cluster/<id>` names the cluster) or, when "
                       "trusted, x-rh-identity. The archive is stored durably and every JSON document in it "
                       "becomes a record in stream <service> before the 202. Echoes x-rh-insights-request-id.",
        "parameters": [{"name": "x-rh-insights-request-id", "in": "header", "required": False,
                        "schema": {"type": "string"}},
                       {"name": "x-rh-identity", "in": "header", "required": False, "schema": {"type": "string"},
                        "description": "base64 JSON identity; only with trust_identity_header"}],
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}},
        "responses": {
            "202": {"description": "Stored and unpacked", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"request_id": {"type": "string"}, "upload": {
                    "type": "object", "properties": {"account_number": {"type": "string"},
                                                     "org_id": {"type": "string"}}}}}}}},
            "200": {"description": "Test request (form field test=test, or JSON {\"test\":\"test\"})"},
            "400": error_response("No file/upload part, malformed multipart, bad identity, or a refused archive "
                        "(unsafe member path, link, device, not a tar)"),
            "401": error_response("Missing or invalid token"), "403": error_response("Org deny-listed"),
            "413": error_response("Over the service's size limit, or the archive expands past its limits"),
            "415": error_response("File part content type unparsable or service not allowed"),
            "503": error_response("Journal full; retry after Retry-After"),
        },
    }}
    track = {"get": {
        "summary": "Status of an upload: accepted or rejected (why), records extracted, delivery per sink",
        "parameters": [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "Status"}, "404": error_response("Unknown request id (or another tenant's)"),
                      "401": error_response("Missing or invalid token"), "403": error_response("Token lacks read")},
    }}
    out: dict[str, Any] = {}
    for m in mounts:
        post = upload["post"]
        accepted = {**post["responses"]["202"], "links": {"TrackUpload": link(
            f"{m}/track/{{request_id}}", "get", {"request_id": "$response.body#/request_id"}, "Its status")}}
        out[f"{m}/upload"] = {"post": {**post, "responses": {**post["responses"], "202": accepted}}}
        out[f"{m}/track/{{request_id}}"] = track
    return out
