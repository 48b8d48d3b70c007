"""A fake Google Play Developer API: ``reviews.list`` and an OAuth token endpoint.

- ``GET /androidpublisher/v3/applications/{package}/reviews``: reviews edited in the last
  7 days, newest ``lastModified`` first, ``maxResults`` a page (default 10), pages through an
  opaque ``token`` / ``tokenPagination.nextPageToken``; ``translationLanguage`` fills ``text``
  with a "translation" and keeps ``originalText``.
- ``POST /token``: the JWT-bearer grant; the assertion's RS256 signature is checked against
  the service account's public key, and its claims (``iss``, ``scope``, ``aud`` = this URL,
  ``iat``/``exp``). Answers ``{"access_token", "expires_in", "token_type"}``.
- Errors use the Google envelope ``{"error": {"code", "message", "status"}}``; a 429 carries no
  rate-limit header (as documented), unless a test asks for ``Retry-After``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.server import FakeServer, Reply, bearer, json_response, page_token, token_offset

SCOPE = "https://www.googleapis.com/auth/androidpublisher"
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


@dataclass
class Review:
    review_id: str
    author: str
    text: str
    rating: int
    modified: float  # unix seconds, with a fraction (nanos)
    language: str = "en"
    reply: str | None = None


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class PlayStoreFake(FakeServer):
    def __init__(self, package: str = "com.example.app") -> None:
        self.package = package
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = "puller@example-project.iam.gserviceaccount.com"
        super().__init__()

    def clear(self) -> None:
        self.reviews: dict[str, Review] = {}
        self.static_tokens: set[str] = set()
        self.issued: list[str] = []

    # -- data ------------------------------------------------------------------------------
    def add(self, n: int, *, start: float, step: float = 60.0) -> list[Review]:
        """``n`` reviews modified at ``start``, ``start + step``, …"""
        out = []
        for _ in range(n):
            i = len(self.reviews)
            r = Review(f"gp:AOqpTO{i:05d}", f"User {i}", f"Review number {i}", 1 + i % 5,
                       start + len(out) * step + 0.125)
            self.reviews[r.review_id] = r
            out.append(r)
        return out

    def edit(self, review_id: str, text: str, at: float) -> None:
        self.reviews[review_id].text = text
        self.reviews[review_id].modified = at

    def service_account_json(self, token_uri: str | None = None) -> str:
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return json.dumps({"type": "service_account", "project_id": "example-project", "private_key_id": "k1",
                           "private_key": pem, "client_email": self.client_email, "client_id": "1",
                           "token_uri": token_uri or f"{self.url}/token"})

    # -- API -------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/androidpublisher/v3/applications/{package}/reviews", self.list_reviews),
                ("POST", "/token", self.token)]

    def error(self, status: int, message: str) -> Response:
        return json_response({"error": {"code": status, "message": message,
                                        "status": STATUS.get(status, "UNKNOWN")}}, status)

    def rate_limited(self, wait: float | None) -> Response:
        response = self.error(429, "Quota exceeded for quota metric 'Queries' and limit 'Queries per hour'.")
        if wait:
            response.headers["Retry-After"] = str(int(wait))
        return response

    async def list_reviews(self, request: Request) -> Response:
        token = bearer(request)
        if token is None or (token not in self.static_tokens and token not in self.issued):
            raise Reply(401, "Request is missing required authentication credential.")
        if request.path_params["package"] != self.package:
            raise Reply(404, "Package not found: " + request.path_params["package"])
        q = request.query_params
        size = int(q.get("maxResults", 10))
        offset = token_offset(q.get("token"), "play")
        if offset is None:
            raise Reply(400, "Invalid token")
        recent = [r for r in self.reviews.values() if r.modified >= self.clock() - 7 * 86400]
        recent.sort(key=lambda r: r.modified, reverse=True)
        body: dict[str, Any] = {"reviews": [self.render(r, q.get("translationLanguage"))
                                            for r in recent[offset:offset + size]],
                                "pageInfo": {"totalResults": len(recent), "resultPerPage": size, "startIndex": offset}}
        if offset + size < len(recent):
            body["tokenPagination"] = {"nextPageToken": page_token(offset + size, "play")}
        return json_response(body)

    def render(self, r: Review, translation: str | None) -> dict[str, Any]:
        seconds = int(r.modified)
        user: dict[str, Any] = {
            "text": f"[{translation}] {r.text}" if translation else r.text,
            "lastModified": {"seconds": str(seconds), "nanos": round((r.modified - seconds) * 1e9)},
            "starRating": r.rating, "reviewerLanguage": r.language, "device": "a52q", "androidOsVersion": 34,
            "appVersionCode": 4021, "appVersionName": "4.2.1", "thumbsUpCount": 2, "thumbsDownCount": 0,
            "deviceMetadata": {"productName": "Galaxy A52", "manufacturer": "Samsung", "deviceClass": "phone"}}
        if translation:
            user["originalText"] = r.text
        comments: list[dict[str, Any]] = [{"userComment": user}]
        if r.reply:
            comments.append({"developerComment": {"text": r.reply,
                                                  "lastModified": {"seconds": str(seconds + 60), "nanos": 0}}})
        return {"reviewId": r.review_id, "authorName": r.author, "comments": comments}

    async def token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return json_response({"error": "unsupported_grant_type"}, 400)
        try:
            header_b64, claims_b64, sig_b64 = str(form.get("assertion", "")).split(".")
            header, claims = json.loads(_unb64(header_b64)), json.loads(_unb64(claims_b64))
            self.key.public_key().verify(_unb64(sig_b64), f"{header_b64}.{claims_b64}".encode(),
                                         padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return json_response({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400)
        ok = (header == {"alg": "RS256", "typ": "JWT"} and claims.get("iss") == self.client_email
              and claims.get("scope") == SCOPE and claims.get("aud") == f"{self.url}/token"
              and claims.get("exp", 0) - claims.get("iat", 0) <= 3600 and claims.get("exp", 0) > self.clock())
        if not ok:
            return json_response({"error": "invalid_grant", "error_description": f"bad claims {claims}"}, 400)
        self.issued.append(f"ya29.fake-{len(self.issued)}")
        return json_response({"access_token": self.issued[-1], "expires_in": 3599, "token_type": "Bearer"})
