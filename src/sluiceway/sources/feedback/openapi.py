"""OpenAPI path items for the feedback webhooks."""

from __future__ import annotations

from typing import Any

from sluiceway.http.openapi import error_response




def webhook_paths() -> dict[str, Any]:
    ok = {"description": "Stored (journalled) or ignored (ping)",
          "content": {"application/json": {"schema": {"type": "object", "properties": {
              "status": {"type": "string"}, "accepted": {"type": "integer"}}}}}}
    tenant = {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/webhook/intercom/{tenant}": {"post": {
            "summary": "Intercom webhook notifications (signed)", "security": [],
            "description": "X-Hub-Signature: sha1=<hex> = HMAC-SHA1 of the raw body with the client secret of one of "
                           "the tenant's Intercom sources. Conversation topics become feedback items; ping and other "
                           "topics are acknowledged and ignored; a notification id is accepted once.",
            "parameters": [tenant, {"name": "X-Hub-Signature", "in": "header", "required": True,
                                    "schema": {"type": "string"}}],
            "responses": {"200": ok, "400": error_response("Invalid JSON"), "401": error_response("Missing or wrong signature"),
                          "404": error_response("Unknown tenant or no Intercom source"), "413": error_response("Body too large")}}},
        "/webhook/{source}/{tenant}": {"post": {
            "summary": "Generic signed webhook: one feedback item or an array of them", "security": [],
            "description": "The tenant's `webhook` source named {source} says how the body is signed (algorithm, "
                           "header, prefix). Items: external_id (or id), body (or text), author, rating, language, "
                           "created_at, updated_at; other keys go to metadata.",
            "parameters": [{"name": "source", "in": "path", "required": True, "schema": {"type": "string"}}, tenant],
            "responses": {"200": ok, "400": error_response("Invalid JSON or item"), "401": error_response("Missing or wrong signature"),
                          "404": error_response("Unknown tenant or source")}}},
    }
